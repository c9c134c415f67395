// auxl/nn/conv2d.hpp — 2-D convolution by im2col + GEMM.
//
// nn::conv2d<OutC, K, Stride = 1, Pad = 0, Activation = no_activation, Pool = no_pool>: square K x K
// kernels, zero padding Pad on every side, optionally followed by an element-wise activation and a
// max pooling applied to each sample's output while it is in cache (nn/fused_activation.hpp,
// nn/fused_pool.hpp: conv2d<32, 3, 1, 1, relu, max_pool2d<2>> gives bitwise the numbers of
// conv2d<32, 3, 1, 1>, relu, max_pool2d<2>, without the whole-batch passes and buffers between them).
// Input C x H x W, output OutC x H' x W' with H' = (H + 2·Pad − K)/Stride + 1.
// Parameters: weight OutC x C x K x K (PyTorch's order), bias OutC.
// Per sample n, with cols_n = im2col(x_n) of shape (C·K·K) x (H'·W'):
//   forward   y_n  = W cols_n + b 1ᵀ
//   backward  dW  += dy_n cols_nᵀ,  db += rowsum(dy_n),  dx_n += col2im(Wᵀ dy_n)
//   tangent   ẏ_n  = W im2col(ẋ_n) + Ẇ cols_n + ḃ 1ᵀ
//   backward_tangent (the tangent of backward, for exact Hessian-vector products)
//             dẆ += ḋy_n cols_nᵀ + dy_n im2col(ẋ_n)ᵀ,  dḃ += rowsum(ḋy_n),
//             ḋx_n += col2im(Wᵀ ḋy_n + Ẇᵀ dy_n)
// With an activation f: y_n = f(z_n) for the z_n above; backward first forms dz_n = dy_n ⊙ f'(z_n)
// in a one-sample buffer (f' from y_n), and tangent multiplies ż_n by f'(z_n).  backward_tangent forms ḋz_n
// = ḋy_n ⊙ f'(z_n) + dy_n ⊙ f''(z_n) ż_n from the output tangent (nn/fused_activation.hpp).  With a
// pooling, z_n and f(z_n) live in a one-sample buffer, y_n = pool(f(z_n)) with one index per pooled value
// kept for the whole batch, and backward and tangent route through those indices.
// Workspace: two (C·K·K) x (H'·W') buffers per worker (and, with stride 1 and padding, two
// zero-bordered copies of one sample); im2col is recomputed in backward rather than stored for
// the whole batch (memory grows with one sample, not with the batch).
//
// Threads: the samples of a batch are split among the GEMM threads (contiguous blocks, one worker
// each, run_workers() in core/parallel.hpp), because one sample's products are too small for the
// GEMM library to split profitably: Eigen's OpenMP team and OpenBLAS's pool both cost more than
// they saved (OpenBLAS, SkylakeX kernel, c32 k5 layer forward+backward at batch 128: 10.1 ms with
// one thread, 11.0 ms with two threads inside each product).  Weight gradients are summed per
// worker and then added in worker order, so a given thread count always gives the same bits.
// Without OpenMP on the Eigen backend the samples run in order on one worker.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "auxl/core/blas.hpp"
#include "auxl/core/parallel.hpp"  // run_workers: the samples on the GEMM threads
#include "auxl/nn/context.hpp"
#include "auxl/nn/fused_activation.hpp"
#include "auxl/nn/fused_pool.hpp"

namespace auxl::nn {

template <std::size_t OutC, std::size_t K, std::size_t Stride = 1, std::size_t Pad = 0, class Activation = no_activation,
          class Pool = no_pool>
struct conv2d {
    static_assert(OutC > 0 && K > 0 && Stride > 0, "auxl::nn::conv2d<OutC, K, Stride, Pad>: sizes must be positive");

    template <class T, class In>
    class layer {
        static_assert(In::height + 2 * Pad >= K && In::width + 2 * Pad >= K,
                      "auxl::nn::conv2d: the kernel is larger than the padded input image");
        using act = detail::fused_activation<Activation>;
        static_assert(!act::active || output_slope_activation<Activation, T>,
                      "auxl::nn::conv2d<OutC, K, Stride, Pad, Activation>: a fused activation must give its slope from "
                      "its output (a static output_slope(y), as relu, leaky_relu, tanh and sigmoid do; "
                      "nn/fused_activation.hpp); otherwise put it after the convolution as its own layer");

