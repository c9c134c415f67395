// Core pieces: version, arenas, rng streams, BLAS wrapper.
#include <doctest/doctest.h>
#if defined(__unix__)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/blas.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/finite.hpp"
#include "auxl/core/parallel.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/optim/adam.hpp"
#include "auxl/optim/sgd.hpp"
#include "auxl/version.hpp"

using namespace auxl;

TEST_CASE("version header matches the CMake project version") {
    CHECK(std::string(AUXL_VERSION_STRING) == AUXL_CMAKE_PROJECT_VERSION);
}

TEST_CASE("arena is 64-byte aligned, zeroed, and deep-copied") {
    arena<float> a(37);
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
    for (float v : a) CHECK(v == 0.0f);
    a[3] = 2.0f;
    arena<float> b = a;
    b[3] = 5.0f;
    CHECK(a[3] == 2.0f);
    a = b;
    CHECK(a[3] == 5.0f);
    CHECK(padded_count<float>(17) == 32);
    CHECK(padded_count<double>(17) == 24);
}

TEST_CASE("arena::ensure_size keeps same-sized storage and contents; resize always reallocates") {
    arena<float> a(37);
    a[5] = 3.0f;
    const float* before = a.data();
    CHECK_FALSE(a.ensure_size(37));
    CHECK(a.data() == before);  // no allocation at the same size
    CHECK(a[5] == 3.0f);        // ... and the contents kept
    CHECK(a.ensure_size(40));   // a new size reallocates, to zeros
    CHECK(a.size() == 40);
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
    for (float v : a) CHECK(v == 0.0f);
    a[5] = 1.0f;
    a.resize(40);  // resize() keeps its documented meaning: zeros, even at the same size
    CHECK(a[5] == 0.0f);
    CHECK(a.ensure_size(0));
    CHECK(a.size() == 0);
    CHECK_FALSE(a.ensure_size(0));
    // A moved-from arena is empty, so ensure_size gives it storage again.
    arena<float> moved(40);
    arena<float> taken = std::move(moved);
    CHECK(taken.size() == 40);
    CHECK(moved.size() == 0);  // NOLINT(bugprone-use-after-move): the state after a move is the point
    CHECK(moved.ensure_size(40));
    CHECK(moved.data() != nullptr);
    moved[39] = 1.0f;
    arena<float> assigned(3);
    assigned = std::move(taken);
    CHECK(assigned.size() == 40);
    CHECK(taken.size() == 0);  // NOLINT(bugprone-use-after-move)
    // Copy assignment between equal sizes reuses the storage.
    arena<float> b(40), c(40);
    c[7] = 4.0f;
    const float* storage = b.data();
    b = c;
    CHECK(b.data() == storage);
    CHECK(b[7] == 4.0f);
}

TEST_CASE("arena_layout records modules and rejects overlaps") {
    arena_layout layout;
    segment w;
    w.name = "weight";
    w.size = 6;
    w.rank = 2;
    w.dims = {2, 3, 1, 1};
    layout.add_module("m0", 0, 16, {w});
    layout.add_module("m1", 16, 16, {w});
    CHECK(layout.size() == 32);
    CHECK(layout.segments()[1].offset == 16);
    CHECK(layout.segments()[1].name == "m1.weight");
    CHECK(layout.parameter_count() == 12);
    CHECK_THROWS_AS(layout.add_module("m2", 8, 16, {w}), error);
}

TEST_CASE("named rng streams are reproducible and independent of each other") {
    rng a(42, "init"), b(42, "init"), c(42, "data"), d(43, "init");
    const auto va = a(), vb = b(), vc = c(), vd = d();
    CHECK(va == vb);
    CHECK(va != vc);
    CHECK(va != vd);
    // Snapshots restore the exact state (checkpoints rely on it).
    auto snap = a.save();
    const double next = a.normal();
    a.restore(snap);
    CHECK(a.normal() == next);
}

