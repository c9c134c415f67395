// auxl/loss/block_softmax.hpp — softmax restricted to the block of each example's primary class.
//
// For generator logits u (batch x A) and primary label y:
//   t_a = exp(u_a − m) / Σ_{b∈B(y)} exp(u_b − m)  for a ∈ B(y),  0 elsewhere,  m = max_{b∈B(y)} u_b
// — exactly zero outside the block (ALGORITHMS.md §0 [PROPOSAL]: MAXL's code leaves 1e-8 there
// and its paper's literal formula leaks exp(0); this is the stated intent of both).
// Jacobian inside the block: diag(t) − t tᵀ, so
//   backward  du_a += t_a (dt_a − Σ_{b∈B} t_b dt_b)      tangent  ṫ_a = t_a (u̇_a − Σ_{b∈B} t_b u̇_b)
// Cost O(batch·A); no allocation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "auxl/loss/block_layout.hpp"

namespace auxl::loss {

template <class T>
struct block_softmax {
    /// t = block softmax of u (batch x A, overwritten).
    static void forward(const T* u, std::size_t batch, const block_layout& blocks, const std::int32_t* labels, T* t) {
        const std::size_t A = blocks.auxiliary_classes();
        for (std::size_t i = 0; i < batch; ++i) {
            blocks.check_label(labels[i], i, "auxl::loss::block_softmax");
            const std::size_t off = blocks.block_offset(std::size_t(labels[i]));
            const std::size_t len = blocks.block_size(std::size_t(labels[i]));
            const T* ui = u + i * A;
            T* ti = t + i * A;
            std::fill_n(ti, A, T(0));
            T m = ui[off];
            for (std::size_t a = off; a < off + len; ++a) m = std::max(m, ui[a]);
            T sum = 0;
            for (std::size_t a = off; a < off + len; ++a) sum += (ti[a] = std::exp(ui[a] - m));
            for (std::size_t a = off; a < off + len; ++a) ti[a] /= sum;
        }
    }

    /// du += J_tᵀ dt, given the forward output t.
    static void backward(const T* t, const T* dt, std::size_t batch, const block_layout& blocks,
                         const std::int32_t* labels, T* du) {
        const std::size_t A = blocks.auxiliary_classes();
        for (std::size_t i = 0; i < batch; ++i) {
            const std::size_t off = blocks.block_offset(std::size_t(labels[i]));
            const std::size_t len = blocks.block_size(std::size_t(labels[i]));
            const T* ti = t + i * A;
            const T* gi = dt + i * A;
            T inner = 0;
            for (std::size_t a = off; a < off + len; ++a) inner += ti[a] * gi[a];
            for (std::size_t a = off; a < off + len; ++a) du[i * A + a] += ti[a] * (gi[a] - inner);
        }
    }

    /// ṫ = J_t u̇ (overwritten), given the forward output t.
    static void tangent(const T* t, const T* u_dot, std::size_t batch, const block_layout& blocks,
                        const std::int32_t* labels, T* t_dot) {
        const std::size_t A = blocks.auxiliary_classes();
        for (std::size_t i = 0; i < batch; ++i) {
            const std::size_t off = blocks.block_offset(std::size_t(labels[i]));
            const std::size_t len = blocks.block_size(std::size_t(labels[i]));
            const T* ti = t + i * A;
            const T* vi = u_dot + i * A;
            T* di = t_dot + i * A;
            std::fill_n(di, A, T(0));
            T inner = 0;
            for (std::size_t a = off; a < off + len; ++a) inner += ti[a] * vi[a];
            for (std::size_t a = off; a < off + len; ++a) di[a] = ti[a] * (vi[a] - inner);
        }
    }
};

}  // namespace auxl::loss
