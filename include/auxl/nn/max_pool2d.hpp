// auxl/nn/max_pool2d.hpp — max pooling over K x K windows with stride S (default S = K).
//
// Output H' = (H − K)/S + 1 (floor, no padding).  The forward pass records the index of each
// window's maximum (first one on ties), which backward and tangent route through: the layer is
// piecewise linear, so its JVP is exact wherever the maximum is unique.
// Workspace: one index per output element of the largest batch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "auxl/nn/context.hpp"

namespace auxl::nn {

template <std::size_t K, std::size_t S = K>
struct max_pool2d {
    static_assert(K > 0 && S > 0, "auxl::nn::max_pool2d<K, S>: window and stride must be positive");
    static constexpr std::size_t window = K, stride = S;

    template <class T, class In>
    class layer {
        static_assert(In::height >= K && In::width >= K,
                      "auxl::nn::max_pool2d: the pooling window is larger than the input image");

    public:
        using scalar_type = T;
        using input_shape = In;
        static constexpr std::size_t out_h = (In::height - K) / S + 1;
        static constexpr std::size_t out_w = (In::width - K) / S + 1;
        using output_shape = shape<In::channels, out_h, out_w>;
        static constexpr std::size_t parameter_count = 0;
        static constexpr bool assigns_input_gradient = true;  // see nn/context.hpp

        static const char* name() { return "max_pool2d"; }
        static std::vector<segment> segments() { return {}; }
        void reserve(std::size_t max_batch) { argmax_.assign(max_batch * output_shape::size, 0); }
        void init(T*, rng&, init_scheme) const {}

        void forward(const layer_context<T>& ctx, const T* x, T* y) { pool(x, y, argmax_.data(), ctx.batch * In::channels); }

        /// Pools `planes` consecutive H x W planes of x into y, recording each maximum's index
        /// relative to x (also used by a convolution that pools its own output, nn/fused_pool.hpp).
        static void pool(const T* x, T* y, std::uint32_t* argmax, std::size_t planes) {
            for (std::size_t plane = 0; plane < planes; ++plane) {
                const std::size_t in_base = plane * In::height * In::width;
                const std::size_t out_base = plane * out_h * out_w;
                if constexpr (K == 2 && S == 2) {
                    pool_plane_2x2(x, in_base, y + out_base, argmax + out_base);
                    continue;
                }
                for (std::size_t oh = 0; oh < out_h; ++oh) {
                    for (std::size_t ow = 0; ow < out_w; ++ow) {
                        running_max m(x, in_base + oh * S * In::width + ow * S);
                        for (std::size_t kh = 0; kh < K; ++kh)
                            for (std::size_t kw = 0; kw < K; ++kw)
                                m.take(x, in_base + (oh * S + kh) * In::width + ow * S + kw);
                        const std::size_t o = out_base + oh * out_w + ow;
                        argmax[o] = m.at;
                        y[o] = m.value;
                    }
                }
            }
        }

        void backward(const layer_context<T>& ctx, const T*, const T*, const T* dy, T* dx) const {
            if (!dx) return;
            if (ctx.assign_dx) {  // zero one plane at a time, while it is in cache, then route into it
                constexpr std::size_t in_plane = In::height * In::width, out_plane = out_h * out_w;
                for (std::size_t plane = 0; plane < ctx.batch * In::channels; ++plane) {
                    std::fill_n(dx + plane * in_plane, in_plane, T(0));
                    for (std::size_t o = plane * out_plane; o < (plane + 1) * out_plane; ++o) dx[argmax_[o]] += dy[o];
                }
                return;
            }
            const std::size_t count = ctx.batch * output_shape::size;
            for (std::size_t o = 0; o < count; ++o) dx[argmax_[o]] += dy[o];
        }

        /// Linear in dy with the forward's pattern fixed: the tangent of backward is backward of ḋy.
        void backward_tangent(const layer_context<T>& ctx, const T* x, const T*, const T* y, const T*, const T*,
                              const T* dy_dot, T* dx_dot) const {
            layer_context<T> adding = ctx;
            adding.assign_dx = false;
            backward(adding, x, y, dy_dot, dx_dot);
        }
        void tangent(const layer_context<T>& ctx, const T*, const T* x_dot, const T*, T* y_dot) const {
            const std::size_t count = ctx.batch * output_shape::size;
            if (!x_dot) {
                std::fill_n(y_dot, count, T(0));
                return;
            }
            for (std::size_t o = 0; o < count; ++o) y_dot[o] = x_dot[argmax_[o]];
        }

    private:
        // The maximum of one window so far and its index: the first of equal maxima, as a strict
        // `x[k] > value` keeps it.  Branch-free (a mask picks the index, max_ss the value): with
        // branches, which the data decide, the 2 x 2 pooling of the CNN's first convolution took
        // 1.5 ms a batch with -march=native and 7.5 ms without, against 0.7 and 0.9 ms here
        // (one Xeon core, 128 samples of 32 x 28 x 28).  The same comparisons in the same order as
        // a branching loop, so the same maxima and indices, bit for bit.
        struct running_max {
            T value;
            std::uint32_t at;
            running_max(const T* x, std::size_t first) : value(x[first]), at(static_cast<std::uint32_t>(first)) {}
            void take(const T* x, std::size_t k) {
                const T v = x[k];
                const bool greater = v > value;
                const std::uint32_t mask = 0u - static_cast<std::uint32_t>(greater);
                at = (at & ~mask) | (static_cast<std::uint32_t>(k) & mask);
                value = greater ? v : value;
            }
        };

        // The common 2 x 2, stride-2 window with its four reads written out.
        static void pool_plane_2x2(const T* x, std::size_t in_base, T* y, std::uint32_t* argmax) {
            for (std::size_t oh = 0; oh < out_h; ++oh) {
                const std::size_t top = in_base + 2 * oh * In::width, bottom = top + In::width;
                for (std::size_t ow = 0; ow < out_w; ++ow) {
                    const std::size_t i = top + 2 * ow, j = bottom + 2 * ow;
                    running_max m(x, i);
                    m.take(x, i + 1);
                    m.take(x, j);
                    m.take(x, j + 1);
                    y[oh * out_w + ow] = m.value;
                    argmax[oh * out_w + ow] = m.at;
                }
            }
        }

        std::vector<std::uint32_t> argmax_;
    };
};

}  // namespace auxl::nn
