// meta/: Hessian-vector products against an exact Hessian, the Neumann series against a direct
// solve, lookahead steps against the optimizers themselves; module-aware weighting: its
// combination, its implicit hypergradient against a finite difference of the dev loss at the
// lower-level fixed point, its trainer integration, and importances that follow where an auxiliary
// task helps or hurts; transference weighting and the transference probe.
#include <doctest/doctest.h>

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/meta/hvp.hpp"
#include "auxl/meta/lookahead.hpp"
#include "auxl/weight/module_aware.hpp"
#include "gradcheck.hpp"
#include "plain_layer.hpp"
#include "synthetic.hpp"
#include "temp_dir.hpp"
#include <fstream>

using namespace auxl;

namespace {
using tiny_trunk = nn::sequential<nn::input<4>, nn::dense<4>, nn::tanh, nn::dense<3>, nn::tanh>;
using tiny_model = nn::basic_multi_task<double, tiny_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<4>>>;
}  // namespace

TEST_CASE("central-difference Hessian-vector products match an exact Hessian") {
    tiny_model model(6);
    rng init(1, "init");
    model.init(init, nn::init_scheme::xavier_normal);
    rng data(1, "data");
    const auto x = testing::random_vector(6 * 4, data);
    const std::vector<std::int32_t> y = {0, 1, 1, 0, 1, 0};
    loss::softmax_cross_entropy<double> ce;
    const std::size_t P = tiny_model::parameter_count;
    std::vector<double> dy(12);
    auto gradient_at = [&](double* out) {
        model.forward(x.data(), 6);
        ce.value_and_gradient(model.output(0), 6, 2, loss::hard_targets{y.data()}, nullptr, dy.data());
        std::fill_n(out, P, 0.0);
        model.backward_head(0, dy.data(), std::span<double>(out, P));
    };
    // Exact Hessian, column by column: central differences of the analytic gradient with a tiny step.
    auto& w = model.parameters();
    std::vector<double> H(P * P), gp(P), gm(P);
    for (std::size_t j = 0; j < P; ++j) {
        const double saved = w[j];
        w[j] = saved + 1e-5;
        gradient_at(gp.data());
        w[j] = saved - 1e-5;
        gradient_at(gm.data());
        w[j] = saved;
        for (std::size_t i = 0; i < P; ++i) H[i * P + j] = (gp[i] - gm[i]) / 2e-5;
    }
    rng dir(2, "dir");
    const auto v = testing::random_vector(P, dir);
    std::vector<double> exact(P, 0.0);
    for (std::size_t i = 0; i < P; ++i)
        for (std::size_t j = 0; j < P; ++j) exact[i] += H[i * P + j] * v[j];
    std::vector<double> hv(P);
    arena<double> saved, spare;
    const auto before = w;
    meta::hessian_vector(w, std::span<const double>(v), gradient_at, std::span<double>(hv), saved, spare);
    CHECK(std::equal(before.begin(), before.end(), w.begin()));  // parameters restored exactly
    const double err = testing::relative_error(hv, exact);
    MESSAGE("HVP relative error vs exact Hessian: " << err);
    CHECK(err < 1e-4);

    // `step` is the perturbation's norm (the default 0.01 above): the error is O(step²), so a
    // smaller step is closer to H v and a large one visibly farther.
    std::vector<double> hv_fine(P), hv_coarse(P);
    meta::hessian_vector(w, std::span<const double>(v), gradient_at, std::span<double>(hv_fine), saved, spare, 1e-4);
    meta::hessian_vector(w, std::span<const double>(v), gradient_at, std::span<double>(hv_coarse), saved, spare, 1.0);
    CHECK(std::equal(before.begin(), before.end(), w.begin()));
    const double err_fine = testing::relative_error(hv_fine, exact), err_coarse = testing::relative_error(hv_coarse, exact);
    MESSAGE("HVP relative error at step 1e-4: " << err_fine << ", at step 1: " << err_coarse);
    CHECK(err_fine < err);
    CHECK(err_coarse > 100 * err);
}

