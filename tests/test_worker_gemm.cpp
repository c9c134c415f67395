// gemm() on blocks with leading dimensions, and worker_gemm(): the split of a product among
// auxl's workers that networks with convolutions use (core/worker_gemm.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstddef>
#include <limits>
#include <vector>

#include "auxl/core/blas.hpp"
#include "auxl/core/parallel.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/core/worker_gemm.hpp"
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/flatten.hpp"
#include "auxl/nn/multi_task.hpp"
#include "auxl/nn/network.hpp"
#include "auxl/nn/relu.hpp"
#include "auxl/nn/sequential.hpp"

using namespace auxl;

namespace {

std::vector<float> random_values(std::size_t n, std::uint64_t seed) {
    rng gen(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = float(gen.uniform(-1.0, 1.0));
    return v;
}

// C = alpha op(A) op(B) + beta C in double, on blocks with leading dimensions.
void reference_gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
                    const float* a, std::size_t lda, const float* b, std::size_t ldb, double beta, std::vector<double>& c,
                    std::size_t ldc) {
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double sum = 0;
            for (std::size_t p = 0; p < k; ++p) {
                const double av = ta == transpose::yes ? a[p * lda + i] : a[i * lda + p];
                const double bv = tb == transpose::yes ? b[j * ldb + p] : b[p * ldb + j];
                sum += av * bv;
            }
            c[i * ldc + j] = alpha * sum + (beta == 0 ? 0.0 : beta * c[i * ldc + j]);
        }
}

// Sets the GEMM thread count for a scope.
struct gemm_threads_scope {
    int saved = gemm_threads();
    explicit gemm_threads_scope(int threads) { set_gemm_threads(threads); }
    ~gemm_threads_scope() { set_gemm_threads(saved); }
};

}  // namespace

