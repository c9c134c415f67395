// benchmarks/composition_timing.hpp — what the programs that time whole compositions share
// (side_by_side_auxl, bench_compositions): a trainer for any composition the library offers,
// chosen by name, on the reference models; one fixed random batch; and the dev set that
// module-aware, RL-AUX and DTG read before they can step.
//
// Setting (the same as benchmarks/torch_reference.py's): primary task super5 (heads 5 and 10;
// DTG 5, 10, 10), SGD lr 0.01 momentum 0.9, cross-entropy (focal γ 0), seed 1.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/train/runtime_select.hpp"
#include "reference_models.hpp"

namespace auxl_bench {

/// Every composition train::make_trainer and train::make_dtg_trainer build: each generator with
/// each rule it is offered with, as the demo's `--methods all` names them.
inline std::vector<std::string> all_compositions() {
    auto names = auxl::train::method_names();
    for (const auto& n : auxl::train::dtg_method_names()) names.push_back(n);
    return names;
}

inline auxl::trainer_options timing_options(std::size_t batch) {
    auxl::trainer_options o;
    o.seed = 1;
    o.batch_size = batch;
    o.focal_gamma = 0.0;
    return o;
}

/// Calls f(trainer) with a fresh trainer of composition `method` on reference::model<Trunk> (DTG's
/// methods: reference::dtg_model<Trunk>, which has a third head) and returns what f returns.
template <class Trunk, class F>
decltype(auto) with_composition(const std::string& method, std::size_t batch, F&& f) {
    const auto h = auxl::data::hierarchy::fashion_super5();
    const auxl::optim::sgd<float> sgd({.learning_rate = 0.01, .momentum = 0.9});
    const auto dtg_names = auxl::train::dtg_method_names();
    if (std::find(dtg_names.begin(), dtg_names.end(), method) != dtg_names.end())
        return std::visit(f, *auxl::train::make_dtg_trainer<auxl::reference::dtg_model<Trunk>>(method, h, sgd, timing_options(batch)));
    return std::visit(f, *auxl::train::make_trainer<auxl::reference::model<Trunk>>(method, h, sgd, timing_options(batch)));
}

/// `size` random 1×28×28 images in [0, 1) with fine labels 0–9, drawn from `stream`.
inline auxl::data::dataset<float> random_images(std::size_t size, const char* stream) {
    auxl::data::dataset<float> d;
    d.name = stream;
    d.classes = 10;
    d.example_shape = {1, 28, 28};
    d.inputs = xt::xtensor<float, 2>::from_shape({size, 784});
    auxl::rng gen(2, stream);
    for (auto& v : d.inputs) v = float(gen.uniform());
    for (std::size_t i = 0; i < size; ++i) d.labels.push_back(std::int32_t(gen.below(10)));
    return d;
}

/// One fixed batch, timed step after step (timing only), kept also as a data set: module-aware's
/// upper level, RL-AUX's reward and DTG's upper level read a dev set, and one epoch of fit() over
/// the batch installs it as theirs (PyTorch's reference uses its first batch likewise).  The
/// trainer keeps a pointer to it, so the timing_batch must outlive the trainer's steps.
struct timing_batch {
    explicit timing_batch(std::size_t batch) : set(random_images(batch, "side-by-side")) {
        const auto h = auxl::data::hierarchy::fashion_super5();
        for (std::size_t i = 0; i < batch; ++i) {
            primary.push_back(h.primary_of(set.labels[i]));
            rows.push_back(std::uint32_t(i));
        }
    }
    auxl::train::batch<float> view() const {
        return {set.inputs.data(), set.size(), primary.data(), set.labels.data(), std::span<const std::uint32_t>(rows)};
    }
    template <class Trainer>
    void install_dev_set(Trainer& t) const {
        if constexpr (Trainer::needs_dev_set) {
            typename Trainer::fit_options fit;
            fit.dev = &set;
            t.fit(set, fit);
        }
    }

    auxl::data::dataset<float> set;
    std::vector<std::int32_t> primary;
    std::vector<std::uint32_t> rows;
};

}  // namespace auxl_bench
