// auxl/core/worker_gemm.hpp — one thread pool per step: a network with convolutions runs its other
// products on auxl's workers too.
//
// Why: on the OpenBLAS backend a convolution runs its samples on auxl's workers (run_workers(),
// OpenBLAS at one thread), while a dense layer's product is threaded by OpenBLAS's own pool.
// After such a product OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s, its
// OPENBLAS_THREAD_TIMEOUT default) before they sleep, on the cores the next convolution's workers
// need: on two cores that made the two-thread CNN step 27 % slower (docs/bench/
// thread_timeout_ab_spr_2026-12-05.log).  Inside a products_on_workers_scope, worker_gemm() keeps
// OpenBLAS's pool idle: a large product is split into blocks of rows (or columns) of C, one per
// auxl worker, each computed by single-threaded OpenBLAS; a small one runs on the calling thread
// with OpenBLAS at one thread.  Outside a scope it is plain gemm(), so an MLP keeps OpenBLAS's
// own threading, which is faster for it (its spinning threads pick the next product up at once).
//
// Who opens the scope: every pass of a block, network or multi-task model whose layers run on
// workers (nn::runs_on_workers), and the trainer's step, fit and evaluate for such a model, so a
// composition's generator networks (an MLP beside a CNN) follow the model.  The scope is
// per thread and nests (a nested scope never turns it off).
//
// Numbers: with one GEMM thread nothing changes (no split, OpenBLAS at one thread either way).
// With several, a split product's blocks may round differently from OpenBLAS's own threading;
// results stay reproducible for a given thread count, as before.  On the Eigen backend the
// convolution workers and Eigen's products share one OpenMP team, so worker_gemm() is gemm().
#pragma once

#include <algorithm>
#include <cstddef>

#include "auxl/core/blas.hpp"
#include "auxl/core/parallel.hpp"

namespace auxl {

/// Products with m·n·k below this run on one thread inside a products_on_workers_scope: about
/// 4 MFLOP, some 50 µs on one core, where waking a worker (a condition variable, ~10 µs) stops
/// paying for itself.
inline constexpr std::size_t split_product_volume = std::size_t{1} << 21;
/// Each worker of a split product gets at least this many rows (or columns) of C.
inline constexpr std::size_t split_product_min_extent = 16;

namespace detail {
inline bool& products_on_workers_flag() noexcept {
    thread_local bool on = false;
    return on;
}
}  // namespace detail

/// While one with `on` true is alive on a thread, worker_gemm() on that thread keeps OpenBLAS's
/// thread pool idle (see the file comment).  Nests: an inner scope cannot turn an outer one off.
class products_on_workers_scope {
public:
    explicit products_on_workers_scope(bool on) noexcept : saved_(detail::products_on_workers_flag()) {
        detail::products_on_workers_flag() = saved_ || on;
    }
    ~products_on_workers_scope() { detail::products_on_workers_flag() = saved_; }
    products_on_workers_scope(const products_on_workers_scope&) = delete;
    products_on_workers_scope& operator=(const products_on_workers_scope&) = delete;

private:
    bool saved_;
};

/// Whether worker_gemm() on this thread runs its products on auxl's workers.
inline bool products_on_workers() noexcept { return detail::products_on_workers_flag(); }

/// How worker_gemm() runs an m x n x k product on this thread: 0 = plain gemm() (outside a scope,
/// on the Eigen backend, with one GEMM thread, inside a worker, or for an empty C), 1 = on the
/// calling thread with OpenBLAS at one thread, t >= 2 = split among t workers.
inline std::size_t worker_gemm_team(std::size_t m, std::size_t n, std::size_t k) {
#if defined(AUXL_GEMM_EIGEN)
    (void)m, (void)n, (void)k;
    return 0;
#else
    const std::size_t capacity = worker_capacity();  // 1 inside a worker: OpenBLAS is at one thread there
    if (!products_on_workers() || capacity <= 1 || m == 0 || n == 0) return 0;
    if (m * n * k < split_product_volume) return 1;
    return std::max<std::size_t>(1, std::min(capacity, std::max(m, n) / split_product_min_extent));
#endif
}

/// C (m x n) = alpha * op(A) * op(B) + beta * C, arguments as in gemm() (contiguous, row-major).
/// Inside a products_on_workers_scope on the OpenBLAS backend with several GEMM threads: split
/// among auxl's workers, or run single-threaded when small (worker_gemm_team); else plain gemm().
template <class T>
void worker_gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                 const T* b, T beta, T* c) {
#if !defined(AUXL_GEMM_EIGEN)
    const std::size_t team = worker_gemm_team(m, n, k);
    if (team >= 2) {
        const std::size_t lda = ta == transpose::yes ? m : k, ldb = tb == transpose::yes ? k : n;
        // Split the longer side of C: each worker then packs its block of one operand and the
        // whole of the other, and the other is the smaller one.
        const bool by_rows = m >= n;
        const std::size_t extent = by_rows ? m : n;
        run_workers(team, [&](std::size_t t, std::size_t size) {
            const std::size_t first = extent * t / size, last = extent * (t + 1) / size;
            if (first == last) return;
            if (by_rows) {  // rows first..last of op(A) and of C
                const T* a_block = ta == transpose::yes ? a + first : a + first * lda;
                gemm(ta, tb, last - first, n, k, alpha, a_block, lda, b, ldb, beta, c + first * n, n);
            } else {  // columns first..last of op(B) and of C
                const T* b_block = tb == transpose::yes ? b + first * ldb : b + first;
                gemm(ta, tb, m, last - first, k, alpha, a, lda, b_block, ldb, beta, c + first, n);
            }
        });
        return;
    }
    if (team == 1) {
        auto& pool = detail::worker_pool::instance();
        if (const auto job = pool.try_acquire()) {  // holding the pool: the OpenBLAS setting is ours to change
            const detail::single_threaded_openblas scope;
            gemm(ta, tb, m, n, k, alpha, a, b, beta, c);
            return;
        }
    }
#endif
    gemm(ta, tb, m, n, k, alpha, a, b, beta, c);
}

}  // namespace auxl
