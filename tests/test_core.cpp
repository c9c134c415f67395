// Core pieces: version, arenas, rng streams, BLAS wrapper.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/blas.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/rng.hpp"
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

TEST_CASE("raise builds a message from its parts") {
    CHECK_THROWS_WITH_AS(raise<shape_error>("expected ", 784, " found ", 783), "expected 784 found 783", shape_error);
}
