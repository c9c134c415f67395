// Subnormal floats: the scoped FTZ/DAZ guard sets and restores the thread's mode, and the
// optimizers' state decays to exactly 0 instead of through the subnormal range (which costs
// x86 tens of times the normal arithmetic; core/denormals.hpp), on every thread of a split pass.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "auxl/core/blas.hpp"
#include "auxl/core/denormals.hpp"
#include "auxl/core/parallel.hpp"
#include "auxl/meta/lookahead.hpp"
#include "auxl/optim/adam.hpp"
#include "auxl/optim/sgd.hpp"

using namespace auxl;

namespace {

bool subnormal(float x) { return x != 0.0f && std::fabs(x) < std::numeric_limits<float>::min(); }

std::size_t count_subnormal(const arena<float>& a) {
    std::size_t n = 0;
    for (float x : a) n += subnormal(x);
    return n;
}

// A product whose exact result (1e-40) is subnormal; volatile keeps the compiler from folding it.
float tiny_product() {
    volatile float a = 1e-20f, b = 1e-20f;
    return a * b;
}

// A subnormal input (1e-40) scaled into the normal range: 1e-30, or 0 where inputs are flushed.
float scaled_subnormal() {
    volatile float tiny = 1e-40f, scale = 1e10f;
    return tiny * scale;
}

}  // namespace

TEST_CASE("the flush guard is compiled in on x86-64 and AArch64") {
    // Every other check here is conditional on `supported`: a target test that silently fell back
    // to the no-op guard would pass them all.  tests/cross/aarch64.sh runs this file under qemu.
#if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__)
    CHECK(scoped_flush_denormals::supported);
#else
    MESSAGE("a target without flush-to-zero control: the guard is a no-op");
#endif
}

TEST_CASE("scoped_flush_denormals flushes inside its scope and restores the mode after") {
    if (!scoped_flush_denormals::supported) {
        MESSAGE("no flush-to-zero control on this target: the guard is a no-op");
        return;
    }
    const bool before = scoped_flush_denormals::active_on_this_thread();
    REQUIRE_FALSE(before);  // the process starts with IEEE gradual underflow
    CHECK(subnormal(tiny_product()));
    {
        const scoped_flush_denormals flush;
        CHECK(scoped_flush_denormals::active_on_this_thread());
        CHECK(tiny_product() == 0.0f);       // a subnormal result is flushed (x86 FTZ, Arm FZ)
        CHECK(scaled_subnormal() == 0.0f);   // a subnormal input reads as 0 (x86 DAZ, Arm FZ)
        {
            const scoped_flush_denormals nested;
            CHECK(tiny_product() == 0.0f);
        }
        CHECK(scoped_flush_denormals::active_on_this_thread());  // the inner guard restored "on"
        const scoped_flush_denormals disabled(false);
        CHECK(scoped_flush_denormals::active_on_this_thread());
    }
    CHECK_FALSE(scoped_flush_denormals::active_on_this_thread());
    CHECK(subnormal(tiny_product()));
    CHECK(scaled_subnormal() > 0.0f);
}

TEST_CASE("Adam: a moment whose gradient stops reaches exactly 0 without passing through subnormals") {
    // One weight gets a gradient once, then none: m decays by β1 = 0.9 a step, below FLT_MIN
    // after ~830 steps.  Without flushing it then stays subnormal for ~60 more steps.
    auto run = [](bool flush, std::size_t& subnormal_steps) {
        optim::adam<float> opt({.learning_rate = 1e-3, .flush_subnormals = flush});
        std::vector<float> w = {0.5f, -0.25f}, g = {1.0f, 1.0f};
        opt.step(w, g);
        g = {0.0f, 1.0f};  // the second weight keeps its gradient: its state stays normal
        subnormal_steps = 0;
        for (int t = 0; t < 1000; ++t) {
            opt.step(w, g);
            subnormal_steps += count_subnormal(opt.first_moment()) + count_subnormal(opt.second_moment()) > 0;
        }
        return std::pair{w, opt.first_moment()[0]};
    };
    std::size_t with_flush = 0, without_flush = 0;
    const auto [w_flushed, m_flushed] = run(true, with_flush);
    const auto [w_ieee, m_ieee] = run(false, without_flush);
    if (scoped_flush_denormals::supported) {
        CHECK(with_flush == 0);
        CHECK(m_flushed == 0.0f);
    }
    CHECK(without_flush > 20);  // the mechanism the option guards against is real
    // What the flushed values would have added to the weights is far below their last bit.
    CHECK(w_flushed == w_ieee);
}