TEST_CASE("uniform and normal transforms have the right moments and ranges") {
    rng gen(5, "moments");
    const int n = 200000;
    double sum = 0, sum2 = 0, usum = 0;
    for (int i = 0; i < n; ++i) {
        const double z = gen.normal();
        sum += z;
        sum2 += z * z;
        const double u = gen.uniform();
        CHECK_FALSE((u < 0.0 || u >= 1.0));
        usum += u;
    }
    CHECK(sum / n == doctest::Approx(0.0).epsilon(0.01));
    CHECK(std::abs(sum / n) < 0.01);
    CHECK(sum2 / n == doctest::Approx(1.0).epsilon(0.02));
    CHECK(usum / n == doctest::Approx(0.5).epsilon(0.01));
    std::vector<int> counts(7, 0);
    for (int i = 0; i < 70000; ++i) ++counts[gen.below(7)];
    for (int c : counts) CHECK(c == doctest::Approx(10000).epsilon(0.05));
}

TEST_CASE("shuffle is a permutation and depends only on the seed") {
    std::vector<int> a(100), b(100);
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 0);
    rng g1(1, "order"), g2(1, "order");
    shuffle(a.begin(), a.end(), g1);
    shuffle(b.begin(), b.end(), g2);
    CHECK(a == b);
    auto sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 100; ++i) CHECK(sorted[std::size_t(i)] == i);
    CHECK(a != sorted);
}

TEST_CASE("gemm wrapper matches a naive product for every transpose combination") {
    rng gen(6, "gemm");
    const std::size_t m = 5, n = 4, k = 3;
    std::vector<double> a(m * k), b(k * n);
    for (auto& v : a) v = gen.normal();
    for (auto& v : b) v = gen.normal();
    std::vector<double> at(k * m), bt(n * k);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < k; ++j) at[j * m + i] = a[i * k + j];
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < n; ++j) bt[j * k + i] = b[i * n + j];
    std::vector<double> expected(m * n, 0.0);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t p = 0; p < k; ++p) expected[i * n + j] += a[i * k + p] * b[p * n + j];
    for (int ta = 0; ta < 2; ++ta) {
        for (int tb = 0; tb < 2; ++tb) {
            std::vector<double> c(m * n, 1.0);
            gemm<double>(ta ? transpose::yes : transpose::no, tb ? transpose::yes : transpose::no, m, n, k, 2.0,
                         ta ? at.data() : a.data(), tb ? bt.data() : b.data(), 1.0, c.data());
            for (std::size_t i = 0; i < c.size(); ++i) CHECK(c[i] == doctest::Approx(2 * expected[i] + 1.0));
        }
    }
    // Degenerate shapes: a single row and a single column.
    std::vector<float> row = {1, 2, 3}, col = {4, 5, 6}, out = {0};
    gemm<float>(transpose::no, transpose::no, 1, 1, 3, 1.0f, row.data(), col.data(), 0.0f, out.data());
    CHECK(out[0] == 32.0f);
}

TEST_CASE("gemm honours BLAS semantics for beta and empty sums, on both backends") {
    const std::vector<float> a = {1, 2, 3, 4}, b = {1, 0, 0, 1};  // 2 x 2 each
    SUBCASE("beta = 0 never reads C (it may hold NaN)") {
        std::vector<float> c(4, std::numeric_limits<float>::quiet_NaN());
        gemm<float>(transpose::no, transpose::no, 2, 2, 2, 1.0f, a.data(), b.data(), 0.0f, c.data());
        CHECK(c == a);
    }
    SUBCASE("beta scales C before accumulating") {
        std::vector<float> c = {10, 10, 10, 10};
        gemm<float>(transpose::no, transpose::no, 2, 2, 2, 2.0f, a.data(), b.data(), 0.5f, c.data());
        CHECK(c == std::vector<float>{7, 9, 11, 13});
    }
    SUBCASE("k = 0 leaves beta * C") {
        std::vector<float> c = {1, 2, 3, 4};
        gemm<float>(transpose::no, transpose::no, 2, 2, 0, 1.0f, a.data(), b.data(), 3.0f, c.data());
        CHECK(c == std::vector<float>{3, 6, 9, 12});
        gemm<float>(transpose::yes, transpose::no, 2, 2, 0, 1.0f, a.data(), b.data(), 0.0f, c.data());
        CHECK(c == std::vector<float>(4, 0.0f));
    }
    CHECK(!gemm_backend().empty());
#if defined(AUXL_GEMM_EIGEN)
    // The widest instruction set the build targets must be named (Eigen's own string says "AVX"
    // for an AVX2+FMA build).
#if defined(__AVX512F__)
    CHECK(gemm_backend().find("AVX-512") != std::string::npos);
#elif defined(__AVX2__)
    CHECK(gemm_backend().find("AVX2") != std::string::npos);
#elif defined(__aarch64__)
    CHECK(gemm_backend().find("NEON") != std::string::npos);  // not "no SIMD"
#endif
#if defined(__FMA__)
    CHECK(gemm_backend().find("FMA") != std::string::npos);
#endif
#else
    CHECK(gemm_backend().find("kernel ") != std::string::npos);
#endif
    MESSAGE("GEMM backend: " << gemm_backend());
}

