// Losses: gradients, tangents and target coefficients against finite differences (double),
// plus the values of known cases and the errors on bad labels.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "auxl/loss/batch_entropy.hpp"
#include "auxl/loss/block_layout.hpp"
#include "auxl/loss/block_softmax.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "gradcheck.hpp"

using namespace auxl;
using auxl::testing::numeric_directional;
using auxl::testing::numeric_gradient;
using auxl::testing::random_vector;
using auxl::testing::relative_error;

namespace {
constexpr double tolerance = 1e-6;

std::vector<double> softmax_rows(const std::vector<double>& s, std::size_t rows, std::size_t cols) {
    std::vector<double> p(s.size());
    for (std::size_t i = 0; i < rows; ++i) {
        double m = -1e300, z = 0;
        for (std::size_t c = 0; c < cols; ++c) m = std::max(m, s[i * cols + c]);
        for (std::size_t c = 0; c < cols; ++c) z += std::exp(s[i * cols + c] - m);
        for (std::size_t c = 0; c < cols; ++c) p[i * cols + c] = std::exp(s[i * cols + c] - m) / z;
    }
    return p;
}
}  // namespace

TEST_CASE("cross-entropy with hard labels equals -mean log softmax and its gradient is (p - onehot)/B") {
    const std::vector<double> s = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0};
    const std::vector<std::int32_t> y = {1, 2};
    loss::softmax_cross_entropy<double> ce;
    std::vector<double> g(6);
    const double value = ce.value_and_gradient(s.data(), 2, 3, loss::hard_targets{y.data()}, nullptr, g.data());
    const auto p = softmax_rows(s, 2, 3);
    CHECK(value == doctest::Approx(-(std::log(p[1]) + std::log(p[5])) / 2));
    CHECK(g[0] == doctest::Approx(p[0] / 2));
    CHECK(g[1] == doctest::Approx((p[1] - 1) / 2));
    CHECK(g[5] == doctest::Approx((p[5] - 1) / 2));
}

TEST_CASE("cross-entropy gradients match finite differences for hard, soft, weighted and focal variants") {
    rng gen(21, "loss");
    const std::size_t B = 4, C = 5;
    auto s = random_vector(B * C, gen, 2.0);
    std::vector<std::int32_t> y = {0, 3, 4, 1};
    auto t_raw = random_vector(B * C, gen);
    std::vector<double> t(B * C);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::exp(t_raw[i]);
    const std::vector<double> w = {0.5, 2.0, 1.0, 0.25};
    for (double gamma : {0.0, 2.0, 0.5}) {
        CAPTURE(gamma);
        loss::softmax_cross_entropy<double> ce(gamma);
        for (int variant = 0; variant < 4; ++variant) {
            CAPTURE(variant);
            const double* weights = variant % 2 ? w.data() : nullptr;
            auto f = [&] {
                return variant < 2 ? ce.value_and_gradient(s.data(), B, C, loss::hard_targets{y.data()}, weights)
                                   : ce.value_and_gradient(s.data(), B, C, loss::soft_targets<double>{t.data()}, weights);
            };
            std::vector<double> g(B * C);
            const double scale = 1.7;
            if (variant < 2) {
                ce.value_and_gradient(s.data(), B, C, loss::hard_targets{y.data()}, weights, g.data(), scale);
            } else {
                ce.value_and_gradient(s.data(), B, C, loss::soft_targets<double>{t.data()}, weights, g.data(), scale);
            }
            for (auto& v : g) v /= scale;
            CHECK(relative_error(g, numeric_gradient(f, s.data(), s.size())) < tolerance);

            // Tangent along logits (and targets, for soft targets).
            const auto sd = random_vector(B * C, gen);
            const auto td = random_vector(B * C, gen);
            const auto s0 = s;
            const auto t0 = t;
            auto move = [&](double h) {
                for (std::size_t i = 0; i < s.size(); ++i) s[i] = s0[i] + h * sd[i];
                if (variant >= 2)
                    for (std::size_t i = 0; i < t.size(); ++i) t[i] = t0[i] + h * td[i];
            };
            const auto numeric = numeric_directional(move, [&] { return std::vector<double>{f()}; });
            const double analytic =
                variant < 2 ? ce.tangent(s.data(), sd.data(), B, C, loss::hard_targets{y.data()}, weights)
                            : ce.tangent(s.data(), sd.data(), B, C, loss::soft_targets<double>{t.data()}, weights, td.data());
            CHECK(analytic == doctest::Approx(numeric[0]).epsilon(1e-6));

            // The gradient's own tangent along the logits (targets fixed): the upstream of an exact HVP.
            auto gradient_at = [&] {
                std::vector<double> out(B * C);
                if (variant < 2) ce.value_and_gradient(s.data(), B, C, loss::hard_targets{y.data()}, weights, out.data(), scale);
                else ce.value_and_gradient(s.data(), B, C, loss::soft_targets<double>{t.data()}, weights, out.data(), scale);
                return out;
            };
            auto move_logits = [&](double h) {
                for (std::size_t i = 0; i < s.size(); ++i) s[i] = s0[i] + h * sd[i];
            };
            const auto numeric_gd = numeric_directional(move_logits, gradient_at);
            std::vector<double> gd(B * C, 99.0);  // overwritten
            if (variant < 2) ce.gradient_tangent(s.data(), sd.data(), B, C, loss::hard_targets{y.data()}, weights, gd.data(), scale);
            else ce.gradient_tangent(s.data(), sd.data(), B, C, loss::soft_targets<double>{t.data()}, weights, gd.data(), scale);
            CHECK(relative_error(gd, numeric_gd) < tolerance);
        }
    }
}

