// auxl/core/denormals.hpp — run a stretch of arithmetic with subnormal floats flushed to zero.
//
// Why: on x86 an instruction that reads or produces a subnormal (0 < |x| < FLT_MIN ≈ 1.2e-38)
// takes a microcode assist, tens to a hundred times the normal cost.  State that decays
// geometrically once its input is zero — Adam's first moment by β1 per step, SGD's velocity by
// the momentum — spends hundreds of steps in that range (from 1e-30 down to 1e-45 at 0.9 per
// step), and an optimizer pass touches every such element every step.  Measured: DTG at MLP
// 60,000 went from 25.6 to 47.9 s per epoch over four epochs, with adam::step rising from 2 % to
// 40 % of the profile (README, "Subnormal floats").
//
// The guard sets the calling thread's FTZ (results that would be subnormal become 0) and DAZ
// (subnormal inputs read as 0) bits in MXCSR and restores the previous bits when it goes out of
// scope, so the code around it is untouched: the library never changes the floating-point mode
// behind the caller's back.  MXCSR is per thread; a pass split over threads needs a guard in
// each chunk (the optimizers do that).  On targets without MXCSR it does nothing
// (`supported` is false).
#pragma once

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <xmmintrin.h>
#define AUXL_HAS_MXCSR 1
#else
#define AUXL_HAS_MXCSR 0
#endif

namespace auxl {

class scoped_flush_denormals {
public:
    /// Whether this target can flush (x86 with SSE2); elsewhere the guard is a no-op.
    static constexpr bool supported = AUXL_HAS_MXCSR != 0;

    /// enable = false makes the guard a no-op (for callers with an option to keep subnormals).
    explicit scoped_flush_denormals(bool enable = true) {
#if AUXL_HAS_MXCSR
        if (enable) {
            saved_ = _mm_getcsr();
            _mm_setcsr(saved_ | flush_bits);
            active_ = true;
        }
#else
        (void)enable;
#endif
    }
    ~scoped_flush_denormals() {
#if AUXL_HAS_MXCSR
        if (active_) _mm_setcsr(saved_);
#endif
    }
    scoped_flush_denormals(const scoped_flush_denormals&) = delete;
    scoped_flush_denormals& operator=(const scoped_flush_denormals&) = delete;

    /// Whether the calling thread currently flushes subnormal results and inputs (both bits set).
    static bool active_on_this_thread() {
#if AUXL_HAS_MXCSR
        return (_mm_getcsr() & flush_bits) == flush_bits;
#else
        return false;
#endif
    }

private:
#if AUXL_HAS_MXCSR
    static constexpr unsigned flush_bits = 0x8040u;  // FTZ (bit 15) | DAZ (bit 6)
    unsigned saved_ = 0;
#endif
    bool active_ = false;
};

}  // namespace auxl
