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
#pragma once

#include <cstddef>

#include "auxl/core/blas.hpp"

#if defined(AUXL_GEMM_EIGEN) && defined(_OPENMP)
#include <omp.h>
#define AUXL_GEMM_TEAM 1  // work may run on the GEMM threads' OpenMP team (also conv2d's samples)
#endif

namespace auxl {

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

}  // namespace auxl
