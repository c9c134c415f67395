// auxl/core/blas.hpp — the one place where matrix products are computed.
//
// Every matrix product in auxl goes through auxl::gemm below, on raw, row-major buffers (arena
// spans, activation workspaces).  Two backends, chosen at compile time for the whole program:
//
//  * OpenBLAS (the default): xtensor-blas's cxxblas layer, which ends in cblas_sgemm /
//    cblas_dgemm (the layer under xt::blas::gemm, called directly because operands may be
//    blocks of a larger matrix, with leading dimensions).
//  * Eigen's own GEMM, when AUXL_GEMM_EIGEN is defined (CMake: link auxl::eigen_gemm, and
//    auxl::native to let Eigen use the CPU's widest vectors).  Why offer it: OpenBLAS picks its
//    kernel at run time, and where it does not recognise the CPU (a virtual machine's anonymous
//    "Intel Xeon Processor", say) it falls back to a generic SSE3 kernel ("Prescott").  On such a
//    machine Eigen compiled with -march=native runs the same products 3-5x faster (README,
//    "GEMM backend" under Install).  Threads: OpenMP (Eigen::setNbThreads), so the target links OpenMP.
//
// Define AUXL_GEMM_EIGEN identically in every translation unit of a program (the CMake target
// does): the two backends give products that differ in the last bits, and mixing them would
// break the one-definition rule of every layer template.
//
// The OpenBLAS path allocates nothing here.  Eigen's GEMM packs its operand
// blocks on the stack up to EIGEN_STACK_ALLOCATION_LIMIT (128 KiB) and on the heap beyond, so
// with this backend large products allocate once per call.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#if defined(AUXL_GEMM_EIGEN)
#include <Eigen/Core>
#else
#include "auxl/core/xtensor.hpp"

#include <xtensor-blas/xblas.hpp>

// OpenBLAS's own API (not in cblas.h).
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_corename(void);
extern "C" char* openblas_get_config(void);
#endif

namespace auxl {

/// Whether an operand is used as stored or transposed.
enum class transpose : bool { no = false, yes = true };

#if defined(AUXL_GEMM_EIGEN)

namespace detail {
template <class T>
using row_major_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// c = alpha * a_op * b_op + beta * c for already-transposed operand expressions.  beta == 0 must
// not read c (BLAS semantics: c may hold garbage or NaN), so it is an assignment, not a scale.
template <class T, class A, class B, class C>
void eigen_product(const A& a_op, const B& b_op, T alpha, T beta, C& c) {
    if (beta == T(0)) {
        c.noalias() = alpha * a_op * b_op;
    } else {
        if (beta != T(1)) c *= beta;
        c.noalias() += alpha * a_op * b_op;
    }
}
}  // namespace detail

#endif

/// C (m x n) = alpha * op(A) * op(B) + beta * C on row-major blocks with leading dimensions
/// (BLAS's lda, ldb, ldc: the distance between the starts of two rows as stored), so that a block
/// of rows or columns of a larger matrix can be one operand (core/parallel.hpp's split products).
/// A is stored m x k (k x m when ta == yes) with rows lda apart; B is stored k x n (n x k when
/// tb == yes) with rows ldb apart; C's rows are ldc apart.
template <class T>
void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    if (m == 0 || n == 0) return;
    const bool a_t = ta == transpose::yes, b_t = tb == transpose::yes;
#if defined(AUXL_GEMM_EIGEN)
    using matrix = detail::row_major_matrix<T>;
    using index = Eigen::Index;
    using stride = Eigen::OuterStride<>;
    using const_map = Eigen::Map<const matrix, Eigen::Unaligned, stride>;
    const auto mi = static_cast<index>(m), ni = static_cast<index>(n), ki = static_cast<index>(k);
    Eigen::Map<matrix, Eigen::Unaligned, stride> c_map(c, mi, ni, stride(static_cast<index>(ldc)));
    if (k == 0) {  // an empty sum: only the beta * C part is left
        if (beta == T(0)) c_map.setZero(); else c_map *= beta;
        return;
    }
    const const_map a_map(a, a_t ? ki : mi, a_t ? mi : ki, stride(static_cast<index>(lda)));
    const const_map b_map(b, b_t ? ni : ki, b_t ? ki : ni, stride(static_cast<index>(ldb)));
    // Four spellings because op(A) and op(B) are different expression types.
    if (!a_t && !b_t) detail::eigen_product(a_map, b_map, alpha, beta, c_map);
    else if (!a_t) detail::eigen_product(a_map, b_map.transpose(), alpha, beta, c_map);
    else if (!b_t) detail::eigen_product(a_map.transpose(), b_map, alpha, beta, c_map);
    else detail::eigen_product(a_map.transpose(), b_map.transpose(), alpha, beta, c_map);
#else
    // xt::blas::gemm takes whole tensors and would copy a strided block, so this calls the
    // cxxblas layer under it (cblas_sgemm / cblas_dgemm).  BLAS rejects a leading dimension of 0,
    // which an empty operand (k == 0) would otherwise have.
    using index = xt::blas_index_t;
    const auto ld = [](std::size_t v) { return static_cast<index>(v > 0 ? v : 1); };
    cxxblas::gemm<index>(cxxblas::StorageOrder::RowMajor, a_t ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                         b_t ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans, static_cast<index>(m),
                         static_cast<index>(n), static_cast<index>(k), alpha, a, ld(lda), b, ld(ldb), beta, c, ld(ldc));
#endif
}

