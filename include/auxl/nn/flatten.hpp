// auxl/nn/flatten.hpp — views a C x H x W image as a C·H·W feature vector.
// Data are already row-major, so this is a copy (kept explicit so every layer has its own
// output buffer and backward stays uniform).  No parameters.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "auxl/nn/context.hpp"

namespace auxl::nn {

struct flatten {
    template <class T, class In>
    class layer {
    public:
        using scalar_type = T;
        using input_shape = In;
        using output_shape = shape<In::size>;
        static constexpr std::size_t parameter_count = 0;
        static constexpr bool assigns_input_gradient = true;  // see nn/context.hpp

        static const char* name() { return "flatten"; }
        static std::vector<segment> segments() { return {}; }
        void reserve(std::size_t) {}
        void init(T*, rng&, init_scheme) const {}

        void forward(const layer_context<T>& ctx, const T* x, T* y) const {
            std::copy_n(x, ctx.batch * In::size, y);
        }
        void backward(const layer_context<T>& ctx, const T*, const T*, const T* dy, T* dx) const {
            if (!dx) return;
            if (ctx.assign_dx) std::copy_n(dy, ctx.batch * In::size, dx);
            else for (std::size_t i = 0; i < ctx.batch * In::size; ++i) dx[i] += dy[i];
        }
        /// Linear in dy with the forward's pattern fixed: the tangent of backward is backward of ḋy.
        void backward_tangent(const layer_context<T>& ctx, const T* x, const T*, const T* y, const T*, const T*,
                              const T* dy_dot, T* dx_dot) const {
            layer_context<T> adding = ctx;
            adding.assign_dx = false;
            backward(adding, x, y, dy_dot, dx_dot);
        }
        void tangent(const layer_context<T>& ctx, const T*, const T* x_dot, const T*, T* y_dot) const {
            if (x_dot) {
                std::copy_n(x_dot, ctx.batch * In::size, y_dot);
            } else {
                std::fill_n(y_dot, ctx.batch * In::size, T(0));
            }
        }
    };
};

}  // namespace auxl::nn
