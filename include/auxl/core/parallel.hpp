// auxl/core/parallel.hpp — element-wise passes over long buffers on the GEMM threads.
//
// With several GEMM threads, the products of a step get faster but the passes between them do
// not: on the Eigen backend with two threads, the MLP step's optimizer update and gradient zeroing
// (one pass each over every parameter) were what kept it under 60 % of the raw GEMM rate.  This
// splits such a pass into contiguous chunks, one per thread, on the Eigen backend built with
// OpenMP (the CMake target auxl::eigen_gemm).  On the OpenBLAS backend, whose thread pool is its
// own, and for short buffers, where waking a team costs more than it saves, it runs serially.
//
// Only for passes where element i depends on element i alone: the chunks then give the same bits
// as one serial pass, for any thread count.
//
// run_workers() is the coarser tool: a few workers, each doing a block of independent work with
// its own matrix products (conv2d's samples).  It runs on both backends (see its comment).
#pragma once

#include <cstddef>
#include <exception>
#include <mutex>

#include "auxl/core/blas.hpp"
#include "auxl/core/worker_pool.hpp"

#if defined(AUXL_GEMM_EIGEN) && defined(_OPENMP)
#include <omp.h>
#define AUXL_GEMM_TEAM 1  // work may run on the GEMM threads' OpenMP team (also conv2d's samples)
#endif

namespace auxl {

#if !defined(AUXL_GEMM_EIGEN)
namespace detail {
// OpenBLAS at one thread for a scope.  Only the holder of the worker pool opens one, so that
// concurrent callers cannot restore each other's setting out of order.
struct single_threaded_openblas {
    int saved = openblas_get_num_threads();
    single_threaded_openblas() { openblas_set_num_threads(1); }
    ~single_threaded_openblas() { openblas_set_num_threads(saved); }
    single_threaded_openblas(const single_threaded_openblas&) = delete;
    single_threaded_openblas& operator=(const single_threaded_openblas&) = delete;
};
}  // namespace detail
#endif

/// Below this many elements a pass runs on one thread: about where a two-thread OpenMP team's
/// start and join (a few microseconds) cost what half a pass of simple arithmetic saves.
inline constexpr std::size_t parallel_grain = std::size_t{1} << 15;

/// Calls f(begin, end) on contiguous chunks covering [0, n): one chunk per GEMM thread when
/// n >= 2 * parallel_grain and the build can thread, else f(0, n) on the calling thread.
template <class F>
void for_each_chunk(std::size_t n, F&& f) {
#if defined(AUXL_GEMM_TEAM)
    const int threads = gemm_threads();
    if (threads > 1 && n >= 2 * parallel_grain && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const auto t = std::size_t(omp_get_thread_num()), team = std::size_t(omp_get_num_threads());
            const std::size_t first = n * t / team, last = n * (t + 1) / team;
            if (first < last) f(first, last);
        }
        return;
    }
#endif
    f(std::size_t{0}, n);
}

/// How many workers run_workers() can run at once: the GEMM thread count, or 1 on the Eigen
/// backend built without OpenMP (its products then have one thread, and so do the workers).
inline std::size_t worker_capacity() {
#if defined(AUXL_GEMM_EIGEN) && !defined(AUXL_GEMM_TEAM)
    return 1;
#else
    const int threads = gemm_threads();
    return threads > 1 ? std::size_t(threads) : std::size_t{1};
#endif
}

/// Calls f(worker, team) for worker = 0 .. team-1, concurrently, and returns when all are done;
/// `team` is the number of workers that really ran (at most `count`, fewer only where OpenMP
/// gives a smaller team), so f splits its work by `team`, not by `count`.  Each worker's matrix
/// products run on its own thread:
///  * Eigen backend: an OpenMP team (a GEMM inside it runs on its calling thread).
///  * OpenBLAS backend: the calling thread is worker 0 and persistent pool threads are the others
///    (core/worker_pool.hpp; no allocation once started).  OpenBLAS is set to one thread while
///    they run and restored after (its FAQ's advice for threaded callers; otherwise each product
///    would wake OpenBLAS's own pool on top of the workers).  The setting is process-wide:
///    products called from other threads meanwhile run on one thread.  If the pool is busy (a
///    call from another thread, or a nested one), the workers run in order on the calling thread.
/// An exception thrown by f is rethrown here after every worker has stopped (that of the lowest
/// worker index when several throw).
template <class F>
void run_workers(std::size_t count, F&& f) {
    if (count <= 1) {
        f(std::size_t{0}, std::size_t{1});
        return;
    }
    std::mutex error_lock;
    std::exception_ptr error;
    std::size_t error_worker = count;
    const auto run = [&](std::size_t t, std::size_t team) noexcept {
        try {
            f(t, team);
        } catch (...) {
            std::lock_guard lock(error_lock);
            if (t < error_worker) {
                error = std::current_exception();
                error_worker = t;
            }
        }
    };
#if defined(AUXL_GEMM_EIGEN)
#if defined(AUXL_GEMM_TEAM)
#pragma omp parallel num_threads(int(count))
    run(std::size_t(omp_get_thread_num()), std::size_t(omp_get_num_threads()));
#else
    for (std::size_t t = 0; t < count; ++t) run(t, count);
#endif
#else
    using run_type = decltype(run);
    const auto trampoline = [](void* context, std::size_t t, std::size_t team) noexcept {
        (*static_cast<const run_type*>(context))(t, team);
    };
    auto& pool = detail::worker_pool::instance();
    if (const auto job = pool.try_acquire()) {
        const detail::single_threaded_openblas scope;
        pool.run(job, count, trampoline, const_cast<void*>(static_cast<const void*>(&run)));
    } else {
        for (std::size_t t = 0; t < count; ++t) run(t, count);
    }
#endif
    if (error) std::rethrow_exception(error);
}

}  // namespace auxl
