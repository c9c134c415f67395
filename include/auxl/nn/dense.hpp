// auxl/nn/dense.hpp — fully connected layer, y = x Wᵀ + b.
//
// nn::dense<Out> takes a flat input of In features (C x 1 x 1; put nn::flatten after a
// convolution) and produces Out features.  Parameters: weight Out x In (row-major, as in
// PyTorch, so checkpoints map one to one), bias Out.  Every product is one GEMM on the batch:
//   forward   y  = x Wᵀ + 1 bᵀ                      (N x In)(In x Out)
//   backward  dW += dyᵀ x,  db += colsum(dy),  dx += dy W
//   tangent   ẏ  = ẋ Wᵀ + x Ẇᵀ + 1 ḃᵀ
//   backward_tangent (the tangent of backward, for exact Hessian-vector products)
//             dẆ += ḋyᵀ x + dyᵀ ẋ,  dḃ += colsum(ḋy),  ḋx += ḋy W + dy Ẇ
// Cost per call: 2·N·In·Out flops forward, twice that backward.  No allocation.  Products go
// through worker_gemm(): in a network with convolutions they run on auxl's workers
// (core/worker_gemm.hpp), elsewhere they are plain gemm().
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "auxl/core/worker_gemm.hpp"
#include "auxl/nn/context.hpp"

namespace auxl::nn {

template <std::size_t Out>
struct dense {
    static_assert(Out > 0, "auxl::nn::dense<Out>: Out must be positive");

    template <class T, class In>
    class layer {
        static_assert(In::is_flat,
                      "auxl::nn::dense needs a flat input (C x 1 x 1) but the previous layer outputs a "
                      "C x H x W image: put nn::flatten between that layer and nn::dense");

    public:
        using scalar_type = T;
        using input_shape = In;
        using output_shape = shape<Out>;
        static constexpr std::size_t in_features = In::size;
        static constexpr std::size_t out_features = Out;
        static constexpr std::size_t weight_offset = 0;
        static constexpr std::size_t bias_offset = padded_count<T>(Out * In::size);
        static constexpr std::size_t parameter_count = bias_offset + padded_count<T>(Out);
        static constexpr bool assigns_input_gradient = true;  // see nn/context.hpp

        static const char* name() { return "dense"; }
        static std::vector<segment> segments() {
            return {detail::make_segment("weight", {Out, in_features}, weight_offset),
                    detail::make_segment("bias", {Out}, bias_offset)};
        }

        void reserve(std::size_t) {}

        void init(T* params, rng& gen, init_scheme scheme) const {
            initialize(params + weight_offset, Out * in_features, in_features, Out, scheme, gen);
            initialize_bias(params + bias_offset, Out, in_features, scheme, gen);
        }

        void forward(const layer_context<T>& ctx, const T* x, T* y) const {
            const T* w = ctx.params + weight_offset;
            const T* b = ctx.params + bias_offset;
            for (std::size_t n = 0; n < ctx.batch; ++n) std::copy_n(b, Out, y + n * Out);
            worker_gemm<T>(transpose::no, transpose::yes, ctx.batch, Out, in_features, T(1), x, w, T(1), y);
        }

        void backward(const layer_context<T>& ctx, const T* x, const T* /*y*/, const T* dy, T* dx) const {
            if (ctx.grad) {
                worker_gemm<T>(transpose::yes, transpose::no, Out, in_features, ctx.batch, T(1), dy, x, T(1),
                        ctx.grad + weight_offset);
                T* db = ctx.grad + bias_offset;
                for (std::size_t n = 0; n < ctx.batch; ++n) {
                    const T* row = dy + n * Out;
                    for (std::size_t o = 0; o < Out; ++o) db[o] += row[o];
                }
            }
            if (dx) {  // beta = 0 overwrites dx without reading it (ctx.assign_dx)
                worker_gemm<T>(transpose::no, transpose::no, ctx.batch, in_features, Out, T(1), dy, ctx.params + weight_offset,
                        ctx.assign_dx ? T(0) : T(1), dx);
            }
        }

        void backward_tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, const T* /*y*/, const T* /*y_dot*/,
                              const T* dy, const T* dy_dot, T* dx_dot) const {
            if (ctx.grad) {
                T* gw = ctx.grad + weight_offset;
                worker_gemm<T>(transpose::yes, transpose::no, Out, in_features, ctx.batch, T(1), dy_dot, x, T(1), gw);
                if (x_dot) worker_gemm<T>(transpose::yes, transpose::no, Out, in_features, ctx.batch, T(1), dy, x_dot, T(1), gw);
                T* db = ctx.grad + bias_offset;
                for (std::size_t n = 0; n < ctx.batch; ++n)
                    for (std::size_t o = 0; o < Out; ++o) db[o] += dy_dot[n * Out + o];
            }
            if (dx_dot) {
                worker_gemm<T>(transpose::no, transpose::no, ctx.batch, in_features, Out, T(1), dy_dot, ctx.params + weight_offset,
                               T(1), dx_dot);
                if (ctx.param_tangent)
                    worker_gemm<T>(transpose::no, transpose::no, ctx.batch, in_features, Out, T(1), dy,
                                   ctx.param_tangent + weight_offset, T(1), dx_dot);
            }
        }

        void tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, const T* /*y*/, T* y_dot) const {
            const std::size_t count = ctx.batch * Out;
            if (ctx.param_tangent) {
                const T* b_dot = ctx.param_tangent + bias_offset;
                for (std::size_t n = 0; n < ctx.batch; ++n) std::copy_n(b_dot, Out, y_dot + n * Out);
                worker_gemm<T>(transpose::no, transpose::yes, ctx.batch, Out, in_features, T(1), x,
                        ctx.param_tangent + weight_offset, T(1), y_dot);
            } else {
                std::fill_n(y_dot, count, T(0));
            }
            if (x_dot) {
                worker_gemm<T>(transpose::no, transpose::yes, ctx.batch, Out, in_features, T(1), x_dot,
                        ctx.params + weight_offset, T(1), y_dot);
            }
        }
    };
};

}  // namespace auxl::nn
