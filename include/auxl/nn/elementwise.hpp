// auxl/nn/elementwise.hpp — the shared machinery of activation layers (relu, leaky_relu, tanh,
// sigmoid): an element-wise y = f(x) with f'(x) computed from x and y.
//
// An activation policy F provides
//   static const char* name();
//   static T value(T x);
//   static T slope(T x, T y);     // f'(x), given y = f(x) (tanh and sigmoid use y)
// backward: dx += dy ⊙ f'(x) (or dx = …, ctx.assign_dx);  tangent: ẏ = f'(x) ⊙ ẋ.  No parameters, no allocation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "auxl/nn/context.hpp"

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
