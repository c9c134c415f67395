// A generated hierarchical problem for trainer tests: 10 fine classes are Gaussian blobs in
// `dim` dimensions; the primary task groups them by parity, so each primary class is a union
// of five blobs and the fine labels carry structure the primary labels do not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "auxl/core/rng.hpp"
#include "auxl/data/dataset.hpp"
#include "auxl/data/hierarchy.hpp"
#include "auxl/train/types.hpp"

namespace auxl::testing {

inline data::dataset<float> blobs(std::size_t n, std::uint64_t sample_seed, std::size_t dim = 20, double noise = 1.0,
                                  std::uint64_t problem_seed = 77) {
    rng centres(problem_seed, "centres");
    std::vector<float> mu(10 * dim);
    for (auto& v : mu) v = float(centres.normal(0.0, 1.0));
    rng gen(sample_seed, "samples");
    data::dataset<float> d;
    d.name = "blobs";
    d.classes = 10;
    d.example_shape = {dim, 1, 1};
    d.inputs = xt::xtensor<float, 2>::from_shape({n, dim});
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = std::int32_t(gen.below(10));
        d.labels.push_back(c);
        for (std::size_t j = 0; j < dim; ++j) d.inputs(i, j) = mu[std::size_t(c) * dim + j] + float(gen.normal(0.0, noise));
    }
    return d;
}

/// The first n rows of a dataset as a training batch, with the label arrays it points into.
struct leading_rows {
    const float* inputs = nullptr;
    std::vector<std::int32_t> primary, fine;
    std::vector<std::uint32_t> rows;
    train::batch<float> batch() const {
        return {inputs, rows.size(), primary.data(), fine.data(), std::span<const std::uint32_t>(rows)};
    }
};

inline leading_rows first_rows(const data::dataset<float>& d, const data::hierarchy& h, std::size_t n) {
    leading_rows r;
    r.inputs = d.inputs.data();
    for (std::size_t i = 0; i < n; ++i) {
        r.fine.push_back(d.labels[i]);
        r.primary.push_back(h.primary_of(d.labels[i]));
        r.rows.push_back(std::uint32_t(i));
    }
    return r;
}

}  // namespace auxl::testing