TEST_CASE("the bi-level rules refuse a non-positive Hessian-vector step") {
    weight::module_aware_options mo;
    mo.hvp_step = 0;
    CHECK_THROWS_AS(weight::module_aware{mo}, config_error);
    mo.hvp_step = -1e-4;
    CHECK_THROWS_AS(weight::module_aware{mo}, config_error);
}

TEST_CASE("the Neumann series approaches (alpha J)^-1 v on a positive-definite case") {
    Eigen::Matrix4d A;
    A << 4, 1, 0, 0.5, 1, 3, 0.2, 0, 0, 0.2, 2, 0.3, 0.5, 0, 0.3, 1;
    const Eigen::Vector4d v(1.0, -2.0, 0.5, 3.0);
    const double alpha = 0.2;
    std::vector<double> vv(v.data(), v.data() + 4), s(4);
    auto apply = [&](std::span<const double> u, std::span<double> out) {
        Eigen::Map<const Eigen::Vector4d> uu(u.data());
        Eigen::Map<Eigen::Vector4d>(out.data()) = A * uu;
    };
    meta::neumann(std::span<const double>(vv), apply, alpha, 200, std::span<double>(s));
    const Eigen::Vector4d direct = (alpha * A).ldlt().solve(v);
    for (int i = 0; i < 4; ++i) CHECK(s[std::size_t(i)] == doctest::Approx(direct(i)).epsilon(1e-8));
    // Three terms, as the methods use: a truncated but finite approximation.
    meta::neumann(std::span<const double>(vv), apply, alpha, 3, std::span<double>(s));
    CHECK(std::isfinite(s[0]));
    // With a caller's workspace (what the rules keep, so a step allocates nothing): the same bits,
    // whatever the workspace held before; one too small is refused.
    std::vector<double> work(8, 123.0), s_kept(4);
    meta::neumann(std::span<const double>(vv), apply, alpha, 3, std::span<double>(s_kept), std::span<double>(work));
    CHECK(s_kept == s);
    std::vector<double> small(7);
    CHECK_THROWS_WITH_AS(meta::neumann(std::span<const double>(vv), apply, alpha, 3, std::span<double>(s_kept), std::span<double>(small)),
                         doctest::Contains("workspace 7 (needs 8)"), shape_error);
}

