// A generated hierarchical problem for trainer tests: 10 fine classes are Gaussian blobs in
// `dim` dimensions; the primary task groups them by parity, so each primary class is a union
// of five blobs and the fine labels carry structure the primary labels do not.
#pragma once

#include <cstddef>
#include <cstdint>

#include "auxl/core/rng.hpp"
#include "auxl/data/dataset.hpp"

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

}  // namespace auxl::testing
