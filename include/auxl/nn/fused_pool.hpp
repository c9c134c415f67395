// auxl/nn/fused_pool.hpp — max pooling that a convolution applies to its own (activated) output,
// one sample at a time, while that output is still in cache.
//
// `nn::conv2d<64, 3, 1, 1, nn::relu, nn::max_pool2d<2>>` computes the numbers of `nn::conv2d<64, 3,
// 1, 1>, nn::relu, nn::max_pool2d<2>` bit for bit, without the two whole-batch buffers (and their
// gradients) between the three layers: only the pooled output and one index per pooled value are
// kept.  Windows must not overlap (stride ≥ window): each pixel is then the maximum of at most one
// window, so its gradient is the single product (0 + dy)·f'(z) that the separate layers form, and
// f'(z) at a window's maximum can be read off the pooled value, which is f(z) there.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "auxl/nn/fused_activation.hpp"
#include "auxl/nn/max_pool2d.hpp"

namespace auxl::nn {

/// The default of conv2d's Pool parameter: no pooling.
struct no_pool {};

namespace detail {

template <class Pool, class T, class ConvShape, class Activation>
struct fused_pool {
    static_assert(std::same_as<Pool, no_pool>,
                  "auxl::nn::conv2d<..., Activation, Pool>: Pool must be nn::no_pool or nn::max_pool2d<K, S>");
    static constexpr bool active = false;
    using output_shape = ConvShape;
};

template <std::size_t K, std::size_t S, class T, class ConvShape, class Activation>
struct fused_pool<max_pool2d<K, S>, T, ConvShape, Activation> {
    static_assert(S >= K,
                  "auxl::nn::conv2d<..., max_pool2d<K, S>>: a fused pooling needs windows that do not overlap "
                  "(S >= K); put an overlapping max_pool2d after the convolution as its own layer");
    using pool_layer = typename max_pool2d<K, S>::template layer<T, ConvShape>;
    using output_shape = typename pool_layer::output_shape;
    using act = fused_activation<Activation>;
    static constexpr bool active = true;
    static constexpr std::size_t size = output_shape::size;

    /// y = pool(z) for one sample, indices relative to z.
    static void forward(const T* z, T* y, std::uint32_t* argmax) { pool_layer::pool(z, y, argmax, ConvShape::channels); }

    /// dz for one sample's convolution output: (0 + dy)·f'(z) at each window's maximum (the
    /// separate pooling layer adds dy onto a zeroed buffer, then the activation scales it), zero
    /// elsewhere (0·f' = 0 there too, f' being finite and ≥ 0 for the built-in activations).
    static void input_gradient(const T* dy, const T* y, const std::uint32_t* argmax, T* dz) {
        std::fill_n(dz, ConvShape::size, T(0));
        for (std::size_t o = 0; o < size; ++o) {
            T g = T(0) + dy[o];
            if constexpr (act::active) g = g * Activation::template output_slope<T>(y[o]);
            dz[argmax[o]] = g;
        }
    }

    /// The tangent of input_gradient for one sample: at each window's maximum
    /// ḋz = ḋy·f'(z) + dy·(f''/f')(z)·ẏ (nn/fused_activation.hpp), zero elsewhere.
    static void input_gradient_tangent(const T* dy, const T* dy_dot, const T* y, const T* y_dot, const std::uint32_t* argmax,
                                       T* dz_dot) {
        std::fill_n(dz_dot, ConvShape::size, T(0));
        for (std::size_t o = 0; o < size; ++o) {
            T g = dy_dot[o];
            if constexpr (act::active) {
                g = g * Activation::template output_slope<T>(y[o]);
                if constexpr (!piecewise_linear_activation<Activation>)
                    g += dy[o] * Activation::template curvature_ratio<T>(y[o]) * y_dot[o];
            }
            dz_dot[argmax[o]] = g;
        }
    }

    /// ẏ = ż·f'(z) at each window's maximum, for one sample.
    static void tangent(const T* z_dot, const T* y, const std::uint32_t* argmax, T* y_dot) {
        for (std::size_t o = 0; o < size; ++o) {
            T v = z_dot[argmax[o]];
            if constexpr (act::active) v = v * Activation::template output_slope<T>(y[o]);
            y_dot[o] = v;
        }
    }
};

}  // namespace detail
}  // namespace auxl::nn
