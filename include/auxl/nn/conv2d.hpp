// auxl/nn/conv2d.hpp — 2-D convolution by im2col + GEMM.
//
// nn::conv2d<OutC, K, Stride = 1, Pad = 0>: square K x K kernels, zero padding Pad on every side.
// Input C x H x W, output OutC x H' x W' with H' = (H + 2·Pad − K)/Stride + 1.
// Parameters: weight OutC x C x K x K (PyTorch's order), bias OutC.
// With cols_n = im2col(x_n) of shape (C·K·K) x (H'·W'):
//   forward   y_n  = W cols_n + b 1ᵀ
//   backward  dW  += dy_n cols_nᵀ,  db += rowsum(dy_n),  dx_n += col2im(Wᵀ dy_n)
//   tangent   ẏ_n  = W im2col(ẋ_n) + Ẇ cols_n + ḃ 1ᵀ
// Samples go through in chunks: the chunk's cols_n side by side make one (C·K·K) x (c·H'·W')
// matrix, so each product is one large GEMM (a per-sample GEMM with C·K·K = 9 rows, the first
// layer of a small CNN, leaves OpenBLAS little to do and its second thread idle); the outputs
// are copied to the samples' own blocks.  The chunk is as many samples as keep its im2col matrix
// within 2^20 scalars.  im2col is recomputed in backward rather than stored for the whole batch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "auxl/core/blas.hpp"
#include "auxl/nn/context.hpp"

namespace auxl::nn {

template <std::size_t OutC, std::size_t K, std::size_t Stride = 1, std::size_t Pad = 0>
struct conv2d {
    static_assert(OutC > 0 && K > 0 && Stride > 0, "auxl::nn::conv2d<OutC, K, Stride, Pad>: sizes must be positive");

    template <class T, class In>
    class layer {
        static_assert(In::height + 2 * Pad >= K && In::width + 2 * Pad >= K,
                      "auxl::nn::conv2d: the kernel is larger than the padded input image");

    public:
        using scalar_type = T;
        using input_shape = In;
        static constexpr std::size_t in_c = In::channels;
        static constexpr std::size_t out_h = (In::height + 2 * Pad - K) / Stride + 1;
        static constexpr std::size_t out_w = (In::width + 2 * Pad - K) / Stride + 1;
        using output_shape = shape<OutC, out_h, out_w>;
        static constexpr std::size_t patch = in_c * K * K;       // rows of cols
        static constexpr std::size_t pixels = out_h * out_w;     // columns of cols
        static constexpr std::size_t weight_offset = 0;
        static constexpr std::size_t bias_offset = padded_count<T>(OutC * patch);
        static constexpr std::size_t parameter_count = bias_offset + padded_count<T>(OutC);

        static const char* name() { return "conv2d"; }
        static std::vector<segment> segments() {
            return {detail::make_segment("weight", {OutC, in_c, K, K}, weight_offset),
                    detail::make_segment("bias", {OutC}, bias_offset)};
        }

        /// Samples per GEMM: as many as keep one chunk's im2col matrix within ~4 MB (float), so
        /// the products are large enough for OpenBLAS (and its threads) while memory stays bounded.
        static constexpr std::size_t chunk_limit = std::max<std::size_t>(1, (std::size_t(1) << 20) / (patch * pixels));

        void reserve(std::size_t max_batch) {
            chunk_ = std::min(std::max<std::size_t>(max_batch, 1), chunk_limit);
            cols_.assign(patch * pixels * chunk_, T(0));
            cols_grad_.assign(patch * pixels * chunk_, T(0));
            out_.assign(OutC * pixels * chunk_, T(0));
        }

        void init(T* params, rng& gen, init_scheme scheme) const {
            initialize(params + weight_offset, OutC * patch, patch, OutC * K * K, scheme, gen);
            initialize_bias(params + bias_offset, OutC, patch, scheme, gen);
        }

        // Each chunk of c samples: cols = [im2col(x_n) ...] side by side (patch x c·pixels), one
        // GEMM W·cols (OutC x c·pixels), then a copy into the samples' OutC x pixels blocks.
        void forward(const layer_context<T>& ctx, const T* x, T* y) {
            const T* w = ctx.params + weight_offset;
            const T* b = ctx.params + bias_offset;
            for_each_chunk(ctx.batch, [&](std::size_t n0, std::size_t c) {
                im2col_chunk(x + n0 * In::size, c, cols_.data());
                gemm<T>(transpose::no, transpose::no, OutC, c * pixels, patch, T(1), w, cols_.data(), T(0), out_.data());
                scatter(out_.data(), c, b, y + n0 * output_shape::size);
            });
        }

        void backward(const layer_context<T>& ctx, const T* x, const T*, const T* dy, T* dx) {
            const T* w = ctx.params + weight_offset;
            for_each_chunk(ctx.batch, [&](std::size_t n0, std::size_t c) {
                const T* dyc = dy + n0 * output_shape::size;
                gather(dyc, c, out_.data());  // dY as OutC x c·pixels
                if (ctx.grad) {
                    im2col_chunk(x + n0 * In::size, c, cols_.data());
                    gemm<T>(transpose::no, transpose::yes, OutC, patch, c * pixels, T(1), out_.data(), cols_.data(), T(1),
                            ctx.grad + weight_offset);
                    T* db = ctx.grad + bias_offset;
                    for (std::size_t o = 0; o < OutC; ++o) {
                        T sum = 0;
                        for (std::size_t p = 0; p < c * pixels; ++p) sum += out_[o * c * pixels + p];
                        db[o] += sum;
                    }
                }
                if (dx) {
                    gemm<T>(transpose::yes, transpose::no, patch, c * pixels, OutC, T(1), w, out_.data(), T(0), cols_grad_.data());
                    for (std::size_t j = 0; j < c; ++j) col2im_add(cols_grad_.data() + j * pixels, c * pixels, dx + (n0 + j) * In::size);
                }
            });
        }

