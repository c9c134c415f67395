// auxl/nn/fused_activation.hpp — an activation that a layer applies to its own output, one sample
// at a time, while that output is still in cache.
//
// `nn::conv2d<32, 3, 1, 1, nn::relu>` computes the same numbers as `nn::conv2d<32, 3, 1, 1>,
// nn::relu`, bit for bit, but the separate activation layer streams the whole batch's output
// through memory once more in each pass and keeps a second whole-batch activation and gradient
// buffer (for the demo CNN's first layer 12.8 MB each at batch 128).  Fused, the layer keeps only
// its post-activation output, so the activation's slope must be computable from that output:
// F::output_slope(y) = f'(x) wherever y = f(x).  relu, leaky_relu, tanh and sigmoid provide it.
// Only conv2d fuses: its loop over samples is what keeps one output in cache.  dense makes one GEMM
// for the whole batch, so an activation fused into it would still be a separate pass over memory.
#pragma once

#include <concepts>
#include <cstddef>

namespace auxl::nn {

/// The default of a layer's Activation parameter: its output is used as is.
struct no_activation {};

/// An element-wise activation whose slope is a function of its output (see above).
template <class F, class T>
concept output_slope_activation = requires(T v) {
    { F::template value<T>(v) } -> std::same_as<T>;
    { F::template output_slope<T>(v) } -> std::same_as<T>;
};

namespace detail {

/// Whether activation F is piecewise linear (f'' = 0 almost everywhere: relu, leaky_relu).
template <class F>
inline constexpr bool piecewise_linear_activation = [] {
    if constexpr (requires { F::piecewise_linear; }) return bool(F::piecewise_linear);
    else return false;
}();

/// Whether activation F can take part in second-order passes (backward_tangent): piecewise
/// linear, or giving f''/f' from its output (curvature_ratio).  No activation qualifies trivially.
template <class F, class T>
concept second_order_activation = std::same_as<F, no_activation> || piecewise_linear_activation<F> ||
                                  requires(T v) { { F::template curvature_ratio<T>(v) } -> std::same_as<T>; };

/// What a layer with a fused activation F does at each pass; F = no_activation does nothing.
template <class F>
struct fused_activation {
    static constexpr bool active = !std::same_as<F, no_activation>;

    /// y = f(z) in place, on one sample's output.
    template <class T>
    static void apply(T* y, std::size_t count) {
        if constexpr (active)
            for (std::size_t i = 0; i < count; ++i) y[i] = F::template value<T>(y[i]);
    }

    /// dz = dy ⊙ f'(z), computed from the output y (the separate layer's backward, same order).
    template <class T>
    static void input_gradient(const T* dy, const T* y, T* dz, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) dz[i] = dy[i] * F::template output_slope<T>(y[i]);
    }

    /// The tangent of input_gradient: ḋz = ḋy ⊙ f'(z) + dy ⊙ (f''/f')(z) ⊙ ẏ, with ẏ = f'(z) ż the
    /// output tangent (elementwise.hpp).  Overwrites dz_dot.
    template <class T>
    static void input_gradient_tangent(const T* dy, const T* dy_dot, const T* y, const T* y_dot, T* dz_dot, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) dz_dot[i] = dy_dot[i] * F::template output_slope<T>(y[i]);
        if constexpr (!piecewise_linear_activation<F>)
            for (std::size_t i = 0; i < count; ++i) dz_dot[i] += dy[i] * F::template curvature_ratio<T>(y[i]) * y_dot[i];
    }

    /// ẏ = ż ⊙ f'(z) in place (the separate layer's tangent, same order).
    template <class T>
    static void tangent(T* y_dot, const T* y, std::size_t count) {
        if constexpr (active)
            for (std::size_t i = 0; i < count; ++i) y_dot[i] = y_dot[i] * F::template output_slope<T>(y[i]);
    }
};

}  // namespace detail
}  // namespace auxl::nn