TEST_CASE("gemm on layer-sized products: correct, and reproducible for a given thread count") {
    // Large enough to cross the backends' blocking and to be split among threads.
    const std::size_t m = 128, n = 256, k = 784;
    rng gen(7, "gemm-large");
    std::vector<float> a(m * k), b(n * k);
    for (auto& v : a) v = float(gen.normal());
    for (auto& v : b) v = float(gen.normal());
    std::vector<double> expected(m * n, 0.0);  // A * B^T in double
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t p = 0; p < k; ++p) expected[i * n + j] += double(a[i * k + p]) * double(b[j * k + p]);
    const int threads_before = gemm_threads();
    for (int threads : {1, 2}) {
        set_gemm_threads(threads);
#if !defined(AUXL_GEMM_EIGEN) || defined(_OPENMP)  // Eigen without OpenMP runs one thread
        CHECK(gemm_threads() == threads);
#endif
        std::vector<float> first(m * n), second(m * n);
        gemm<float>(transpose::no, transpose::yes, m, n, k, 1.0f, a.data(), b.data(), 0.0f, first.data());
        gemm<float>(transpose::no, transpose::yes, m, n, k, 1.0f, a.data(), b.data(), 0.0f, second.data());
        CHECK(first == second);
        double worst = 0.0;
        for (std::size_t i = 0; i < first.size(); ++i) worst = std::max(worst, std::abs(first[i] - expected[i]));
        CHECK(worst < 1e-3);  // sums of 784 products of unit normals, |C| ~ 28: float rounding only
    }
    set_gemm_threads(threads_before);
}

TEST_CASE("for_each_chunk covers every index once, with one or two threads, short and long buffers") {
    const int threads_before = gemm_threads();
    for (int threads : {1, 2}) {
        set_gemm_threads(threads);
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, parallel_grain, 2 * parallel_grain - 1, 2 * parallel_grain,
                              5 * parallel_grain + 3}) {
            std::vector<int> hits(n, 0);
            std::vector<std::pair<std::size_t, std::size_t>> chunks(8, {0, 0});
            std::atomic<int> calls{0};
            for_each_chunk(n, [&](std::size_t begin, std::size_t end) {
                chunks[std::size_t(calls++)] = {begin, end};
                for (std::size_t i = begin; i < end; ++i) ++hits[i];
            });
            CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
            // Short buffers and one thread: one call over everything (no team is started).
            if (threads == 1 || n < 2 * parallel_grain) {
                CHECK(calls == 1);
                CHECK(chunks[0] == std::pair<std::size_t, std::size_t>{0, n});
            }
#if defined(AUXL_GEMM_TEAM)  // Eigen backend with OpenMP: long buffers are split
            if (threads == 2 && n >= 2 * parallel_grain) CHECK(calls == 2);
#endif
        }
    }
    set_gemm_threads(threads_before);
}