        void tangent(const layer_context<T>& ctx, const T* x, const T* x_dot, const T*, T* y_dot) {
            const T* b_dot = ctx.param_tangent ? ctx.param_tangent + bias_offset : nullptr;
            for_each_chunk(ctx.batch, [&](std::size_t n0, std::size_t c) {
                std::fill_n(out_.data(), OutC * c * pixels, T(0));
                if (ctx.param_tangent) {
                    im2col_chunk(x + n0 * In::size, c, cols_.data());
                    gemm<T>(transpose::no, transpose::no, OutC, c * pixels, patch, T(1), ctx.param_tangent + weight_offset,
                            cols_.data(), T(1), out_.data());
                }
                if (x_dot) {
                    im2col_chunk(x_dot + n0 * In::size, c, cols_.data());
                    gemm<T>(transpose::no, transpose::no, OutC, c * pixels, patch, T(1), ctx.params + weight_offset, cols_.data(),
                            T(1), out_.data());
                }
                scatter(out_.data(), c, b_dot, y_dot + n0 * output_shape::size);
            });
        }

    private:
        template <class F>
        void for_each_chunk(std::size_t batch, F&& f) const {
            for (std::size_t n0 = 0; n0 < batch; n0 += chunk_) f(n0, std::min(chunk_, batch - n0));
        }

        void im2col_chunk(const T* x, std::size_t c, T* cols) const {
            for (std::size_t j = 0; j < c; ++j) im2col(x + j * In::size, cols + j * pixels, c * pixels);
        }

        // y_n[o][p] = out[o][j·pixels + p] + bias[o] (bias may be null) for the chunk's samples.
        static void scatter(const T* out, std::size_t c, const T* bias, T* y) {
            for (std::size_t j = 0; j < c; ++j) {
                for (std::size_t o = 0; o < OutC; ++o) {
                    const T* src = out + o * c * pixels + j * pixels;
                    T* dst = y + j * output_shape::size + o * pixels;
                    const T add = bias ? bias[o] : T(0);
                    for (std::size_t p = 0; p < pixels; ++p) dst[p] = src[p] + add;
                }
            }
        }

        // The inverse layout: out[o][j·pixels + p] = dy_n[o][p].
        static void gather(const T* dy, std::size_t c, T* out) {
            for (std::size_t j = 0; j < c; ++j)
                for (std::size_t o = 0; o < OutC; ++o)
                    std::copy_n(dy + j * output_shape::size + o * pixels, pixels, out + o * c * pixels + j * pixels);
        }

        // cols[(c·K + kh)·K + kw][oh·W' + ow] = x[c][oh·S + kh − Pad][ow·S + kw − Pad] (0 outside);
        // rows are `ld` apart (ld = c·pixels when several samples share the matrix).
        static void im2col(const T* x, T* cols, std::size_t ld) {
            for (std::size_t c = 0; c < in_c; ++c) {
                for (std::size_t kh = 0; kh < K; ++kh) {
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        T* row = cols + ((c * K + kh) * K + kw) * ld;
                        for (std::size_t oh = 0; oh < out_h; ++oh) {
                            const std::ptrdiff_t ih = std::ptrdiff_t(oh * Stride + kh) - std::ptrdiff_t(Pad);
                            T* out = row + oh * out_w;
                            if (ih < 0 || ih >= std::ptrdiff_t(In::height)) {
                                std::fill_n(out, out_w, T(0));
                                continue;
                            }
                            const T* in_row = x + (c * In::height + std::size_t(ih)) * In::width;
                            for (std::size_t ow = 0; ow < out_w; ++ow) {
                                const std::ptrdiff_t iw = std::ptrdiff_t(ow * Stride + kw) - std::ptrdiff_t(Pad);
                                out[ow] = (iw < 0 || iw >= std::ptrdiff_t(In::width)) ? T(0) : in_row[iw];
                            }
                        }
                    }
                }
            }
        }

        // The adjoint of im2col: each column entry is added back to the pixel it was copied from.
        static void col2im_add(const T* cols, std::size_t ld, T* dx) {
            for (std::size_t c = 0; c < in_c; ++c) {
                for (std::size_t kh = 0; kh < K; ++kh) {
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        const T* row = cols + ((c * K + kh) * K + kw) * ld;
                        for (std::size_t oh = 0; oh < out_h; ++oh) {
                            const std::ptrdiff_t ih = std::ptrdiff_t(oh * Stride + kh) - std::ptrdiff_t(Pad);
                            if (ih < 0 || ih >= std::ptrdiff_t(In::height)) continue;
                            T* dx_row = dx + (c * In::height + std::size_t(ih)) * In::width;
                            for (std::size_t ow = 0; ow < out_w; ++ow) {
                                const std::ptrdiff_t iw = std::ptrdiff_t(ow * Stride + kw) - std::ptrdiff_t(Pad);
                                if (iw >= 0 && iw < std::ptrdiff_t(In::width)) dx_row[iw] += row[oh * out_w + ow];
                            }
                        }
                    }
                }
            }
        }

        std::size_t chunk_ = 1;
        std::vector<T> cols_;       // im2col of a chunk: patch x chunk·pixels
        std::vector<T> cols_grad_;  // Wᵀ dY of a chunk, before col2im
        std::vector<T> out_;        // W cols (forward, tangent) or dY (backward): OutC x chunk·pixels
    };
};

}  // namespace auxl::nn