TEST_CASE("SGD with momentum: a velocity whose gradient stops reaches exactly 0 without subnormals") {
    auto run = [](bool flush, std::size_t& subnormal_steps) {
        optim::sgd<float> opt({.learning_rate = 0.05, .momentum = 0.9, .flush_subnormals = flush});
        std::vector<float> w = {0.5f}, g = {1.0f};
        opt.step(w, g);
        g = {0.0f};
        subnormal_steps = 0;
        for (int t = 0; t < 1000; ++t) {
            opt.step(w, g);
            subnormal_steps += count_subnormal(opt.velocity()) > 0;
        }
        return w;
    };
    std::size_t with_flush = 0, without_flush = 0;
    const auto w_flushed = run(true, with_flush);
    const auto w_ieee = run(false, without_flush);
    if (scoped_flush_denormals::supported) CHECK(with_flush == 0);
    CHECK(without_flush > 20);
    CHECK(w_flushed == w_ieee);
}

TEST_CASE("a lookahead step flushes as the optimizer's own step does") {
    // A first moment just above FLT_MIN: β1·m is subnormal, which the step flushes to 0.
    optim::adam<float> opt({.learning_rate = 1e-3});
    std::vector<float> w = {0.0f}, g = {1.25e-37f};
    opt.step(w, g);  // m = 1.25e-38 (normal: FLT_MIN ≈ 1.18e-38), v = 1.6e-77 → 0
    g = {0.0f};
    std::vector<float> ahead(1), stepped = w;
    meta::lookahead(opt, std::span<const float>(w), std::span<const float>(g), std::span<float>(ahead));
    opt.step(stepped, g);
    CHECK(ahead[0] == stepped[0]);
    if (scoped_flush_denormals::supported) CHECK(opt.first_moment()[0] == 0.0f);
}

TEST_CASE("the optimizers flush on every thread of a pass split over the GEMM threads") {
    // Long enough for for_each_chunk to split it (2 · parallel_grain) when the build can thread.
    const std::size_t n = 4 * parallel_grain;
    const int threads_before = gemm_threads();
    set_gemm_threads(2);
    // Start the thread team outside any guard: threads created inside one would inherit its mode
    // and hide a guard missing from the chunks.
    auto any_chunk_flushing = [n] {
        std::atomic<bool> flushing{false};
        for_each_chunk(n, [&](std::size_t, std::size_t) {
            if (scoped_flush_denormals::active_on_this_thread()) flushing = true;
        });
        return flushing.load();
    };
    REQUIRE_FALSE(any_chunk_flushing());
    optim::adam<float> adam({.learning_rate = 1e-3});
    optim::sgd<float> sgd({.learning_rate = 0.05, .momentum = 0.9});
    std::vector<float> wa(n, 0.5f), ws(n, 0.5f), g(n, 1.0f);
    adam.step(wa, g);
    sgd.step(ws, g);
    std::fill(g.begin(), g.end(), 0.0f);
    std::size_t subnormal_steps = 0;
    for (int t = 0; t < 900; ++t) {
        adam.step(wa, g);
        sgd.step(ws, g);
        subnormal_steps += count_subnormal(adam.first_moment()) + count_subnormal(sgd.velocity()) > 0;
    }
    CHECK_FALSE(any_chunk_flushing());  // every thread's mode was restored after each pass
    set_gemm_threads(threads_before);
    if (scoped_flush_denormals::supported) {
        CHECK(subnormal_steps == 0);
        CHECK(adam.first_moment()[n - 1] == 0.0f);  // the last chunk, on the second thread if split
        CHECK(sgd.velocity()[n - 1] == 0.0f);
    }
    CHECK_FALSE(scoped_flush_denormals::active_on_this_thread());  // the caller's mode is untouched
}
