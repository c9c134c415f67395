// auxl/nn/elementwise.hpp — the shared machinery of activation layers (relu, leaky_relu, tanh,
// sigmoid): an element-wise y = f(x) with f'(x) computed from x and y.
//
// An activation policy F provides
//   static const char* name();
//   static T value(T x);
//   static T slope(T x, T y);     // f'(x), given y = f(x) (tanh and sigmoid use y)
//   static T curvature_ratio(T y) // f''(x) / f'(x) from y (tanh −2y, sigmoid 1 − 2y); or, for a
//                                 // piecewise linear f, static constexpr bool piecewise_linear = true
// backward: dx += dy ⊙ f'(x) (or dx = …, ctx.assign_dx);  tangent: ẏ = f'(x) ⊙ ẋ;
// backward_tangent: ḋx += ḋy ⊙ f'(x) + dy ⊙ f''(x) ẋ = ḋy ⊙ f'(x) + dy ⊙ (f''/f')(x) ẏ (ẏ = f'ẋ from
// tangent(), so the curvature term needs no ẋ and also serves activations fused into a
// convolution, which keep only ẏ).  No parameters, no allocation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "auxl/nn/context.hpp"
#include "auxl/nn/fused_activation.hpp"  // piecewise_linear_activation

namespace auxl::nn::detail {

template <class T, class In, class F>
class elementwise_layer {
public:
    using scalar_type = T;
    using input_shape = In;
    using output_shape = In;
    static constexpr std::size_t parameter_count = 0;
    static constexpr bool assigns_input_gradient = true;  // see nn/context.hpp

    static const char* name() { return F::name(); }
    static std::vector<segment> segments() { return {}; }
    void reserve(std::size_t) {}
    void init(T*, rng&, init_scheme) const {}

    void forward(const layer_context<T>& ctx, const T* x, T* y) const {
        const std::size_t count = ctx.batch * In::size;
        for (std::size_t i = 0; i < count; ++i) y[i] = F::template value<T>(x[i]);
    }

    void backward(const layer_context<T>& ctx, const T* x, const T* y, const T* dy, T* dx) const {
        if (!dx) return;
        const std::size_t count = ctx.batch * In::size;
        if (ctx.assign_dx) {
            for (std::size_t i = 0; i < count; ++i) dx[i] = dy[i] * F::template slope<T>(x[i], y[i]);
        } else {
            for (std::size_t i = 0; i < count; ++i) dx[i] += dy[i] * F::template slope<T>(x[i], y[i]);
        }
    }

    void backward_tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, const T* y, const T* y_dot, const T* dy,
                          const T* dy_dot, T* dx_dot) const
        requires second_order_activation<F, T>
    {
        if (!dx_dot) return;
        const std::size_t count = ctx.batch * In::size;
        for (std::size_t i = 0; i < count; ++i) dx_dot[i] += dy_dot[i] * F::template slope<T>(x[i], y[i]);
        if constexpr (!piecewise_linear_activation<F>) {
            if (x_dot)
                for (std::size_t i = 0; i < count; ++i) dx_dot[i] += dy[i] * F::template curvature_ratio<T>(y[i]) * y_dot[i];
        }
    }

    void tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, const T* y, T* y_dot) const {
        const std::size_t count = ctx.batch * In::size;
        if (!x_dot) {
            std::fill_n(y_dot, count, T(0));
            return;
        }
        for (std::size_t i = 0; i < count; ++i) y_dot[i] = x_dot[i] * F::template slope<T>(x[i], y[i]);
    }
};

}  // namespace auxl::nn::detail