/// C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major and contiguous.
/// A is stored m x k (k x m when ta == yes); B is stored k x n (n x k when tb == yes).
template <class T>
void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
    gemm(ta, tb, m, n, k, alpha, a, ta == transpose::yes ? m : k, b, tb == transpose::yes ? k : n, beta, c, n);
}

/// Threads the matrix products may use (OpenBLAS's pool, or Eigen's OpenMP team).  Results are
/// reproducible for a given thread count; a different count may change the last bits.
inline void set_gemm_threads(int threads) {
    if (threads < 1) threads = 1;
#if defined(AUXL_GEMM_EIGEN)
    Eigen::setNbThreads(threads);
#else
    openblas_set_num_threads(threads);
#endif
}

/// Threads the matrix products currently use.
inline int gemm_threads() {
#if defined(AUXL_GEMM_EIGEN)
    return Eigen::nbThreads();
#else
    return openblas_get_num_threads();
#endif
}

/// One line naming the backend in use, for logs and benchmark headers: the OpenBLAS build and
/// the kernel it chose for this CPU, or Eigen's version and the vector instruction sets it was
/// compiled for.
inline std::string gemm_backend() {
#if defined(AUXL_GEMM_EIGEN)
    // Eigen's own SimdInstructionSetsInUse() says "AVX" for an AVX2+FMA build (it names AVX2 and
    // FMA only beside AVX-512), which hides the difference that decides its GEMM speed; name the
    // widest sets from Eigen's configuration macros instead.
    std::string sets;
    [[maybe_unused]] const auto add = [&sets](const char* name) { sets += sets.empty() ? name : std::string(", ") + name; };
#if defined(EIGEN_VECTORIZE_AVX512)
    add("AVX-512");
#endif
#if defined(EIGEN_VECTORIZE_AVX2)
    add("AVX2");
#elif defined(EIGEN_VECTORIZE_AVX)
    add("AVX");
#endif
#if defined(EIGEN_VECTORIZE_FMA)
    add("FMA");
#endif
#if defined(EIGEN_VECTORIZE_SSE4_2)
    add("SSE4.2");
#elif defined(EIGEN_VECTORIZE_SSE2)
    add("SSE2");
#endif
#if defined(EIGEN_VECTORIZE_SVE)
    add("SVE");
#endif
#if defined(EIGEN_VECTORIZE_NEON)
    add("NEON");  // AArch64 (tests/cross/aarch64.sh)
#endif
    if (sets.empty()) sets = "no SIMD";
    return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
           std::to_string(EIGEN_MINOR_VERSION) + " GEMM (" + sets + ")";
#else
    return std::string(openblas_get_config()) + ", kernel " + openblas_get_corename();
#endif
}

}  // namespace auxl
