// auxl/gen/random_labels.hpp — an unhelpful "manually collected" auxiliary task: every training
// example gets a fixed random label (drawn once per dataset row from the seed), the control the
// DTG paper's headline setting needs (ALGORITHMS.md §5): Equal weighting must live with its noise,
// a generator that learns can work around it.
//
// Labels are a hash of (seed, dataset row), so they stay the same across epochs and resumes
// without any stored table.  Needs batches gathered by the trainer (they carry their rows).
// Cost: O(batch) per step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "auxl/core/error.hpp"
#include "auxl/train/concepts.hpp"

namespace auxl::gen {

class random_labels {
public:
    static const char* name() { return "random"; }
    static constexpr std::size_t auxiliary_tasks = 1;

    void prepare(const train::generator_setup& setup) {
        if (setup.head_widths.size() < 2 || setup.head_widths[1] == 0) {
            raise<config_error>("auxl::gen::random_labels: the model has no auxiliary head");
        }
        classes_ = setup.head_widths[1];
        seed_ = setup.seed;
    }

    template <class T>
    void generate(const train::batch<T>& b, std::span<train::auxiliary_targets<T>> targets) {
        if (b.rows.size() != b.size) {
            raise<config_error>("auxl::gen::random_labels: the batch does not name its dataset rows (build it with the trainer)");
        }
        auto& t = targets[0];
        t.type = train::auxiliary_targets<T>::kind::hard;
        for (std::size_t i = 0; i < b.size; ++i) t.labels[i] = label_of(b.rows[i]);
    }

    /// The fixed label of dataset row r.
    std::int32_t label_of(std::uint64_t row) const { return std::int32_t(mix(seed_ ^ (row * 0x9e3779b97f4a7c15ull)) % classes_); }

private:
    // splitmix64's finaliser: a well-spread hash of one 64-bit word.
    static std::uint64_t mix(std::uint64_t z) {
        z += 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::size_t classes_ = 1;
    std::uint64_t seed_ = 0;
};

}  // namespace auxl::gen