    public:
        using scalar_type = T;
        using input_shape = In;
        static constexpr std::size_t in_c = In::channels;
        static constexpr std::size_t out_h = (In::height + 2 * Pad - K) / Stride + 1;
        static constexpr std::size_t out_w = (In::width + 2 * Pad - K) / Stride + 1;
        using conv_shape = shape<OutC, out_h, out_w>;  // before a fused pooling
        using pooling = detail::fused_pool<Pool, T, conv_shape, Activation>;
        using output_shape = typename pooling::output_shape;
        static constexpr std::size_t conv_size = conv_shape::size;
        static constexpr std::size_t patch = in_c * K * K;       // rows of cols
        static constexpr std::size_t pixels = out_h * out_w;     // columns of cols
        static constexpr std::size_t weight_offset = 0;
        static constexpr std::size_t bias_offset = padded_count<T>(OutC * patch);
        static constexpr std::size_t parameter_count = bias_offset + padded_count<T>(OutC);
        static constexpr bool assigns_input_gradient = true;  // see nn/context.hpp
        static constexpr bool runs_on_workers = true;         // its samples: for_each_sample below

        static const char* name() { return "conv2d"; }
        static std::vector<segment> segments() {
            return {detail::make_segment("weight", {OutC, in_c, K, K}, weight_offset),
                    detail::make_segment("bias", {OutC}, bias_offset)};
        }

        void reserve(std::size_t batch) {
            workspace(workers(batch));
            if constexpr (pooling::active) argmax_.assign(batch * output_shape::size, 0);
        }

        void init(T* params, rng& gen, init_scheme scheme) const {
            initialize(params + weight_offset, OutC * patch, patch, OutC * K * K, scheme, gen);
            initialize_bias(params + bias_offset, OutC, patch, scheme, gen);
        }

        void forward(const layer_context<T>& ctx, const T* x, T* y) {
            const T* w = ctx.params + weight_offset;
            const T* b = ctx.params + bias_offset;
            if constexpr (pooling::active)  // (reserve() sizes it; this only guards direct callers)
                if (argmax_.size() < ctx.batch * output_shape::size) argmax_.resize(ctx.batch * output_shape::size);
            for_each_sample(ctx.batch, [&](std::size_t n, worker& wk) {
                T* yn = y + n * output_shape::size;
                T* zn = pooling::active ? wk.conv_out.data() : yn;
                for (std::size_t o = 0; o < OutC; ++o) std::fill_n(zn + o * pixels, pixels, b[o]);
                im2col(x + n * In::size, wk);
                gemm<T>(transpose::no, transpose::no, OutC, pixels, patch, T(1), w, wk.cols.data(), T(1), zn);
                act::apply(zn, conv_size);
                if constexpr (pooling::active) pooling::forward(zn, yn, argmax_.data() + n * output_shape::size);
            });
        }

        void backward(const layer_context<T>& ctx, const T* x, [[maybe_unused]] const T* y, const T* dy, T* dx) {
            const T* w = ctx.params + weight_offset;
            const std::size_t count = workers(ctx.batch);
            workspace(count);  // the thread count may have grown since reserve()
            // One worker accumulates straight into the gradient arena; several into their own
            // partial sums, added below in worker order.
            if (ctx.grad) zero_worker_gradients(count);
            for_each_sample(ctx.batch, [&](std::size_t n, worker& wk) {
                const T* dyn = dy + n * output_shape::size;
                if constexpr (pooling::active) {  // from here on dyn is this sample's dL/dz
                    pooling::input_gradient(dyn, y + n * output_shape::size, argmax_.data() + n * output_shape::size,
                                            wk.output_grad.data());
                    dyn = wk.output_grad.data();
                } else if constexpr (act::active) {
                    act::input_gradient(dyn, y + n * output_shape::size, wk.output_grad.data(), conv_size);
                    dyn = wk.output_grad.data();
                }
                if (ctx.grad) {
                    T* g = count > 1 ? wk.grad.data() : ctx.grad;
                    im2col(x + n * In::size, wk);
                    gemm<T>(transpose::no, transpose::yes, OutC, patch, pixels, T(1), dyn, wk.cols.data(), T(1),
                            g + weight_offset);
                    add_channel_sums(dyn, g + bias_offset);
                }
                if (dx) {
                    gemm<T>(transpose::yes, transpose::no, patch, pixels, OutC, T(1), w, dyn, T(0), wk.cols_grad.data());
                    col2im_add(wk, dx + n * In::size, ctx.assign_dx);
                }
            });
            if (ctx.grad) add_worker_gradients(count, ctx.grad);
        }