TEST_CASE("a lookahead step equals the optimizer's own step and leaves its state alone") {
    std::vector<double> w = {1.0, -0.5, 2.0}, g = {0.3, 0.1, -0.2}, out(3);
    optim::sgd<double> sgd({.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
    sgd.step(w, g);  // some velocity first
    meta::lookahead(sgd, std::span<const double>(w), std::span<const double>(g), std::span<double>(out));
    auto copy = sgd;
    auto w2 = w;
    copy.step(w2, g);
    for (int i = 0; i < 3; ++i) CHECK(out[std::size_t(i)] == doctest::Approx(w2[std::size_t(i)]).epsilon(1e-14));
    optim::adam<double> adam({.learning_rate = 0.01, .weight_decay = 0.1, .decoupled_weight_decay = true});
    adam.step(w, g);
    meta::lookahead(adam, std::span<const double>(w), std::span<const double>(g), std::span<double>(out));
    auto acopy = adam;
    auto w3 = w;
    acopy.step(w3, g);
    for (int i = 0; i < 3; ++i) CHECK(out[std::size_t(i)] == doctest::Approx(w3[std::size_t(i)]).epsilon(1e-14));
    CHECK(adam.steps_taken() == 1);
}

namespace {
using mlp = nn::sequential<nn::input<20>, nn::dense<16>, nn::relu, nn::dense<16>, nn::relu>;
using mlp_model = nn::multi_task<mlp, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
}  // namespace

TEST_CASE("module-aware combination scales each trunk module's auxiliary gradient by its importance") {
    train::parameter_ranges r{10, 6, {6, 8}, {2, 2}, {0, 3}, {3, 3}, {"m0", "m1"}};
    weight::module_aware rule;
    rule.prepare(r, 1);
    rule.set_omega(0, 0, 0.5);
    rule.set_omega(0, 1, -2.0);  // ReLU: no auxiliary gradient in module 1
    std::vector<float> rows(20, 0.0f), out(10);
    for (std::size_t i = 0; i < 10; ++i) rows[i] = 1.0f;
    for (std::size_t i = 10; i < 20; ++i) rows[i] = 2.0f;
    rule.combine(rows.data(), r, out.data());
    CHECK(out[0] == 2.0f);   // 1 + 0.5 · 2
    CHECK(out[4] == 1.0f);   // module 1: a = 0
    CHECK(out[6] == 1.0f);   // primary head: the primary row only
    CHECK(out[8] == 3.0f);   // auxiliary head: its own gradient, unscaled (plus the primary row, zero in practice)
    CHECK(rule.importance(0, 1) == 0.0);
    std::ostringstream table;
    rule.print_importances(table);
    CHECK(table.str().find("m1") != std::string::npos);
}

namespace {
data::dataset<double> random_set(std::size_t n, std::uint64_t seed) {
    rng gen(seed, "set");
    data::dataset<double> d;
    d.name = "random";
    d.classes = 4;
    d.example_shape = {4, 1, 1};
    d.inputs = xt::xtensor<double, 2>::from_shape({n, 4});
    for (auto& v : d.inputs) v = gen.normal();
    for (std::size_t i = 0; i < n; ++i) d.labels.push_back(std::int32_t(gen.below(4)));
    return d;
}
}  // namespace

TEST_CASE("module-aware hypergradient equals a finite difference of the dev loss at the lower-level fixed point") {
    // Full-batch gradient descent with weight decay converges to θ*(ω); the implicit-function
    // hypergradient (many Neumann terms) must match [L_dev(θ*(ω + δ)) − L_dev(θ*(ω − δ))] / 2δ.
    const data::hierarchy h("pairs", {0, 0, 1, 1});
    const auto train_set = random_set(16, 1), dev = random_set(16, 2);
    weight::module_aware_options mo;
    mo.interval = 1000000000;  // no automatic upper steps
    mo.neumann_terms = 8000;
    mo.neumann_alpha = 0.05;
    mo.clip = 1e9;
    trainer_options o;
    o.seed = 3;
    o.batch_size = 16;
    o.init = nn::init_scheme::xavier_normal;
    using T = trainer<tiny_model, gen::human_hierarchy, weight::module_aware, optim::sgd<double>>;
    T t(h, gen::human_hierarchy{}, weight::module_aware{mo}, optim::sgd<double>({.learning_rate = 0.05, .weight_decay = 0.05}), o);
    t.rule().set_omega(0, 0, 0.8);
    t.rule().set_omega(0, 1, 1.3);
    std::size_t epochs = 20000;
    t.fit(train_set, {.epochs = epochs, .dev = &dev});
    t.rule().compute_hypergradient(t, t.last_batch());
    const std::vector<double> implicit(t.rule().last_hypergradient().begin(), t.rule().last_hypergradient().end());
    std::vector<double> numeric;
    const double delta = 1e-3;
    for (std::size_t m = 0; m < 2; ++m) {
        const double w0 = t.rule().omega()[m];
        t.rule().set_omega(0, m, w0 + delta);
        t.fit(train_set, {.epochs = epochs += 20000, .dev = &dev});
        const double up = t.evaluate(dev).primary_loss();
        t.rule().set_omega(0, m, w0 - delta);
        t.fit(train_set, {.epochs = epochs += 20000, .dev = &dev});
        const double down = t.evaluate(dev).primary_loss();
        t.rule().set_omega(0, m, w0);
        t.fit(train_set, {.epochs = epochs += 20000, .dev = &dev});
        numeric.push_back((up - down) / (2 * delta));
    }
    MESSAGE("implicit hypergradient " << implicit[0] << ", " << implicit[1] << "; finite difference " << numeric[0] << ", "
                                      << numeric[1]);
    CHECK(std::abs(numeric[0]) + std::abs(numeric[1]) > 1e-4);  // ω matters at this fixed point
    CHECK(testing::relative_error(implicit, numeric) < 2e-2);
}

namespace {
using relu_mlp_double = nn::sequential<nn::input<20>, nn::dense<16>, nn::relu, nn::dense<16>, nn::relu>;
using relu_model_double = nn::basic_multi_task<double, relu_mlp_double, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;

using plain_trunk = nn::sequential<nn::input<20>, nn::dense<8>, testing::scale_by_two, nn::relu>;
using plain_model = nn::basic_multi_task<double, plain_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
static_assert(relu_model_double::has_backward_tangent && !plain_model::has_backward_tangent);

template <class Model>
std::vector<double> module_aware_hypergradient(meta::hvp_method method, double step, const data::dataset<double>& d) {
    weight::module_aware_options mo;
    mo.interval = 1000000000;  // the upper step is called by hand below
    mo.hvp = method;
    mo.hvp_step = step;
    mo.clip = 1e9;
    trainer_options o;
    o.seed = 5;
    o.batch_size = 32;
    trainer<Model, gen::human_hierarchy, weight::module_aware, optim::sgd<double>> t(
        data::hierarchy::fashion_parity2(), gen::human_hierarchy{}, weight::module_aware{mo},
        optim::sgd<double>({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 1e-3}), o);
    t.fit(d, {.epochs = 2});
    for (std::size_t m = 0; m < t.rule().omega().size(); ++m) t.rule().set_omega(0, m, 0.7 + 0.7 * double(m));
    t.rule().compute_hypergradient(t, t.last_batch());
    return {t.rule().last_hypergradient().begin(), t.rule().last_hypergradient().end()};
}
}  // namespace

TEST_CASE("module-aware's exact Hessian-vector products agree with central differences at a small step") {
    const auto blobs = testing::blobs(200, 3);
    data::dataset<double> d;
    d.name = blobs.name;
    d.classes = blobs.classes;
    d.example_shape = blobs.example_shape;
    d.labels = blobs.labels;
    d.inputs = xt::cast<double>(blobs.inputs);
    const auto exact = module_aware_hypergradient<relu_model_double>(meta::hvp_method::exact, 0.01, d);
    const auto automatic = module_aware_hypergradient<relu_model_double>(meta::hvp_method::automatic, 0.01, d);
    const auto small = module_aware_hypergradient<relu_model_double>(meta::hvp_method::central_difference, 1e-6, d);
    const auto large = module_aware_hypergradient<relu_model_double>(meta::hvp_method::central_difference, 0.01, d);
    REQUIRE(exact.size() == 2);
    MESSAGE("exact " << exact[0] << ", " << exact[1] << "; central 1e-6 " << small[0] << ", " << small[1] << "; central 0.01 "
                     << large[0] << ", " << large[1] << " (relative error " << testing::relative_error(large, exact) << ")");
    CHECK(automatic == exact);  // automatic picks the exact products on built-in layers
    CHECK(std::abs(exact[0]) + std::abs(exact[1]) > 1e-6);
    CHECK(testing::relative_error(exact, small) < 1e-5);

    // A model with a layer lacking backward_tangent: automatic falls back, exact is refused.
    const auto fallback = module_aware_hypergradient<plain_model>(meta::hvp_method::automatic, 0.01, d);
    CHECK(fallback == module_aware_hypergradient<plain_model>(meta::hvp_method::central_difference, 0.01, d));
    CHECK_THROWS_WITH_AS(module_aware_hypergradient<plain_model>(meta::hvp_method::exact, 0.01, d),
                         doctest::Contains("backward_tangent"), config_error);
}

TEST_CASE("module-aware weighting trains inside the trainer, updates its importances and logs them") {
    const auto data = testing::blobs(200, 3);
    const auto parity = data::hierarchy::fashion_parity2();
    weight::module_aware_options mo;
    mo.interval = 3;
    trainer_options o;
    o.seed = 3;
    o.batch_size = 32;
    trainer<mlp_model, gen::human_hierarchy, weight::module_aware, optim::sgd<float>> t(
        parity, gen::human_hierarchy{}, weight::module_aware{mo}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    const auto report = t.fit(data, {.epochs = 3});
    CHECK(t.rule().omega()[0] != 1.0);  // the upper level ran and moved ω
    REQUIRE(report.metric_names.size() == 2);
    CHECK(report.metric_names[0] == "a1_trunk.0.dense");
    CHECK(std::isfinite(report.metric_values[1]));
    CHECK(t.dev_set() != nullptr);
    CHECK(t.dev_set()->size() == 10);  // 5 % of 200
}

#include "auxl/weight/transference.hpp"

namespace {
// Two auxiliary tasks: the fine class (helpful) and a fixed random label per example (harmful:
// memorising noise pulls the shared trunk away from the primary task).
struct helpful_and_harmful {
    static const char* name() { return "two"; }
    static constexpr std::size_t auxiliary_tasks = 2;
    const data::hierarchy* h = nullptr;
    void prepare(const train::generator_setup& s) { h = s.hierarchy; }
    template <class T>
    void generate(const train::batch<T>& b, std::span<train::auxiliary_targets<T>> t) {
        t[0].type = t[1].type = train::auxiliary_targets<T>::kind::hard;
        for (std::size_t i = 0; i < b.size; ++i) {
            t[0].labels[i] = h->block_index_of(b.fine[i]);
            t[1].labels[i] = std::int32_t((std::uint64_t(b.rows[i]) * 2654435761u >> 7) % 10);
        }
    }
};
using three_heads = nn::multi_task<mlp, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
}  // namespace

namespace {
using tanh_three_heads = nn::basic_multi_task<double, tiny_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>,
                                              nn::head<nn::dense<10>>>;
// The weighted backward is taken for module-aware (else the test below would compare the rows with themselves).
static_assert(trainer<tanh_three_heads, helpful_and_harmful, weight::module_aware, optim::sgd<double>>::rule_combines_by_module);
static_assert(!trainer<tanh_three_heads, helpful_and_harmful, weight::transference, optim::sgd<double>>::rule_combines_by_module);
}  // namespace

TEST_CASE("module-aware's weighted backward trains as its gradient rows do") {
    // combine_in_backward forms the lower direction in one weighted backward; the rows path forms
    // K+1 rows and combines them.  Same direction up to rounding: in double, two auxiliary tasks,
    // ω moved by upper steps (one set to zero by its ReLU), the runs must agree to ~1e-10.
    const data::hierarchy h("pairs", {0, 0, 1, 1});
    const auto train_set = random_set(96, 4), dev = random_set(32, 5);
    auto run = [&](bool weighted) {
        weight::module_aware_options mo;
        mo.interval = 2;
        mo.combine_in_backward = weighted;
        trainer_options o;
        o.seed = 9;
        o.batch_size = 16;
        auto t = std::make_unique<trainer<tanh_three_heads, helpful_and_harmful, weight::module_aware, optim::sgd<double>>>(
            h, helpful_and_harmful{}, weight::module_aware{mo}, optim::sgd<double>({.learning_rate = 0.05, .momentum = 0.9}), o);
        t->rule().set_omega(1, 0, -0.5);  // task 2 contributes nothing to trunk module 0
        t->fit(train_set, {.epochs = 3, .dev = &dev});
        return t;
    };
    const auto rows = run(false);
    const auto weighted = run(true);
    const auto& a = rows->model().parameters();
    const auto& b = weighted->model().parameters();
    CHECK(testing::relative_error(std::vector<double>(a.begin(), a.end()), std::vector<double>(b.begin(), b.end())) < 1e-10);
    const std::vector<double> omega_rows(rows->rule().omega().begin(), rows->rule().omega().end());
    const std::vector<double> omega_weighted(weighted->rule().omega().begin(), weighted->rule().omega().end());
    CHECK(omega_rows[0] != 1.0);  // the upper level ran
    CHECK(testing::relative_error(omega_rows, omega_weighted) < 1e-10);
    CHECK(rows->backward_passes() == weighted->backward_passes());
}

TEST_CASE("transference prefers the helpful auxiliary and logs positive transference for it, lower for the harmful one") {
    const auto data = testing::blobs(320, 5, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer_options o;
    o.seed = 5;
    o.batch_size = 32;
    trainer<three_heads, helpful_and_harmful, weight::transference, optim::sgd<float>> t(
        parity, helpful_and_harmful{}, weight::transference{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    REQUIRE(t.rule().candidates().size() == 4);  // primary, all, aux1, aux2
    struct collect {
        trainer<three_heads, helpful_and_harmful, weight::transference, optim::sgd<float>>* t;
        double z1 = 0, z2 = 0, steps = 0;
        std::vector<double> chosen = std::vector<double>(4, 0.0);
        void on_step_end(const train::step_report&) {
            const auto v = t->rule().metric_values();
            z1 += v[0];
            z2 += v[1];
            for (std::size_t c = 0; c < 4; ++c) chosen[c] += v[2 + c];
            ++steps;
        }
    } log{&t};
    t.fit(data, {.epochs = 8}, log);
    MESSAGE("mean transference: helpful " << log.z1 / log.steps << ", harmful " << log.z2 / log.steps
                                          << "; chosen shares primary/all/aux1/aux2: " << log.chosen[0] / log.steps << " "
                                          << log.chosen[1] / log.steps << " " << log.chosen[2] / log.steps << " "
                                          << log.chosen[3] / log.steps);
    CHECK(log.z1 > 0);
    CHECK(log.z1 > log.z2);
    CHECK(log.z2 < 0);
    CHECK(log.chosen[2] > log.chosen[3]);
}

TEST_CASE("transference's lookahead moves only the trunk: its logged Z equals a hand-computed lookahead with the heads kept") {
    const auto data = testing::blobs(64, 7);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer_options o;
    o.seed = 7;
    o.batch_size = 32;
    const optim::sgd<float>::options sgd_options{.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 1e-3};
    trainer<mlp_model, gen::human_hierarchy, weight::transference, optim::sgd<float>> t(
        parity, gen::human_hierarchy{}, weight::transference{}, optim::sgd<float>(sgd_options), o);
    const auto first = testing::first_rows(data, parity, 32);
    const auto& primary = first.primary;
    const train::batch<float> b = first.batch();
    for (int s = 0; s < 3; ++s) t.step(b);  // momentum buffers and heads away from their start

    // By hand: the auxiliary task's gradient V on this batch, the primary loss now, and after a
    // trunk-only step by SGD's rule (v = μ·velocity + V + wd·θ, θ' = θ − η v); the heads stay.
    auto& model = t.model();
    constexpr std::size_t P = mlp_model::parameter_count, S = mlp_model::trunk_parameter_count;
    const std::vector<float> w0(model.parameters().begin(), model.parameters().end());
    const std::vector<float> velocity(t.optimizer().velocity().begin(), t.optimizer().velocity().end());
    REQUIRE(velocity.size() == P);
    std::array<train::auxiliary_targets<float>, 1> targets;
    targets[0].reserve(32, 10);
    t.generator().generate(b, std::span<train::auxiliary_targets<float>>(targets));
    loss::softmax_cross_entropy<float> ce;
    std::vector<float> dy(32 * 10), V(P, 0.0f);
    model.forward(b.inputs, 32);
    ce.value_and_gradient(model.output(1), 32, 10, loss::hard_targets{targets[0].labels.data()}, nullptr, dy.data());
    model.backward_head(1, dy.data(), std::span<float>(V));
    const double now = ce.value_and_gradient(model.output(0), 32, 2, loss::hard_targets{primary.data()}, nullptr, dy.data());
    auto primary_loss_at = [&](bool move_heads) {
        for (std::size_t i = 0; i < P; ++i) {
            const bool trunk = i < S;
            const double v = 0.9 * velocity[i] + (trunk ? V[i] : 0.0) + 1e-3 * w0[i];
            model.parameters()[i] = trunk || move_heads ? float(w0[i] - 0.05 * v) : w0[i];
        }
        model.forward(b.inputs, 32);
        const double l = ce.value_and_gradient(model.output(0), 32, 2, loss::hard_targets{primary.data()}, nullptr, dy.data());
        std::copy(w0.begin(), w0.end(), model.parameters().begin());
        return l;
    };
    const double z_heads_kept = (1 - primary_loss_at(false) / now) / 0.05;
    const double z_heads_moved = (1 - primary_loss_at(true) / now) / 0.05;
    t.step(b);
    const double logged = t.rule().metric_values()[0];
    MESSAGE("Z logged " << logged << ", by hand with heads kept " << z_heads_kept << ", with heads moved " << z_heads_moved);
    CHECK(logged == doctest::Approx(z_heads_kept).epsilon(1e-3));
    CHECK(std::abs(z_heads_kept - z_heads_moved) > 1e-2);  // the check above can tell them apart
}

#include "auxl/train/transference_probe.hpp"

TEST_CASE("the transference probe measures per-epoch affinity for any composition") {
    const auto data = testing::blobs(320, 6, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer_options o;
    o.seed = 6;
    o.batch_size = 32;
    trainer<three_heads, helpful_and_harmful, weight::equal, optim::sgd<float>> t(
        parity, helpful_and_harmful{}, weight::equal{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    testing::temp_dir dir;
    train::transference_probe probe(dir / "affinity.csv", 1, /*plain_step=*/true);
    t.fit(data, {.epochs = 6}, probe);
    REQUIRE(probe.table().size() == 6);
    double helpful = 0, harmful = 0;
    for (const auto& row : probe.table()) {
        REQUIRE(row.size() == 3);
        helpful += row[1];
        harmful += row[2];
    }
    MESSAGE("mean affinity over 6 epochs: helpful " << helpful / 6 << ", harmful " << harmful / 6);
    CHECK(helpful > harmful);
    CHECK(helpful > 0);
    std::ifstream csv(dir / "affinity.csv");
    std::string header;
    std::getline(csv, header);
    CHECK(header == "epoch,Z1,Z2");
}

TEST_CASE("module-aware importances learn to favour a helpful auxiliary over a harmful one in every module") {
    const auto data = testing::blobs(400, 7, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    weight::module_aware_options mo;
    mo.interval = 5;
    mo.lr = 0.2;
    trainer_options o;
    o.seed = 7;
    o.batch_size = 32;
    o.dev_fraction = 0.1;
    trainer<three_heads, helpful_and_harmful, weight::module_aware, optim::sgd<float>> t(
        parity, helpful_and_harmful{}, weight::module_aware{mo}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    t.fit(data, {.epochs = 25});
    std::ostringstream table;
    t.rule().print_importances(table);
    MESSAGE("learned importances (rows: helpful, harmful auxiliary):\n" << table.str());
    for (std::size_t m = 0; m < 2; ++m) CHECK(t.rule().importance(0, m) > t.rule().importance(1, m));
}

namespace {
// A problem built so that one auxiliary task helps the first trunk module and hurts the last.
// x ~ N(0, I₂); primary y = [x₁ > 0]; auxiliary z = [x₁ + 0.6 x₂ > 0].  The trunk is linear with a
// one-unit bottleneck, x → W₁ (2×2) → W₂ (1×2) → h, and both heads read h.  It starts from
// W₁ = diag(1, 4), W₂ = (1, 0.1): end-to-end weights (1, 0.4).  Both tasks want a larger x₁
// weight; on x₂ they disagree (the primary wants it to shrink, the auxiliary to grow).  With
// g_p, g_a the input-space gradients of the two losses, module 1 sees ⟨·,·⟩ = |W₂|² g_p·g_a
// and module 2 sees g_pᵀ W₁ᵀW₁ g_a, where W₁ amplifies the x₂ disagreement 16-fold — so the
// auxiliary pull agrees with the primary in module 1 and opposes it in module 2.  The test
// verifies that with fixed importances before checking what module-aware weighting learns.
using bottleneck_trunk = nn::sequential<nn::input<2>, nn::dense<2>, nn::dense<1>>;
using bottleneck_model = nn::basic_multi_task<double, bottleneck_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<2>>>;

struct second_rule_label {  // the auxiliary bit z, stored in the fine label (fine = y + 2 z)
    static const char* name() { return "second_rule"; }
    static constexpr std::size_t auxiliary_tasks = 1;
    void prepare(const train::generator_setup&) {}
    template <class T>
    void generate(const train::batch<T>& b, std::span<train::auxiliary_targets<T>> t) {
        t[0].type = train::auxiliary_targets<T>::kind::hard;
        for (std::size_t i = 0; i < b.size; ++i) t[0].labels[i] = b.fine[i] / 2;
    }
};

data::dataset<double> two_rules(std::size_t n, std::uint64_t seed) {
    rng gen(seed, "two-rules");
    data::dataset<double> d;
    d.name = "two-rules";
    d.classes = 10;  // fine labels 0..3 under the parity hierarchy: primary = y
    d.example_shape = {2, 1, 1};
    d.inputs = xt::xtensor<double, 2>::from_shape({n, 2});
    for (std::size_t i = 0; i < n; ++i) {
        const double x1 = gen.normal(), x2 = gen.normal();
        d.inputs(i, 0) = x1;
        d.inputs(i, 1) = x2;
        d.labels.push_back(std::int32_t(x1 > 0) + 2 * std::int32_t(x1 + 0.6 * x2 > 0));
    }
    return d;
}

template <class Trainer>
void set_bottleneck_start(Trainer& t) {
    auto& p = t.model().parameters();
    std::fill(p.begin(), p.end(), 0.0);
    for (const auto& seg : t.model().layout().segments()) {
        double* w = p.data() + seg.offset;  // dense weights are Out x In, row-major
        if (seg.name == "trunk.0.dense.weight") {
            w[0] = 1;
            w[3] = 4;
        }
        if (seg.name == "trunk.1.dense.weight") {
            w[0] = 1;
            w[1] = 0.1;
        }
        if (seg.name == "head0.0.dense.weight" || seg.name == "head1.0.dense.weight") w[1] = 1;  // logit of class 1 = h
    }
}
}  // namespace

TEST_CASE("module-aware importances rise in the module an auxiliary task helps and fall in the one it hurts") {
    const auto parity = data::hierarchy::fashion_parity2();
    using T = trainer<bottleneck_model, second_rule_label, weight::module_aware, optim::sgd<double>>;
    for (std::uint64_t seed : {1, 2, 3}) {
        CAPTURE(seed);
        const auto train_set = two_rules(256, seed), dev = two_rules(256, seed + 100);
        auto run = [&](double first, double last, bool learn) {
            weight::module_aware_options mo;
            mo.interval = learn ? 1 : 1000000000;  // a short run: an upper step after every step
            mo.lr = 0.3;
            trainer_options o;
            o.seed = seed;
            o.batch_size = 64;
            auto t = std::make_unique<T>(parity, second_rule_label{}, weight::module_aware{mo},
                                         optim::sgd<double>({.learning_rate = 0.01}), o);
            set_bottleneck_start(*t);
            t->rule().set_omega(0, 0, first);
            t->rule().set_omega(0, 1, last);
            t->fit(train_set, {.epochs = 20, .dev = &dev});
            return t;
        };
        // The construction: the auxiliary gradient in module 1 alone lowers the dev loss after 80
        // steps, in module 2 alone raises it.
        const double none = run(0, 0, false)->evaluate(dev).primary_loss();
        const double first_only = run(1, 0, false)->evaluate(dev).primary_loss();
        const double last_only = run(0, 1, false)->evaluate(dev).primary_loss();
        CHECK(first_only < none);
        CHECK(last_only > none);
        // Learned from ω = 1 everywhere.
        const auto learned = run(1, 1, true);
        const double a_first = learned->rule().importance(0, 0), a_last = learned->rule().importance(0, 1);
        MESSAGE("seed " << seed << ": dev loss without auxiliary " << none << ", auxiliary in module 1 only " << first_only
                        << ", in module 2 only " << last_only << "; learned importances " << a_first << " (module 1), "
                        << a_last << " (module 2)");
        CHECK(a_first > a_last + 0.5);
        CHECK(a_last < 0.5);
    }
}