TEST_CASE("run_workers runs every worker once, concurrently, restores the GEMM threads and passes exceptions on") {
    const int threads_before = gemm_threads();
    set_gemm_threads(2);
    for (std::size_t count : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{5}}) {
        std::vector<std::atomic<int>> hits(count);
        std::atomic<std::size_t> team_seen{0};
        std::atomic<int> inner_threads{0};
        run_workers(count, [&](std::size_t t, std::size_t team) {
            REQUIRE(t < team);
            ++hits[t];
            team_seen = team;
            inner_threads = std::max(inner_threads.load(), gemm_threads());
        });
        const std::size_t team = team_seen.load();
        CHECK(team >= 1);
        CHECK(team <= count);
        for (std::size_t t = 0; t < count; ++t) CHECK(hits[t] == (t < team ? 1 : 0));
#if !defined(AUXL_GEMM_EIGEN)
        CHECK(team == count);                       // the pool gives every worker a thread
        if (count > 1) CHECK(inner_threads == 1);  // each worker's products are single-threaded
#endif
        CHECK(gemm_threads() == 2);
    }
    // Several workers really run at the same time: each waits until all have arrived.
#if !defined(AUXL_GEMM_EIGEN) || defined(AUXL_GEMM_TEAM)
    {
        std::atomic<std::size_t> arrived{0};
        std::atomic<bool> all_met{true};
        run_workers(2, [&](std::size_t, std::size_t team) {
            ++arrived;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (arrived.load() < team)
                if (std::chrono::steady_clock::now() > deadline) {
                    all_met = false;
                    return;
                }
        });
        CHECK(all_met.load());
    }
#endif
    // An exception from any worker reaches the caller, that of the lowest worker index first;
    // the other workers still finish and the thread count is restored.
    std::atomic<int> finished{0};
    CHECK_THROWS_WITH_AS(run_workers(3,
                                     [&](std::size_t t, std::size_t) {
                                         if (t >= 1) throw std::runtime_error("worker " + std::to_string(t));
                                         ++finished;
                                     }),
                         "worker 1", std::runtime_error);
    CHECK(finished == 1);
    CHECK(gemm_threads() == 2);
    // A nested call (the pool is busy) runs its workers on the calling worker, in order; all its
    // work is done (OpenMP may give a nested region a team of one).
    std::atomic<int> inner_calls{0};
    run_workers(2, [&](std::size_t, std::size_t) {
        run_workers(3, [&](std::size_t t, std::size_t team) {  // 3 items split by the real team
            for (std::size_t i = 3 * t / team; i < 3 * (t + 1) / team; ++i) ++inner_calls;
        });
    });
    CHECK(inner_calls == 6);
    CHECK(gemm_threads() == 2);
    // Two application threads at once: both jobs complete, and the thread count ends as it began.
    std::atomic<int> outer_calls{0};
    {
        std::vector<std::jthread> callers;
        for (int c = 0; c < 2; ++c)
            callers.emplace_back([&] {
                for (int repeat = 0; repeat < 50; ++repeat) run_workers(2, [&](std::size_t, std::size_t) { ++outer_calls; });
            });
    }
    CHECK(outer_calls == 2 * 50 * 2);
    CHECK(gemm_threads() == 2);
    set_gemm_threads(threads_before);
}

#if !defined(AUXL_GEMM_EIGEN) && defined(__unix__)
// A process that forks after run_workers() started the pool (a data-loader or a launcher that
// forks without exec) has in its child a copy of the pool whose threads do not exist there.  The
// child's first job must start fresh threads, not wait forever for the missing ones.  (The Eigen
// backend's OpenMP team has libgomp's own fork limits; this is the OpenBLAS backend's pool.)
TEST_CASE("run_workers works in a child process forked after the pool started") {
    const int threads_before = gemm_threads();
    set_gemm_threads(2);
    std::atomic<int> parent_calls{0};
    run_workers(3, [&](std::size_t, std::size_t) { ++parent_calls; });  // starts the pool threads
    REQUIRE(parent_calls == 3);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        alarm(30);  // a hang kills the child with SIGALRM, which the parent reports
        std::atomic<int> calls{0};
        std::atomic<std::size_t> arrived{0};
        for (int repeat = 0; repeat < 20; ++repeat)
            run_workers(3, [&](std::size_t, std::size_t team) {
                ++calls;
                ++arrived;
                while (arrived.load() < team * std::size_t(repeat + 1)) {}  // all three really run at once
            });
        _exit(calls == 3 * 20 && gemm_threads() == 2 ? 0 : 1);  // _exit: no doctest teardown in the child
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    INFO("child status " << status << std::string(WIFSIGNALED(status) ? " (killed by a signal: it hung)" : ""));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // The parent's pool is untouched by the fork.
    run_workers(3, [&](std::size_t, std::size_t) { ++parent_calls; });
    CHECK(parent_calls == 6);
    set_gemm_threads(threads_before);
}
#endif

