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
// The guard sets the calling thread's flush-to-zero mode and restores the previous mode when it
// goes out of scope, so the code around it is untouched: the library never changes the
// floating-point mode behind the caller's back.  On x86 that is the FTZ (results that would be
// subnormal become 0) and DAZ (subnormal inputs read as 0) bits of MXCSR; on AArch64 it is FPCR's
// FZ bit, which does both for single and double precision, scalar and Advanced SIMD alike (some
// Arm cores also take a slow path on subnormals, and either way the optimizers' state then decays
// to exactly 0 on both architectures, as the tests check under qemu-aarch64).  The mode is per
// thread; a pass split over threads needs a guard in each chunk (the optimizers do that).  On
// other targets (32-bit Arm, ...) the guard does nothing (`supported` is false).
#pragma once

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <xmmintrin.h>
#define AUXL_FLUSH_MXCSR 1
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#include <cstdint>
#define AUXL_FLUSH_FPCR 1
#endif

namespace auxl {

class scoped_flush_denormals {
public:
    /// Whether this target can flush (x86 with SSE2, AArch64); elsewhere the guard is a no-op.
#if defined(AUXL_FLUSH_MXCSR) || defined(AUXL_FLUSH_FPCR)
    static constexpr bool supported = true;
#else
    static constexpr bool supported = false;
#endif

    /// enable = false makes the guard a no-op (for callers with an option to keep subnormals).
    explicit scoped_flush_denormals(bool enable = true) {
        if (enable && supported) {
            saved_ = read_mode();
            write_mode(saved_ | flush_bits);
            active_ = true;
        }
    }
    ~scoped_flush_denormals() {
        if (active_) write_mode(saved_);
    }
    scoped_flush_denormals(const scoped_flush_denormals&) = delete;
    scoped_flush_denormals& operator=(const scoped_flush_denormals&) = delete;

    /// Whether the calling thread currently flushes subnormal results and inputs (both bits set).
    static bool active_on_this_thread() { return supported && (read_mode() & flush_bits) == flush_bits; }

private:
#if defined(AUXL_FLUSH_MXCSR)
    using mode_bits = unsigned;
    static constexpr mode_bits flush_bits = 0x8040u;  // FTZ (bit 15) | DAZ (bit 6)
    static mode_bits read_mode() { return _mm_getcsr(); }
    static void write_mode(mode_bits m) { _mm_setcsr(m); }
#elif defined(AUXL_FLUSH_FPCR)
    using mode_bits = std::uint64_t;
    static constexpr mode_bits flush_bits = mode_bits(1) << 24;  // FPCR.FZ
    static mode_bits read_mode() {
        mode_bits m;
        asm volatile("mrs %0, fpcr" : "=r"(m));
        return m;
    }
    // volatile + "memory": the compiler must not move float arithmetic across the mode change.
    static void write_mode(mode_bits m) { asm volatile("msr fpcr, %0" : : "r"(m) : "memory"); }
#else
    using mode_bits = unsigned;
    static constexpr mode_bits flush_bits = 0;
    static mode_bits read_mode() { return 0; }
    static void write_mode(mode_bits) {}
#endif
    mode_bits saved_ = 0;
    bool active_ = false;
};

}  // namespace auxl