        void backward_tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, [[maybe_unused]] const T* y,
                              [[maybe_unused]] const T* y_dot, const T* dy, const T* dy_dot, T* dx_dot)
            requires detail::second_order_activation<Activation, T>
        {
            const T* w = ctx.params + weight_offset;
            const T* w_dot = ctx.param_tangent ? ctx.param_tangent + weight_offset : nullptr;
            const std::size_t count = workers(ctx.batch);
            workspace(count);
            if (ctx.grad) zero_worker_gradients(count);
            for_each_sample(ctx.batch, [&](std::size_t n, worker& wk) {
                const std::size_t at = n * output_shape::size;
                const T* dzn = dy + at;         // this sample's dL/dz
                const T* dzn_dot = dy_dot + at;  // and its tangent
                if constexpr (pooling::active) {
                    pooling::input_gradient(dy + at, y + at, argmax_.data() + at, wk.output_grad.data());
                    pooling::input_gradient_tangent(dy + at, dy_dot + at, y + at, y_dot + at, argmax_.data() + at,
                                                    wk.output_grad_dot.data());
                    dzn = wk.output_grad.data();
                    dzn_dot = wk.output_grad_dot.data();
                } else if constexpr (act::active) {
                    act::input_gradient(dy + at, y + at, wk.output_grad.data(), conv_size);
                    act::input_gradient_tangent(dy + at, dy_dot + at, y + at, y_dot + at, wk.output_grad_dot.data(), conv_size);
                    dzn = wk.output_grad.data();
                    dzn_dot = wk.output_grad_dot.data();
                }
                if (ctx.grad) {
                    T* g = count > 1 ? wk.grad.data() : ctx.grad;
                    im2col(x + n * In::size, wk);
                    gemm<T>(transpose::no, transpose::yes, OutC, patch, pixels, T(1), dzn_dot, wk.cols.data(), T(1),
                            g + weight_offset);
                    add_channel_sums(dzn_dot, g + bias_offset);
                    if (x_dot) {
                        im2col(x_dot + n * In::size, wk);
                        gemm<T>(transpose::no, transpose::yes, OutC, patch, pixels, T(1), dzn, wk.cols.data(), T(1),
                                g + weight_offset);
                    }
                }
                if (dx_dot) {
                    gemm<T>(transpose::yes, transpose::no, patch, pixels, OutC, T(1), w, dzn_dot, T(0), wk.cols_grad.data());
                    if (w_dot)
                        gemm<T>(transpose::yes, transpose::no, patch, pixels, OutC, T(1), w_dot, dzn, T(1), wk.cols_grad.data());
                    col2im_add(wk, dx_dot + n * In::size, false);
                }
            });
            if (ctx.grad) add_worker_gradients(count, ctx.grad);
        }

        void tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, [[maybe_unused]] const T* y, T* y_dot) {
            for_each_sample(ctx.batch, [&](std::size_t n, worker& wk) {
                T* yn = pooling::active ? wk.conv_out.data() : y_dot + n * output_shape::size;  // ż_n
                if (ctx.param_tangent) {
                    const T* b_dot = ctx.param_tangent + bias_offset;
                    for (std::size_t o = 0; o < OutC; ++o) std::fill_n(yn + o * pixels, pixels, b_dot[o]);
                    im2col(x + n * In::size, wk);
                    gemm<T>(transpose::no, transpose::no, OutC, pixels, patch, T(1), ctx.param_tangent + weight_offset,
                            wk.cols.data(), T(1), yn);
                } else {
                    std::fill_n(yn, conv_size, T(0));
                }
                if (x_dot) {
                    im2col(x_dot + n * In::size, wk);
                    gemm<T>(transpose::no, transpose::no, OutC, pixels, patch, T(1), ctx.params + weight_offset,
                            wk.cols.data(), T(1), yn);
                }
                if constexpr (pooling::active)
                    pooling::tangent(yn, y + n * output_shape::size, argmax_.data() + n * output_shape::size,
                                     y_dot + n * output_shape::size);
                else
                    act::tangent(yn, y + n * output_shape::size, conv_size);
            });
        }