TEST_CASE("all_finite finds NaN and infinities anywhere, in float and double") {
    auto check_type = [](auto zero) {
        using T = decltype(zero);
        const std::size_t n = 3 * parallel_grain + 7;  // long enough to be split among threads
        std::vector<T> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = T(i % 13) - T(6.5);
        v[5] = std::numeric_limits<T>::max();
        v[6] = -std::numeric_limits<T>::max();
        v[7] = std::numeric_limits<T>::denorm_min();
        v[8] = -T(0);
        CHECK(all_finite(v.data(), n));
        CHECK(all_finite(v.data(), 0));
        for (T bad : {std::numeric_limits<T>::quiet_NaN(), -std::numeric_limits<T>::quiet_NaN(),
                      std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()}) {
            for (std::size_t at : {std::size_t{0}, parallel_grain - 1, parallel_grain, n / 2, n - 1}) {
                const T kept = v[at];
                v[at] = bad;
                CHECK_MESSAGE(!all_finite(v.data(), n), "bad value at ", at);
                CHECK(all_finite(v.data(), at));  // the prefix before it is clean
                v[at] = kept;
            }
        }
    };
    const int threads_before = gemm_threads();
    for (int threads : {1, 2}) {
        set_gemm_threads(threads);
        check_type(0.0f);
        check_type(0.0);
    }
    set_gemm_threads(threads_before);
}

TEST_CASE("optimizer steps and arena zeroing give the same bits with one and two threads") {
    // 3 * grain + 5 parameters: split among threads when the build can (Eigen backend + OpenMP).
    const std::size_t n = 3 * parallel_grain + 5;
    rng gen(11, "optim-threads");
    arena<float> start(n), grad(n);
    for (std::size_t i = 0; i < n; ++i) {
        start[i] = float(gen.normal());
        grad[i] = float(gen.normal());
    }
    auto run = [&](int threads) {
        set_gemm_threads(threads);
        arena<float> a = start, b = start, c = start;
        optim::sgd<float> sgd({.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
        optim::sgd<float> nesterov({.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
        optim::adam<float> adam({.learning_rate = 1e-2, .weight_decay = 1e-3});
        for (int s = 0; s < 3; ++s) {
            sgd.step(a, grad);
            nesterov.step(b, grad);
            adam.step(c, grad);
        }
        std::vector<float> out(a.span().begin(), a.span().end());
        out.insert(out.end(), b.span().begin(), b.span().end());
        out.insert(out.end(), c.span().begin(), c.span().end());
        arena<float> z = start;
        z.zero();
        CHECK(std::all_of(z.span().begin(), z.span().end(), [](float v) { return v == 0.0f; }));
        return out;
    };
    const int threads_before = gemm_threads();
    const auto one = run(1), two = run(2);
    set_gemm_threads(threads_before);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
    // and the serial formula: first SGD step with zero velocity moves by lr * (g + wd * w)
    optim::sgd<float> sgd({.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
    arena<float> a = start;
    sgd.step(a, grad);
    for (std::size_t i : {std::size_t{0}, parallel_grain, n - 1})
        CHECK(a[i] == doctest::Approx(start[i] - 0.1f * (grad[i] + 1e-3f * start[i])).epsilon(1e-6));
}

TEST_CASE("raise builds a message from its parts") {
    CHECK_THROWS_WITH_AS(raise<shape_error>("expected ", 784, " found ", 783), "expected 784 found 783", shape_error);
}
