// auxl/core/finite.hpp — is every value of a buffer finite?  The fast path of the trainer's
// per-step checks (inputs, gradients), which run over every parameter each step.
//
// A float is NaN or infinite exactly when its exponent bits are all ones.  Testing the bits with
// integer operations and OR-ing the results, without an early exit, lets the compiler vectorise
// the loop (a std::isfinite test with a branch per element does not vectorise), and long buffers
// are split over the GEMM threads (core/parallel.hpp).  Callers that need the position of the
// first bad value look for it only after this says there is one.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "auxl/core/parallel.hpp"

namespace auxl {

template <class T>
bool all_finite(const T* values, std::size_t n) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "auxl::all_finite: float or double");
    using bits = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
    constexpr bits exponent = std::is_same_v<T, float> ? bits(0x7f800000u) : bits(0x7ff0000000000000ull);
    std::atomic<bool> bad{false};
    for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
        bits hit = 0;
        for (std::size_t i = begin; i < end; ++i) hit |= bits((std::bit_cast<bits>(values[i]) & exponent) == exponent);
        if (hit) bad.store(true, std::memory_order_relaxed);
    });
    return !bad.load(std::memory_order_relaxed);
}

}  // namespace auxl
