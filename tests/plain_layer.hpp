// A user layer written to the basic Layer contract only (nn/context.hpp): y = 2x, no parameters,
// backward adds into dx (no assigns_input_gradient), no backward_tangent.  Tests use it to check
// what the library does for layers that do not opt into its extras.
#pragma once

#include <cstddef>
#include <vector>

#include "auxl/nn/context.hpp"

namespace auxl::testing {

struct scale_by_two {
    template <class T, class In>
    struct layer {
        using scalar_type = T;
        using input_shape = In;
        using output_shape = In;
        static constexpr std::size_t parameter_count = 0;
        static const char* name() { return "scale_by_two"; }
        static std::vector<segment> segments() { return {}; }
        void reserve(std::size_t) {}
        void init(T*, rng&, nn::init_scheme) const {}
        void forward(const nn::layer_context<T>& ctx, const T* x, T* y) const {
            for (std::size_t i = 0; i < ctx.batch * In::size; ++i) y[i] = 2 * x[i];
        }
        void backward(const nn::layer_context<T>& ctx, const T*, const T*, const T* dy, T* dx) const {
            if (dx) for (std::size_t i = 0; i < ctx.batch * In::size; ++i) dx[i] += 2 * dy[i];
        }
        void tangent(const nn::layer_context<T>& ctx, const T*, const T* x_dot, const T*, T* y_dot) const {
            for (std::size_t i = 0; i < ctx.batch * In::size; ++i) y_dot[i] = x_dot ? 2 * x_dot[i] : T(0);
        }
    };
};

}  // namespace auxl::testing
