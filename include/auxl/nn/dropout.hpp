// auxl/nn/dropout.hpp — inverted dropout with drop probability Num/Den (default 1/2).
//
// In training mode each unit is kept with probability 1 − p and scaled by 1/(1 − p); in
// evaluation mode the layer is the identity.  Masks come from the context's "dropout" rng stream
// and are kept in the layer, so a perturbed pass (finite differences, lookahead) can ask for the
// same mask again with ctx.reuse_masks (DESIGN.md "Second order without autodiff").
// Workspace: one mask of max_batch x size scalars.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/nn/context.hpp"

namespace auxl::nn {

template <std::size_t Num = 1, std::size_t Den = 2>
struct dropout {
    static_assert(Den > 0 && Num < Den, "auxl::nn::dropout<Num, Den>: the drop probability Num/Den must be in [0, 1)");

    template <class T, class In>
    class layer {
    public:
        using scalar_type = T;
        using input_shape = In;
        using output_shape = In;
        static constexpr std::size_t parameter_count = 0;
        static constexpr double drop_probability = double(Num) / double(Den);
        static constexpr bool assigns_input_gradient = true;  // see nn/context.hpp

        static const char* name() { return "dropout"; }
        static std::vector<segment> segments() { return {}; }
        void reserve(std::size_t max_batch) { mask_.assign(max_batch * In::size, T(1)); }
        void init(T*, rng&, init_scheme) const {}

        void forward(const layer_context<T>& ctx, const T* x, T* y) {
            const std::size_t count = ctx.batch * In::size;
            active_ = ctx.training && Num > 0;
            if (!active_) {
                std::copy_n(x, count, y);
                return;
            }
            if (!ctx.reuse_masks) {
                if (!ctx.dropout) raise<config_error>("auxl::nn::dropout: training pass without a dropout rng stream");
                const T keep_scale = T(1) / T(1 - drop_probability);
                for (std::size_t i = 0; i < count; ++i) {
                    mask_[i] = ctx.dropout->uniform() < drop_probability ? T(0) : keep_scale;
                }
            }
            for (std::size_t i = 0; i < count; ++i) y[i] = x[i] * mask_[i];
        }

        void backward(const layer_context<T>& ctx, const T*, const T*, const T* dy, T* dx) const {
            if (!dx) return;
            const std::size_t count = ctx.batch * In::size;
            if (ctx.assign_dx) {
                if (active_) for (std::size_t i = 0; i < count; ++i) dx[i] = dy[i] * mask_[i];
                else std::copy_n(dy, count, dx);
            } else if (active_) {
                for (std::size_t i = 0; i < count; ++i) dx[i] += dy[i] * mask_[i];
            } else {
                for (std::size_t i = 0; i < count; ++i) dx[i] += dy[i];
            }
        }

        /// Linear in dy with the forward's pattern fixed: the tangent of backward is backward of ḋy.
        void backward_tangent(const layer_context<T>& ctx, const T* x, const T*, const T* y, const T*, const T*,
                              const T* dy_dot, T* dx_dot) const {
            layer_context<T> adding = ctx;
            adding.assign_dx = false;
            backward(adding, x, y, dy_dot, dx_dot);
        }
        void tangent(const layer_context<T>& ctx, const T*, const T* x_dot, const T*, T* y_dot) const {
            const std::size_t count = ctx.batch * In::size;
            if (!x_dot) {
                std::fill_n(y_dot, count, T(0));
            } else if (active_) {
                for (std::size_t i = 0; i < count; ++i) y_dot[i] = x_dot[i] * mask_[i];
            } else {
                std::copy_n(x_dot, count, y_dot);
            }
        }

        /// Takes over another instance's masks (a second copy of a network replaying this one's pass).
        void copy_masks_from(const layer& other) {
            std::copy(other.mask_.begin(), other.mask_.end(), mask_.begin());
            active_ = other.active_;
        }

    private:
        std::vector<T> mask_;
        bool active_ = false;
    };
};

}  // namespace auxl::nn