TEST_CASE("focal loss value follows -t (1-p)^gamma log p") {
    const std::vector<double> s = {0.3, -0.2, 1.1};
    const std::vector<std::int32_t> y = {2};
    loss::softmax_cross_entropy<double> focal(2.0);
    const auto p = softmax_rows(s, 1, 3);
    const double expected = -std::pow(1 - p[2], 2.0) * std::log(p[2]);
    CHECK(focal.value_and_gradient(s.data(), 1, 3, loss::hard_targets{y.data()}) == doctest::Approx(expected));
}

TEST_CASE("the loss is linear in the targets with coefficients c, and c's tangent matches finite differences") {
    rng gen(22, "loss");
    const std::size_t B = 3, C = 4;
    auto s = random_vector(B * C, gen, 1.5);
    const auto t = random_vector(B * C, gen);
    const std::vector<double> w = {1.0, 0.3, 2.0};
    for (double gamma : {0.0, 2.0}) {
        loss::softmax_cross_entropy<double> ce(gamma);
        std::vector<double> c(B * C);
        ce.target_coefficients(s.data(), B, C, c.data(), w.data());
        double linear = 0;
        for (std::size_t i = 0; i < c.size(); ++i) linear += c[i] * t[i];
        CHECK(linear == doctest::Approx(ce.value_and_gradient(s.data(), B, C, loss::soft_targets<double>{t.data()}, w.data())));

        const auto sd = random_vector(B * C, gen);
        const auto s0 = s;
        auto move = [&](double h) {
            for (std::size_t i = 0; i < s.size(); ++i) s[i] = s0[i] + h * sd[i];
        };
        auto eval = [&] {
            std::vector<double> out(B * C);
            ce.target_coefficients(s.data(), B, C, out.data(), w.data());
            return out;
        };
        const auto numeric = numeric_directional(move, eval);
        std::vector<double> c_dot(B * C);
        ce.target_coefficients_tangent(s.data(), sd.data(), B, C, c_dot.data(), w.data());
        CHECK(relative_error(c_dot, numeric) < tolerance);
    }
}

TEST_CASE("cross-entropy is finite for extreme logits") {
    const std::vector<float> s = {1000.0f, -1000.0f, 0.0f};
    const std::vector<std::int32_t> y = {1};
    loss::softmax_cross_entropy<float> ce;
    std::vector<float> g(3);
    const float v = ce.value_and_gradient(s.data(), 1, 3, loss::hard_targets{y.data()}, nullptr, g.data());
    CHECK(std::isfinite(v));
    CHECK(v == doctest::Approx(2000.0f));
    for (float x : g) CHECK(std::isfinite(x));
}

TEST_CASE("a label outside the class range is a value_error naming the row and the label") {
    const std::vector<float> s(6, 0.0f);
    const std::vector<std::int32_t> y = {1, 3};
    loss::softmax_cross_entropy<float> ce;
    CHECK_THROWS_WITH_AS(ce.value_and_gradient(s.data(), 2, 3, loss::hard_targets{y.data()}),
                         "auxl::loss::softmax_cross_entropy: label 3 in row 1 is outside [0, 3)", value_error);
    CHECK_THROWS_AS(loss::softmax_cross_entropy<float>(-1.0f), config_error);
}

