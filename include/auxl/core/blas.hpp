// auxl/core/blas.hpp — the one header that includes xtensor-blas.
//
// Every matrix product in auxl goes through auxl::gemm below: it wraps raw, row-major buffers
// (arena spans, activation workspaces) in non-owning xtensor adaptors and calls
// xt::blas::gemm, which ends in OpenBLAS cblas_sgemm / cblas_dgemm.  The adaptors have fixed
// rank, so no call here allocates; the output is written in place (beta = 1 accumulates).
#pragma once

#include <array>
#include <cstddef>

#include "auxl/core/xtensor.hpp"

#include <xtensor-blas/xblas.hpp>

namespace auxl {

/// Whether an operand is used as stored or transposed.
enum class transpose : bool { no = false, yes = true };

/// C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major and contiguous.
/// A is stored m x k (k x m when ta == yes); B is stored k x n (n x k when tb == yes).
template <class T>
void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
    if (m == 0 || n == 0) return;
    const std::array<std::size_t, 2> a_shape = ta == transpose::yes ? std::array<std::size_t, 2>{k, m}
                                                                     : std::array<std::size_t, 2>{m, k};
    const std::array<std::size_t, 2> b_shape = tb == transpose::yes ? std::array<std::size_t, 2>{n, k}
                                                                     : std::array<std::size_t, 2>{k, n};
    const std::array<std::size_t, 2> c_shape{m, n};
    auto a_view = xt::adapt(a, m * k, xt::no_ownership(), a_shape);
    auto b_view = xt::adapt(b, k * n, xt::no_ownership(), b_shape);
    auto c_view = xt::adapt(c, m * n, xt::no_ownership(), c_shape);
    xt::blas::gemm(a_view, b_view, c_view, static_cast<char>(ta == transpose::yes),
                   static_cast<char>(tb == transpose::yes), alpha, beta);
}

}  // namespace auxl