    private:
        struct worker {
            std::vector<T> cols, cols_grad;  // one sample's im2col matrix and its gradient
            std::vector<T> padded, padded_grad;  // stride 1 with padding: one zero-bordered sample
            std::vector<T> grad;             // this worker's weight and bias gradient (several workers only)
            std::vector<T> output_grad;      // a fused activation or pooling: one sample's dL/dz
            std::vector<T> output_grad_dot;  // and its tangent (backward_tangent)
            std::vector<T> conv_out;         // a fused pooling: one sample's z (then f(z)), or ż
        };

        // The output columns ow whose input column ow·S + kw − Pad lies inside the image: [first, last).
        // Computed once per kernel column so the copy loops below have no per-element bounds test.
        // (A per-element `inside ? x : 0` select here was miscompiled by g++ 12.2 at -O3 with AVX:
        // its if-converted, masked vector loop dropped in-range pixels for some small widths.)
        struct column_range {
            std::size_t first, last;
        };
        static constexpr column_range valid_columns(std::size_t kw) {
            const std::ptrdiff_t offset = std::ptrdiff_t(kw) - std::ptrdiff_t(Pad);  // iw = ow·S + offset
            const std::ptrdiff_t s = std::ptrdiff_t(Stride);
            const std::ptrdiff_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
            const std::ptrdiff_t end = std::ptrdiff_t(In::width) - offset;  // need ow·S < end
            const std::ptrdiff_t last = end <= 0 ? 0 : (end + s - 1) / s;
            const auto clamp = [](std::ptrdiff_t v) { return std::size_t(std::clamp<std::ptrdiff_t>(v, 0, out_w)); };
            const std::size_t f = clamp(first), l = clamp(last);
            return {std::min(f, l), l};
        }

        // Offset of the input row read by output row oh and kernel row kh, or -1 in the zero padding.
        static std::ptrdiff_t input_row(std::size_t c, std::size_t oh, std::size_t kh) {
            const std::ptrdiff_t ih = std::ptrdiff_t(oh * Stride + kh) - std::ptrdiff_t(Pad);
            if (ih < 0 || ih >= std::ptrdiff_t(In::height)) return -1;
            return std::ptrdiff_t((c * In::height + std::size_t(ih)) * In::width);
        }

        // cols[(c·K + kh)·K + kw][oh·W' + ow] = x[c][oh·S + kh − Pad][ow·S + kw − Pad] (0 outside).
        static void im2col(const T* x, worker& wk) {
            if constexpr (Stride == 1) im2col_unit_stride(x, wk);
            else im2col_strided(x, wk.cols.data());
        }

        // The adjoint of im2col: each column entry is added back to the pixel it was copied from.
        // With assign, dx's old contents are dropped: one sample is zeroed here, while it is in cache,
        // rather than the whole batch beforehand (the padded path starts from zero anyway).
        static void col2im_add(worker& wk, T* dx, bool assign) {
            if constexpr (Stride == 1) {
                if (assign && Pad == 0) std::fill_n(dx, In::size, T(0));
                col2im_add_unit_stride(wk, dx, assign);
            } else {
                if (assign) std::fill_n(dx, In::size, T(0));
                col2im_add_strided(wk.cols_grad.data(), dx);
            }
        }

        // With stride 1, an output row reads out_w consecutive pixels of the zero-padded image, so
        // both directions go through a padded copy of one sample (worker::padded) in whole rows of
        // compile-time length, with no bounds tests: the generic loops below spent most of their time
        // on the row ends (perf, CNN step on OpenBLAS's Cooperlake kernel: col2im alone 10 % of the
        // step).  Every pixel gets the same additions in the same order as in the generic loops (the
        // padding cells take the rest and are dropped), so the results are bitwise the same.
        static constexpr std::size_t padded_h = In::height + 2 * Pad, padded_w = In::width + 2 * Pad;
        static constexpr std::size_t padded_size = in_c * padded_h * padded_w;

