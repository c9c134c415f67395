// auxl/nn/input_check.hpp — run-time checks on data handed to a network.
//
// The compile-time shape says how many features one example has; these checks make sure the
// data a user passes agrees (width and batch) and holds finite numbers, and say exactly what was
// expected and what was found.  Cost: one vectorised pass over the input per forward.
#pragma once

#include <cmath>
#include <cstddef>

#include "auxl/core/error.hpp"
#include "auxl/core/finite.hpp"

namespace auxl::nn::detail {

/// Rows x width taken from a container's shape: dimension 0 is the batch, the rest one example.
template <class Container>
std::size_t checked_batch(const Container& x, std::size_t expected_width, const char* who) {
    const auto& sh = x.shape();
    if (sh.size() < 1) raise<shape_error>(who, ": input must have a batch dimension, got a scalar");
    std::size_t width = 1;
    for (std::size_t d = 1; d < sh.size(); ++d) width *= sh[d];
    if (sh.size() == 1) width = 1;
    if (width != expected_width) {
        raise<shape_error>(who, ": each input example must have ", expected_width, " values but the data has ", width,
                           " per row (", sh[0], " rows)");
    }
    return sh[0];
}

template <class T>
void check_finite(const T* x, std::size_t rows, std::size_t width, const char* who, const char* what) {
    const std::size_t count = rows * width;
    // The vectorised scan first (a branch per element does not vectorise: 4 % of an MLP step in
    // perf); the loop below only runs to name the bad value.
    if (all_finite(x, count)) return;
    for (std::size_t i = 0; i < count; ++i) {
        if (!std::isfinite(x[i])) {
            raise<value_error>(who, ": ", what, " row ", i / width, " column ", i % width, " is ",
                               std::isnan(x[i]) ? "NaN" : "infinite", "; data must be finite");
        }
    }
}

}  // namespace auxl::nn::detail