TEST_CASE("gemm on blocks of larger matrices honours the leading dimensions and leaves the rest alone") {
    const std::size_t m = 5, n = 7, k = 4, pad = 3;
    for (auto ta : {transpose::no, transpose::yes})
        for (auto tb : {transpose::no, transpose::yes})
            for (float beta : {0.0f, 1.0f, -0.5f}) {
                CAPTURE(int(ta));
                CAPTURE(int(tb));
                CAPTURE(beta);
                const std::size_t a_rows = ta == transpose::yes ? k : m, a_cols = ta == transpose::yes ? m : k;
                const std::size_t b_rows = tb == transpose::yes ? n : k, b_cols = tb == transpose::yes ? k : n;
                const std::size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
                const auto a = random_values(a_rows * lda, 1), b = random_values(b_rows * ldb, 2);
                auto c = random_values(m * ldc, 3);
                // beta == 0 must not read C: NaN inside the block must not leak into the result.
                if (beta == 0.0f) c[ldc + 2] = std::numeric_limits<float>::quiet_NaN();
                std::vector<double> expected(c.begin(), c.end());
                reference_gemm(ta, tb, m, n, k, 1.5, a.data(), lda, b.data(), ldb, beta, expected, ldc);
                gemm(ta, tb, m, n, k, 1.5f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
                for (std::size_t i = 0; i < m; ++i)
                    for (std::size_t j = 0; j < ldc; ++j) {
                        if (j < n) CHECK(c[i * ldc + j] == doctest::Approx(expected[i * ldc + j]).epsilon(1e-5));
                        else CHECK(c[i * ldc + j] == float(expected[i * ldc + j]));  // the padding is untouched
                    }
            }
    // An empty sum (k = 0) scales C by beta and accepts any leading dimension of A and B.
    std::vector<float> c(2 * 4, 2.0f);
    gemm(transpose::no, transpose::no, 2, 3, 0, 1.0f, static_cast<const float*>(nullptr), 0,
         static_cast<const float*>(nullptr), 3, 0.5f, c.data(), 4);
    CHECK(c[0] == 1.0f);
    CHECK(c[3] == 2.0f);  // padding
    CHECK(c[6] == 1.0f);
}

TEST_CASE("products_on_workers_scope nests and restores the thread's setting") {
    CHECK_FALSE(products_on_workers());
    {
        const products_on_workers_scope outer(true);
        CHECK(products_on_workers());
        {
            const products_on_workers_scope inner(false);  // cannot turn an outer scope off
            CHECK(products_on_workers());
        }
        CHECK(products_on_workers());
    }
    CHECK_FALSE(products_on_workers());
    {
        const products_on_workers_scope off(false);
        CHECK_FALSE(products_on_workers());
    }
}

TEST_CASE("worker_gemm splits large products among the workers and gives gemm's results") {
    const gemm_threads_scope threads(2);
    // Outside a scope, and for small products, nothing is split.
    CHECK(worker_gemm_team(128, 128, 3136) == 0);
    {
        const products_on_workers_scope scope(true);
#if defined(AUXL_GEMM_EIGEN)
        CHECK(worker_gemm_team(128, 128, 3136) == 0);  // one OpenMP team already serves both
#else
        CHECK(worker_gemm_team(128, 128, 3136) == 2);
        CHECK(worker_gemm_team(128, 10, 128) == 1);  // a head: on one thread, OpenBLAS's pool idle
        CHECK(worker_gemm_team(20, 4000, 3000) == 2);  // split by columns
        CHECK(worker_gemm_team(0, 4000, 3000) == 0);
        run_workers(2, [&](std::size_t t, std::size_t) {  // inside a worker: plain, single-threaded gemm
            if (t == 0) CHECK(worker_gemm_team(128, 128, 3136) == 0);
        });
#endif
    }
    // Row splits (m >= n) and column splits (m < n), every transpose, with and without beta.
    struct sizes {
        std::size_t m, n, k;
    };
    for (const sizes s : {sizes{128, 96, 200}, sizes{40, 300, 200}, sizes{37, 29, 5}})
        for (auto ta : {transpose::no, transpose::yes})
            for (auto tb : {transpose::no, transpose::yes})
                for (float beta : {0.0f, 1.0f}) {
                    CAPTURE(s.m);
                    CAPTURE(s.n);
                    CAPTURE(int(ta));
                    CAPTURE(int(tb));
                    CAPTURE(beta);
                    const auto a = random_values(s.m * s.k, 4), b = random_values(s.k * s.n, 5);
                    auto c = random_values(s.m * s.n, 6);
                    if (beta == 0.0f) c[s.n + 1] = std::numeric_limits<float>::quiet_NaN();
                    std::vector<double> expected(c.begin(), c.end());
                    reference_gemm(ta, tb, s.m, s.n, s.k, 1.0, a.data(), ta == transpose::yes ? s.m : s.k, b.data(),
                                   tb == transpose::yes ? s.k : s.n, beta, expected, s.n);
                    {
                        const products_on_workers_scope scope(true);
                        worker_gemm(ta, tb, s.m, s.n, s.k, 1.0f, a.data(), b.data(), beta, c.data());
                    }
                    for (std::size_t i = 0; i < c.size(); ++i)
                        REQUIRE(c[i] == doctest::Approx(expected[i]).epsilon(1e-4).scale(1.0));
                    CHECK(gemm_threads() == 2);  // OpenBLAS's thread count is restored
                }
}

namespace {
// Large enough for its dense products to be split (64 x 128 x 1024 > split_product_volume).
using conv_trunk = nn::sequential<nn::input<1, 8, 8>, nn::conv2d<16, 3, 1, 1, nn::relu>, nn::flatten, nn::dense<128>, nn::relu>;
using mlp_trunk = nn::sequential<nn::input<1, 8, 8>, nn::flatten, nn::dense<64>, nn::relu>;
}  // namespace

TEST_CASE("networks with convolutions run their dense products on the workers, others keep plain gemm") {
    static_assert(nn::network<conv_trunk>::runs_on_workers);
    static_assert(!nn::network<mlp_trunk>::runs_on_workers);
    static_assert(nn::multi_task<conv_trunk, nn::head<nn::dense<3>>>::runs_on_workers);
    static_assert(!nn::multi_task<mlp_trunk, nn::head<nn::dense<3>>>::runs_on_workers);
    // A CNN's passes give the same numbers with the split products (two threads) as with one
    // thread, within rounding: forward, parameter gradient, input gradient and tangent.
    using model = nn::multi_task<conv_trunk, nn::head<nn::dense<3>>>;
    const std::size_t batch = 64;
    static_assert(64 * 128 * 1024 >= split_product_volume);
    const auto x = random_values(batch * model::input_size, 7), dy = random_values(batch * 3, 8);
    const auto direction = random_values(model::parameter_count, 9);
    struct pass {
        std::vector<float> out, grad, dx, tangent;
    };
    const auto run = [&](int threads) {
        const gemm_threads_scope scope(threads);
        model net(batch);
        rng gen(11);
        net.init(gen);
        net.forward(x.data(), batch);
        pass p;
        p.out.assign(net.output(0), net.output(0) + batch * 3);
        auto grad = net.make_arena();
        p.dx.assign(batch * model::input_size, 0.0f);
        net.backward({dy.data()}, grad, p.dx.data());
        p.grad.assign(grad.data(), grad.data() + model::parameter_count);
        auto t = net.make_arena();
        std::copy(direction.begin(), direction.end(), t.data());
        net.tangent(&t, x.data());
        p.tangent.assign(net.output_tangent(0), net.output_tangent(0) + batch * 3);
        return p;
    };
    const pass one = run(1), two = run(2);
    const auto close = [](const std::vector<float>& u, const std::vector<float>& v) {
        REQUIRE(u.size() == v.size());
        for (std::size_t i = 0; i < u.size(); ++i) REQUIRE(u[i] == doctest::Approx(v[i]).epsilon(1e-4).scale(1.0));
    };
    close(one.out, two.out);
    close(one.grad, two.grad);
    close(one.dx, two.dx);
    close(one.tangent, two.tangent);
    // The same thread count gives the same bits.
    const pass again = run(2);
    CHECK(again.out == two.out);
    CHECK(again.grad == two.grad);
    CHECK(again.dx == two.dx);
    CHECK(again.tangent == two.tangent);
}