        static void im2col_unit_stride(const T* x, worker& wk) {
            const T* image = x;
            if constexpr (Pad > 0) {  // the border of wk.padded stays zero; only the inside is copied
                T* padded = wk.padded.data();
                for (std::size_t c = 0; c < in_c; ++c)
                    for (std::size_t h = 0; h < In::height; ++h)
                        copy_row<In::width>(x + (c * In::height + h) * In::width, padded + (c * padded_h + h + Pad) * padded_w + Pad);
                image = padded;
            }
            T* cols = wk.cols.data();
            for (std::size_t c = 0; c < in_c; ++c)
                for (std::size_t kh = 0; kh < K; ++kh)
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        T* row = cols + ((c * K + kh) * K + kw) * pixels;
                        const T* in = image + (c * padded_h + kh) * padded_w + kw;
                        for (std::size_t oh = 0; oh < out_h; ++oh)
                            copy_row<out_w>(in + oh * padded_w, row + oh * out_w);
                    }
        }

        static void col2im_add_unit_stride(worker& wk, T* dx, [[maybe_unused]] bool assign) {
            T* grad = dx;
            if constexpr (Pad > 0) {  // accumulate onto dx's current values (or zeros), inside a zero border
                grad = wk.padded_grad.data();
                std::fill_n(grad, padded_size, T(0));
                if (!assign)
                    for (std::size_t c = 0; c < in_c; ++c)
                        for (std::size_t h = 0; h < In::height; ++h)
                            copy_row<In::width>(dx + (c * In::height + h) * In::width,
                                                grad + (c * padded_h + h + Pad) * padded_w + Pad);
            }
            const T* cols = wk.cols_grad.data();
            for (std::size_t c = 0; c < in_c; ++c)
                for (std::size_t kh = 0; kh < K; ++kh)
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        const T* row = cols + ((c * K + kh) * K + kw) * pixels;
                        T* out = grad + (c * padded_h + kh) * padded_w + kw;
                        for (std::size_t oh = 0; oh < out_h; ++oh) add_row(row + oh * out_w, out + oh * padded_w);
                    }
            if constexpr (Pad > 0)
                for (std::size_t c = 0; c < in_c; ++c)
                    for (std::size_t h = 0; h < In::height; ++h)
                        copy_row<In::width>(grad + (c * padded_h + h + Pad) * padded_w + Pad, dx + (c * In::height + h) * In::width);
        }

        // db[o] += the sum of channel o's pixels of dy. Each sum runs in pixel order from 0, as one
        // running sum would (so the same bits), but eight channels at a time: one running sum is a
        // chain of dependent additions that left the adder idle (5 % of the CNN step in perf).
        static void add_channel_sums(const T* dy, T* db) {
            constexpr std::size_t lanes = 8;
            constexpr std::size_t full = OutC / lanes * lanes;  // channels in whole groups of eight
            for (std::size_t o = 0; o < full; o += lanes) {
                T sum[lanes] = {};
                for (std::size_t p = 0; p < pixels; ++p)
                    for (std::size_t j = 0; j < lanes; ++j) sum[j] += dy[(o + j) * pixels + p];
                for (std::size_t j = 0; j < lanes; ++j) db[o + j] += sum[j];
            }
            if constexpr (full < OutC) {  // (a run-time empty loop here made GCC warn of UB at -O3)
                for (std::size_t o = full; o < OutC; ++o) {
                    T sum = 0;
                    for (std::size_t p = 0; p < pixels; ++p) sum += dy[o * pixels + p];
                    db[o] += sum;
                }
            }
        }

        // A row of compile-time length between buffers that never overlap: memcpy of a constant size
        // is expanded inline, where std::copy_n called memmove for every 14- or 28-pixel row (7 % of
        // the CNN step in perf).
        template <std::size_t Length>
        static void copy_row(const T* src, T* dst) {
            std::memcpy(dst, src, Length * sizeof(T));
        }

        // out[i] += src[i] for one output row; the buffers never overlap (cols_grad vs the image).
        static void add_row(const T* __restrict src, T* __restrict out) {
            for (std::size_t i = 0; i < out_w; ++i) out[i] += src[i];
        }

        // The same for any stride, one bounds-checked row at a time.
        static void im2col_strided(const T* x, T* cols) {
            for (std::size_t c = 0; c < in_c; ++c) {
                for (std::size_t kh = 0; kh < K; ++kh) {
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        const column_range cr = valid_columns(kw);
                        T* row = cols + ((c * K + kh) * K + kw) * pixels;
                        for (std::size_t oh = 0; oh < out_h; ++oh) {
                            T* out = row + oh * out_w;
                            const std::ptrdiff_t in_row = input_row(c, oh, kh);
                            if (in_row < 0 || cr.first == cr.last) {
                                std::fill_n(out, out_w, T(0));
                                continue;
                            }
                            std::fill_n(out, cr.first, T(0));
                            const T* in = x + in_row + std::ptrdiff_t(cr.first * Stride + kw) - std::ptrdiff_t(Pad);
                            for (std::size_t i = 0; i < cr.last - cr.first; ++i) out[cr.first + i] = in[i * Stride];
                            std::fill(out + cr.last, out + out_w, T(0));
                        }
                    }
                }
            }
        }

        static void col2im_add_strided(const T* cols, T* dx) {
            for (std::size_t c = 0; c < in_c; ++c) {
                for (std::size_t kh = 0; kh < K; ++kh) {
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        const column_range cr = valid_columns(kw);
                        if (cr.first == cr.last) continue;
                        const T* row = cols + ((c * K + kh) * K + kw) * pixels;
                        for (std::size_t oh = 0; oh < out_h; ++oh) {
                            const std::ptrdiff_t in_row = input_row(c, oh, kh);
                            if (in_row < 0) continue;
                            T* d = dx + in_row + std::ptrdiff_t(cr.first * Stride + kw) - std::ptrdiff_t(Pad);
                            const T* src = row + oh * out_w;
                            for (std::size_t i = 0; i < cr.last - cr.first; ++i) d[i * Stride] += src[cr.first + i];
                        }
                    }
                }
            }
        }

        // Several workers accumulate parameter gradients into their own partial sums, zeroed first
        // and then added in worker order (the same bits for a thread count); one writes straight
        // into the arena.
        void zero_worker_gradients(std::size_t count) {
            if (count > 1)
                for (std::size_t t = 0; t < count; ++t) std::fill(workers_[t].grad.begin(), workers_[t].grad.end(), T(0));
        }
        void add_worker_gradients(std::size_t count, T* grad) const {
            if (count > 1)
                for (std::size_t t = 0; t < count; ++t)
                    for (std::size_t i = 0; i < parameter_count; ++i) grad[i] += workers_[t].grad[i];
        }

        // Workers for a batch: as many as the GEMM threads can run at once, capped by the batch.
        static std::size_t workers(std::size_t batch) {
            return std::max<std::size_t>(1, std::min(batch, worker_capacity()));
        }

        // Grows the per-worker buffers (only when the thread count grew since the last call).
        void workspace(std::size_t count) {
            while (workers_.size() < count) {
                worker wk;
                wk.cols.assign(patch * pixels, T(0));
                wk.cols_grad.assign(patch * pixels, T(0));
                if constexpr (Stride == 1 && Pad > 0) {
                    wk.padded.assign(padded_size, T(0));
                    wk.padded_grad.assign(padded_size, T(0));
                }
                if constexpr (act::active || pooling::active) {
                    wk.output_grad.assign(conv_size, T(0));
                    wk.output_grad_dot.assign(conv_size, T(0));
                }
                if constexpr (pooling::active) wk.conv_out.assign(conv_size, T(0));
                workers_.push_back(std::move(wk));
            }
            if (count > 1)
                for (auto& wk : workers_)
                    if (wk.grad.size() != parameter_count) wk.grad.assign(parameter_count, T(0));
        }

        // f(n, worker) for every sample n: contiguous blocks of samples per worker, in parallel
        // when there are several.
        template <class F>
        void for_each_sample(std::size_t batch, F&& f) {
            const std::size_t count = workers(batch);
            workspace(count);
            run_workers(count, [&](std::size_t t, std::size_t team) {
                // A smaller team than asked (nested OpenMP regions, OMP_THREAD_LIMIT) splits by its
                // real size; unused workers keep zero partial gradients.
                const std::size_t first = batch * t / team, last = batch * (t + 1) / team;
                for (std::size_t n = first; n < last; ++n) f(n, workers_[t]);
            });
        }

        std::vector<worker> workers_;
        std::vector<std::uint32_t> argmax_;  // a fused pooling: each pooled value's index in its sample's f(z)
    };
};

}  // namespace auxl::nn
