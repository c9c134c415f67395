// auxl/nn/init.hpp — weight initialisers (He and Xavier, uniform and normal).
//
// fan_in / fan_out follow the usual convention: for a dense layer the input and output widths,
// for a convolution channels x kernel area.  Draws come from the caller's rng stream ("init").
#pragma once

#include <cmath>
#include <cstddef>

#include "auxl/core/rng.hpp"

namespace auxl::nn {

/// he_* suit ReLU networks; xavier_* tanh/sigmoid ones; pytorch_default reproduces
/// torch.nn.Linear / Conv2d's default (weights and biases U(±1/sqrt(fan_in))), for side-by-side
/// comparisons with PyTorch code.
enum class init_scheme { he_uniform, he_normal, xavier_uniform, xavier_normal, pytorch_default };

/// Fills w[0..count) with the scheme's distribution.
template <class T>
void initialize(T* w, std::size_t count, std::size_t fan_in, std::size_t fan_out, init_scheme scheme, rng& gen) {
    const double in = static_cast<double>(fan_in);
    const double out = static_cast<double>(fan_out);
    switch (scheme) {
        case init_scheme::he_uniform: {
            const double bound = std::sqrt(6.0 / in);
            for (std::size_t i = 0; i < count; ++i) w[i] = static_cast<T>(gen.uniform(-bound, bound));
            break;
        }
        case init_scheme::he_normal: {
            const double sd = std::sqrt(2.0 / in);
            for (std::size_t i = 0; i < count; ++i) w[i] = static_cast<T>(gen.normal(0.0, sd));
            break;
        }
        case init_scheme::xavier_uniform: {
            const double bound = std::sqrt(6.0 / (in + out));
            for (std::size_t i = 0; i < count; ++i) w[i] = static_cast<T>(gen.uniform(-bound, bound));
            break;
        }
        case init_scheme::pytorch_default: {
            const double bound = 1.0 / std::sqrt(in);
            for (std::size_t i = 0; i < count; ++i) w[i] = static_cast<T>(gen.uniform(-bound, bound));
            break;
        }
        case init_scheme::xavier_normal: {
            const double sd = std::sqrt(2.0 / (in + out));
            for (std::size_t i = 0; i < count; ++i) w[i] = static_cast<T>(gen.normal(0.0, sd));
            break;
        }
    }
}

/// Biases start at zero, except under pytorch_default, which draws them like PyTorch does.
template <class T>
void initialize_bias(T* b, std::size_t count, std::size_t fan_in, init_scheme scheme, rng& gen) {
    if (scheme == init_scheme::pytorch_default) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
        for (std::size_t i = 0; i < count; ++i) b[i] = static_cast<T>(gen.uniform(-bound, bound));
    } else {
        for (std::size_t i = 0; i < count; ++i) b[i] = T(0);
    }
}

}  // namespace auxl::nn
