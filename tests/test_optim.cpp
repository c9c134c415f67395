// Optimizer updates checked against values computed by hand (same formulas as torch.optim).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "auxl/optim/adam.hpp"
#include "auxl/optim/schedule.hpp"
#include "auxl/optim/sgd.hpp"

using namespace auxl;

TEST_CASE("plain SGD with weight decay: w <- w - lr (g + wd w)") {
    optim::sgd<double> opt({.learning_rate = 0.1, .momentum = 0.0, .weight_decay = 0.5});
    std::vector<double> w = {1.0, -2.0}, g = {0.5, 0.25};
    opt.step(w, g);
    CHECK(w[0] == doctest::Approx(1.0 - 0.1 * (0.5 + 0.5)));
    CHECK(w[1] == doctest::Approx(-2.0 - 0.1 * (0.25 - 1.0)));
}

TEST_CASE("SGD with momentum accumulates velocity and Nesterov looks ahead") {
    optim::sgd<double> heavy({.learning_rate = 0.1, .momentum = 0.9});
    optim::sgd<double> nesterov({.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
    std::vector<double> w1 = {1.0}, w2 = {1.0}, g = {1.0};
    heavy.step(w1, g);     // v = 1,   w = 1 - 0.1
    heavy.step(w1, g);     // v = 1.9, w = 0.9 - 0.19
    CHECK(w1[0] == doctest::Approx(0.71));
    nesterov.step(w2, g);  // v = 1,   d = 1 + 0.9 = 1.9,  w = 1 - 0.19
    nesterov.step(w2, g);  // v = 1.9, d = 1 + 1.71 = 2.71, w = 0.81 - 0.271
    CHECK(w2[0] == doctest::Approx(0.539));
}

TEST_CASE("Adam's first two steps match the hand-computed bias-corrected update") {
    optim::adam<double> opt({.learning_rate = 0.01});
    std::vector<double> w = {0.5}, g = {2.0};
    opt.step(w, g);  // m̂ = 2, v̂ = 4 → step = 0.01 · 2 / (2 + 1e-8)
    CHECK(w[0] == doctest::Approx(0.5 - 0.01 * 2.0 / (2.0 + 1e-8)).epsilon(1e-12));
    g[0] = -1.0;
    const double w_before = w[0];
    opt.step(w, g);
    const double m = 0.9 * (0.1 * 2.0) + 0.1 * -1.0;          // 0.08
    const double v = 0.999 * (0.001 * 4.0) + 0.001 * 1.0;     // 0.004996
    const double m_hat = m / (1 - 0.81), v_hat = v / (1 - 0.999 * 0.999);
    CHECK(w[0] == doctest::Approx(w_before - 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8)).epsilon(1e-12));
    CHECK(opt.steps_taken() == 2);
}

TEST_CASE("AdamW decays weights before the Adam step while Adam folds decay into the gradient") {
    auto adamw = optim::adamw<double>(0.1, 0.5);
    std::vector<double> w = {2.0}, g = {0.0};
    adamw.step(w, g);  // w ← w − lr·wd·w = 2 − 0.1; the zero-gradient Adam step is 0
    CHECK(w[0] == doctest::Approx(1.9));
    optim::adam<double> coupled({.learning_rate = 0.1, .weight_decay = 0.5});
    std::vector<double> w2 = {2.0};
    coupled.step(w2, g);  // g = 1 → m̂/√v̂ = 1 → w = 2 − 0.1
    CHECK(w2[0] == doctest::Approx(1.9).epsilon(1e-6));
}

TEST_CASE("optimizers reject impossible hyper-parameters and mismatched spans") {
    CHECK_THROWS_AS(optim::sgd<float>({.learning_rate = 0.0}), config_error);
    CHECK_THROWS_AS(optim::sgd<float>({.learning_rate = 0.1, .momentum = 1.5}), config_error);
    CHECK_THROWS_AS(optim::sgd<float>({.learning_rate = 0.1, .nesterov = true}), config_error);
    CHECK_THROWS_AS(optim::adam<float>({.beta1 = 1.0}), config_error);
    optim::sgd<float> opt;
    std::vector<float> w(3), g(2);
    CHECK_THROWS_AS(opt.step(w, g), shape_error);
}

TEST_CASE("learning-rate schedules: constant, step and cosine") {
    CHECK(optim::constant_lr{}(0.1, 1000) == 0.1);
    const optim::step_lr halve{50, 0.5};
    CHECK(halve(0.01, 49) == doctest::Approx(0.01));
    CHECK(halve(0.01, 50) == doctest::Approx(0.005));
    CHECK(halve(0.01, 149) == doctest::Approx(0.0025));
    const optim::cosine_lr cosine{100, 0.001};
    CHECK(cosine(0.1, 0) == doctest::Approx(0.1));
    CHECK(cosine(0.1, 50) == doctest::Approx(0.001 + 0.099 * 0.5));
    CHECK(cosine(0.1, 100) == doctest::Approx(0.001));
    CHECK(cosine(0.1, 500) == doctest::Approx(0.001));
}