TEST_CASE("block softmax puts all mass inside the primary class's block, and its derivatives match") {
    const loss::block_layout blocks({2, 3, 1});
    CHECK(blocks.auxiliary_classes() == 6);
    CHECK(blocks.block_offset(2) == 5);
    rng gen(23, "block");
    const std::size_t B = 4, A = 6;
    const std::vector<std::int32_t> y = {0, 1, 2, 1};
    auto u = random_vector(B * A, gen, 2.0);
    std::vector<double> t(B * A);
    loss::block_softmax<double>::forward(u.data(), B, blocks, y.data(), t.data());
    for (std::size_t i = 0; i < B; ++i) {
        double inside = 0;
        for (std::size_t a = 0; a < A; ++a) {
            const bool in_block = a >= blocks.block_offset(std::size_t(y[i])) &&
                                  a < blocks.block_offset(std::size_t(y[i])) + blocks.block_size(std::size_t(y[i]));
            if (in_block) inside += t[i * A + a];
            else CHECK(t[i * A + a] == 0.0);
        }
        CHECK(inside == doctest::Approx(1.0));
    }
    CHECK(t[2 * A + 5] == 1.0);  // a block of one class is certain

    const auto r = random_vector(B * A, gen);
    auto f = [&] {
        loss::block_softmax<double>::forward(u.data(), B, blocks, y.data(), t.data());
        double s = 0;
        for (std::size_t i = 0; i < t.size(); ++i) s += r[i] * t[i];
        return s;
    };
    f();
    std::vector<double> du(B * A, 0.0);
    loss::block_softmax<double>::backward(t.data(), r.data(), B, blocks, y.data(), du.data());
    CHECK(relative_error(du, numeric_gradient(f, u.data(), u.size())) < tolerance);

    const auto ud = random_vector(B * A, gen);
    const auto u0 = u;
    auto move = [&](double h) {
        for (std::size_t i = 0; i < u.size(); ++i) u[i] = u0[i] + h * ud[i];
    };
    const auto numeric = numeric_directional(move, [&] {
        f();
        return t;
    });
    f();
    std::vector<double> t_dot(B * A);
    loss::block_softmax<double>::tangent(t.data(), ud.data(), B, blocks, y.data(), t_dot.data());
    CHECK(relative_error(t_dot, numeric) < tolerance);

    const std::vector<std::int32_t> bad = {0, 3, 0, 0};
    CHECK_THROWS_AS(loss::block_softmax<double>::forward(u.data(), B, blocks, bad.data(), t.data()), value_error);
    CHECK_THROWS_AS(loss::block_layout({2, 0}), config_error);
}

TEST_CASE("batch entropy regulariser: value, gradient and tangent") {
    rng gen(24, "entropy");
    const std::size_t B = 5, A = 4;
    std::vector<double> t(B * A);
    for (auto& v : t) v = gen.uniform(0.05, 1.0);
    std::vector<double> mean(A);
    // A uniform batch mean has the lowest value, −log A.
    std::vector<double> uniform(B * A, 1.0 / A);
    CHECK(loss::batch_entropy<double>::value(uniform.data(), B, A, mean.data()) == doctest::Approx(-std::log(4.0)));

    auto f = [&] { return loss::batch_entropy<double>::value(t.data(), B, A, mean.data()); };
    f();
    std::vector<double> g(B * A, 0.0);
    loss::batch_entropy<double>::gradient(mean.data(), B, A, g.data());
    CHECK(relative_error(g, numeric_gradient(f, t.data(), t.size())) < tolerance);

    const auto td = random_vector(B * A, gen);
    const auto t0 = t;
    auto move = [&](double h) {
        for (std::size_t i = 0; i < t.size(); ++i) t[i] = t0[i] + h * td[i];
    };
    const auto numeric = numeric_directional(move, [&] { return std::vector<double>{f()}; });
    f();
    CHECK(loss::batch_entropy<double>::tangent(mean.data(), td.data(), B, A) == doctest::Approx(numeric[0]).epsilon(1e-6));
}
