// The DTG-style generator: the implicit hypergradient against the closed-form IFT answer of a
// quadratic lower level, its mixed product and instance regulariser against finite differences
// in the generators' parameters (float64), the trainer's generated-input heads, resume, the fixed
// random manual task, and the paper's headline claim on a generated problem.
#include <doctest/doctest.h>

#include <Eigen/Dense>

#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/gen/dtg.hpp"
#include "auxl/gen/random_labels.hpp"
#include "auxl/meta/implicit.hpp"
#include "gradcheck.hpp"
#include "synthetic.hpp"
#include "temp_dir.hpp"

using namespace auxl;

TEST_CASE("the implicit hypergradient of a quadratic lower level matches the IFT closed form") {
    // L_low(θ, φ) = ½ θᵀAθ − θᵀBφ, so θ*(φ) = A⁻¹Bφ; L_up(θ) = ½‖θ − t‖²:
    // dL_up(θ*(φ))/dφ = Bᵀ A⁻¹ (θ* − t).  H = A; the mixed product M(s) = ∇_φ⟨s, Aθ − Bφ⟩ = −Bᵀs.
    const int n = 5, m = 3;
    rng gen(3, "quadratic");
    Eigen::MatrixXd R(n, n), B(n, m);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) R(i, j) = gen.normal(0.0, 1.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < m; ++j) B(i, j) = gen.normal(0.0, 1.0);
    const Eigen::MatrixXd A = R * R.transpose() / double(n) + Eigen::MatrixXd::Identity(n, n);
    Eigen::VectorXd phi(m), t(n);
    for (int j = 0; j < m; ++j) phi(j) = gen.normal(0.0, 1.0);
    for (int i = 0; i < n; ++i) t(i) = gen.normal(0.0, 1.0);
    const Eigen::VectorXd theta = A.ldlt().solve(B * phi);
    const Eigen::VectorXd v = theta - t;
    const Eigen::VectorXd exact = B.transpose() * A.ldlt().solve(v);

    const double lambda_max = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(A).eigenvalues().maxCoeff();
    auto hypergradient = [&](double alpha, std::size_t terms, bool finite_difference_hvp) {
        arena<double> params{std::size_t(n)}, saved, spare;
        for (int i = 0; i < n; ++i) params[std::size_t(i)] = theta(i);
        auto apply_H = [&](std::span<const double> u, std::span<double> out) {
            if (!finite_difference_hvp) {
                Eigen::Map<Eigen::VectorXd>(out.data(), n) = A * Eigen::Map<const Eigen::VectorXd>(u.data(), n);
                return;
            }
            // The lower gradient Aθ − Bφ at the arena's current θ, differenced by meta::hessian_vector.
            meta::hessian_vector(params, u, [&](double* g) {
                Eigen::Map<Eigen::VectorXd>(g, n) = A * Eigen::Map<const Eigen::VectorXd>(params.data(), n) - B * phi;
            }, out, saved, spare);
        };
        Eigen::VectorXd out = Eigen::VectorXd::Zero(m);
        auto add_mixed = [&](std::span<const double> s, double scale) {
            out += scale * (-B.transpose() * Eigen::Map<const Eigen::VectorXd>(s.data(), n));
        };
        std::vector<double> s(static_cast<std::size_t>(n), 0.0);
        meta::implicit_hypergradient(std::span<const double>(v.data(), std::size_t(n)), apply_H, add_mixed, alpha, terms,
                                     std::span<double>(s));
        return out;
    };
    // Many terms: the IFT answer itself.
    const double alpha = 1.0 / lambda_max;
    CHECK((hypergradient(alpha, 400, false) - exact).norm() < 1e-9 * exact.norm());
    CHECK((hypergradient(alpha, 400, true) - exact).norm() < 1e-6 * exact.norm());
    // The default three terms: exactly α Bᵀ Σ_{j≤3} (I − αA)^j v.
    Eigen::VectorXd series = v, term = v;
    for (int j = 0; j < 3; ++j) {
        term = term - alpha * A * term;
        series += term;
    }
    const Eigen::VectorXd truncated = alpha * B.transpose() * series;
    CHECK((hypergradient(alpha, 3, false) - truncated).norm() < 1e-12 * truncated.norm());
    MESSAGE("3-term Neumann hypergradient vs IFT: relative error " << (truncated - exact).norm() / exact.norm());
}

namespace {
// float64 problem for finite-difference checks: smooth layers (tanh), no dropout.
using fd_trunk = nn::sequential<nn::input<4>, nn::dense<5>, nn::tanh, nn::dense<4>, nn::tanh>;
using fd_model = nn::basic_multi_task<double, fd_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<4>>>;
using fd_gen = gen::dtg<nn::sequential<nn::input<6>, nn::dense<3>, nn::tanh, nn::dense<4>>,
                        nn::sequential<nn::input<4>, nn::dense<3>, nn::tanh, nn::dense<4>>, gen::none, double>;
using fd_sgd = optim::sgd<double>;
const data::hierarchy two_by_two = data::hierarchy("two-by-two", {0, 0, 1, 1});

data::dataset<double> small_data(std::size_t n, std::uint64_t seed) {
    rng gen(seed, "fd-data");
    data::dataset<double> d;
    d.name = "fd";
    d.classes = 4;
    d.example_shape = {4, 1, 1};
    d.inputs = xt::xtensor<double, 2>::from_shape({n, 4});
    for (std::size_t i = 0; i < n; ++i) {
        d.labels.push_back(std::int32_t(i % 4));
        for (std::size_t j = 0; j < 4; ++j) d.inputs(i, j) = gen.normal(double(i % 4 == j), 1.0);
    }
    return d;
}

struct fd_fixture {
    meta::hvp_method method = meta::hvp_method::automatic;
    double hvp_step = 0.01;
    data::dataset<double> data = small_data(40, 1);
    std::vector<std::uint32_t> rows;
    std::vector<std::int32_t> primary, fine;
    train::batch<double> b;
    gen::dtg_options opts() {
        gen::dtg_options o;
        o.psi_per_class = 2;
        o.upper_every = 1000000;  // no upper step inside step(): φ stays where the test put it
        o.distance_weight = 0.7;
        o.entropy_weight = 0.3;
        o.hvp = method;
        o.hvp_step = hvp_step;
        return o;
    }
    trainer_options topts() {
        trainer_options o;
        o.seed = 2;
        o.batch_size = 8;
        o.dev_fraction = 0.2;
        return o;
    }
    trainer<fd_model, fd_gen, weight::equal, fd_sgd> t;
    explicit fd_fixture(meta::hvp_method m = meta::hvp_method::automatic, double step = 0.01)
        : method(m), hvp_step(step), t{two_by_two, fd_gen{opts()}, weight::equal{}, fd_sgd({.learning_rate = 0.1}), topts()} {
        t.fit(data, {.epochs = 1});  // a few real steps (and the dev split) before checking
        for (std::uint32_t r = 0; r < 8; ++r) {
            rows.push_back(r);
            fine.push_back(data.labels[r]);
            primary.push_back(two_by_two.primary_of(data.labels[r]));
        }
        b = train::batch<double>{data.inputs.data(), 8, primary.data(), fine.data(), std::span<const std::uint32_t>(rows)};
        // Move φ_f off its zero start so the feature path is exercised.
        rng g(9, "phi");
        for (auto& w : t.generator().feature_generator().parameters()) w = g.normal(0.0, 0.3);
        t.step(b);
    }
    // Concatenated φ = (φ_f, φ_l) views.
    std::size_t phi_size() {
        return t.generator().feature_generator().parameters().size() + t.generator().label_generator().parameters().size();
    }
    double& phi(std::size_t i) {
        auto& f = t.generator().feature_generator().parameters();
        return i < f.size() ? f[i] : t.generator().label_generator().parameters()[i - f.size()];
    }
    double grad(std::size_t i) {
        const auto& f = t.generator().feature_gradient();
        return i < f.size() ? f[i] : t.generator().label_gradient()[i - f.size()];
    }
    // Compares the generators' upper gradients (as the code under test left them) with central
    // differences of f in each parameter of φ; returns the largest error and the largest entry.
    template <class Value>
    std::pair<double, double> compare_with_finite_differences(Value&& f, double h) {
        std::vector<double> analytic(phi_size());
        for (std::size_t i = 0; i < analytic.size(); ++i) analytic[i] = grad(i);
        double worst = 0, scale = 0;
        for (std::size_t i = 0; i < analytic.size(); ++i) {
            const double keep = phi(i);
            phi(i) = keep + h;
            const double up = f();
            phi(i) = keep - h;
            const double down = f();
            phi(i) = keep;
            const double numeric = (up - down) / (2 * h);
            worst = std::max(worst, std::abs(numeric - analytic[i]));
            scale = std::max(scale, std::abs(numeric));
        }
        return {worst, scale};
    }
    void regenerate() {
        std::array<train::auxiliary_targets<double>, 1> targets;
        targets[0].reserve(8, 4);
        t.generator().generate(b, std::span<train::auxiliary_targets<double>>(targets));
    }
};
}  // namespace

TEST_CASE("DTG's mixed product matches a finite difference in φ of <p, grad_θ L_gen(θ, φ)>") {
  for (const auto method : {meta::hvp_method::exact, meta::hvp_method::central_difference}) {
    CAPTURE(std::string(meta::to_string(method)));
    fd_fixture fx(method);
    auto& g = fx.t.generator();
    auto& model = fx.t.model();
    const std::size_t P = fd_model::parameter_count;
    rng dir(4, "p");
    const auto p = testing::random_vector(P, dir);
    // ⟨p, ∇_θ L_gen(θ, φ)⟩ with x̃, ỹ regenerated at the current φ.
    auto inner = [&] {
        fx.regenerate();
        model.forward(g.generated_inputs().data(), 8);
        std::vector<double> dy(8 * 4);
        fx.t.loss().value_and_gradient(model.output(1), 8, 4, loss::soft_targets<double>{g.generated_labels().data()}, nullptr,
                                       dy.data());
        arena<double> grad(P);
        model.backward_head(1, dy.data(), grad);
        return std::inner_product(grad.begin(), grad.end(), p.begin(), 0.0);
    };
    fx.regenerate();
    g.zero_upper_gradients();
    g.mixed_product(fx.t, fx.b, std::span<const double>(p), 1.0);
    const auto [worst, scale] = fx.compare_with_finite_differences(inner, 1e-5);
    MESSAGE("mixed product (" << std::string(meta::to_string(method)) << "): max |analytic − FD| = " << worst << " on entries up to " << scale);
    CHECK(scale > 1e-3);
    // Exact: only the test's own finite difference errs.  Central: the product is itself a central
    // difference (ε‖s‖ = 0.01).
    CHECK(worst < (method == meta::hvp_method::exact ? 1e-7 : 5e-5) * scale);
  }
}

TEST_CASE("DTG's exact Hessian-vector product of the lower loss matches central differences of its gradient") {
    fd_fixture fx;
    auto& model = fx.t.model();
    const std::size_t P = fd_model::parameter_count;
    rng dir(6, "u");
    const auto u = testing::random_vector(P, dir);
    fx.regenerate();
    std::vector<double> exact(P), central(P);
    fx.t.generator().lower_hessian_vector(fx.t, fx.b, std::span<const double>(u), std::span<double>(exact));
    arena<double> saved, scratch;
    meta::hessian_vector(model.parameters(), std::span<const double>(u),
                         [&](double* g) { fx.t.generator().lower_gradient(fx.t, fx.b, g); }, std::span<double>(central), saved,
                         scratch, 1e-5);
    const double err = testing::relative_error(exact, central);
    MESSAGE("DTG lower-level HVP: exact vs central difference (1e-5) relative error " << err);
    CHECK(meta::norm(std::span<const double>(exact)) > 1e-3);
    CHECK(err < 1e-7);
}

TEST_CASE("DTG's upper gradient with exact products matches the one with central differences at a small step") {
    // The whole upper step: the exact path runs the forward and backward at θ once and shares
    // them between its three HVPs and the mixed product; central differences redo everything per
    // product.  With no upper step inside fit() both fixtures stand at the same θ and φ.
    fd_fixture exact(meta::hvp_method::exact), central(meta::hvp_method::central_difference, 1e-4);
    REQUIRE(std::equal(exact.t.model().parameters().begin(), exact.t.model().parameters().end(),
                       central.t.model().parameters().begin()));
    exact.regenerate();
    central.regenerate();
    // Twice: nothing may be left over from the last upper step.
    for (int round = 0; round < 2; ++round) {
        std::vector<double> upper[2];
        for (auto* fx : {&exact, &central}) {
            fx->t.generator().compute_upper_gradient(fx->t, fx->b);
            auto& out = upper[fx == &exact ? 0 : 1];
            for (std::size_t i = 0; i < fx->phi_size(); ++i) out.push_back(fx->grad(i));
            for (double w : fx->t.generator().manual_weight_gradient()) out.push_back(w);
        }
        const double err = testing::relative_error(upper[0], upper[1]);
        MESSAGE("DTG upper gradient, round " << round << ": exact vs central difference (1e-4) relative error " << err);
        CHECK(meta::norm(std::span<const double>(upper[0])) > 1e-4);
        CHECK(err < 1e-6);
    }
}

TEST_CASE("DTG's instance regulariser has the gradient it claims") {
    fd_fixture fx;
    auto& g = fx.t.generator();
    fx.regenerate();
    g.zero_upper_gradients();
    g.add_regulariser_gradient(fx.b);
    auto value = [&] {
        fx.regenerate();
        g.add_regulariser_gradient(fx.b);  // sets regulariser() for the regenerated batch
        return g.regulariser();
    };
    const auto [worst, scale] = fx.compare_with_finite_differences(value, 1e-6);
    CHECK(scale > 1e-4);
    CHECK(worst < 1e-6 * std::max(1.0, scale));
}

namespace {
using trunk = nn::sequential<nn::input<20>, nn::dense<32>, nn::relu, nn::dense<32>, nn::relu>;
// Heads: primary (parity), a manually collected auxiliary task (10 classes), the generated task.
using model_type = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
using sgd = optim::sgd<float>;
using dtg_random = gen::dtg_for<model_type, 32, 2, gen::random_labels>;
using dtg_human = gen::dtg_for<model_type, 32, 2, gen::human_hierarchy>;
const data::hierarchy parity = data::hierarchy::fashion_parity2();

trainer_options opts(std::uint64_t seed) {
    trainer_options o;
    o.seed = seed;
    o.batch_size = 32;
    o.dev_fraction = 0.1;
    return o;
}
}  // namespace

TEST_CASE("DTG generates in-block soft labels and starts from copies of the real examples") {
    const auto data = testing::blobs(64, 1);
    trainer<model_type, dtg_human, weight::equal, sgd> t(parity, dtg_human{}, weight::equal{}, sgd({.learning_rate = 0.02}), opts(1));
    const auto first = testing::first_rows(data, parity, 32);
    const auto& primary = first.primary;
    const train::batch<float> b = first.batch();
    std::array<train::auxiliary_targets<float>, 2> targets;
    targets[0].reserve(32, 10);
    targets[1].reserve(32, 10);
    auto& g = t.generator();
    g.generate(b, std::span<train::auxiliary_targets<float>>(targets));
    CHECK(targets[0].type == train::auxiliary_targets<float>::kind::hard);
    REQUIRE(targets[1].type == train::auxiliary_targets<float>::kind::soft);
    REQUIRE(targets[1].inputs.size() == 32 * 20);
    CHECK(std::memcmp(targets[1].inputs.data(), data.inputs.data(), 32 * 20 * sizeof(float)) == 0);
    for (std::size_t i = 0; i < 32; ++i) {
        const auto c = std::size_t(primary[i]);
        double in_block = 0, outside = 0;
        for (std::size_t a = 0; a < 10; ++a) {
            const bool inside = a >= g.blocks().block_offset(c) && a < g.blocks().block_offset(c) + g.blocks().block_size(c);
            (inside ? in_block : outside) += targets[1].soft[i * 10 + a];
        }
        CHECK(in_block == doctest::Approx(1.0).epsilon(1e-5));
        CHECK(outside == 0.0);
    }
}

TEST_CASE("DTG trains end to end, reports its metrics and resumes from a checkpoint bit for bit") {
    const auto data = testing::blobs(200, 2);
    gen::dtg_options o;
    o.manual_weight_lr = 1e-2;
    using T = trainer<model_type, dtg_random, weight::equal, sgd>;
    T t(parity, dtg_random{o}, weight::equal{}, sgd({.learning_rate = 0.02, .momentum = 0.9}), opts(3));
    const auto phi0 = t.generator().label_generator().parameters();
    const auto report = t.fit(data, {.epochs = 2});
    CHECK_FALSE(std::equal(phi0.begin(), phi0.end(), t.generator().label_generator().parameters().begin()));
    CHECK(t.generator().manual_weight(0) != 1.0f);
    CHECK(t.backward_passes() == 2 * t.steps_done());  // the generated head's own backward
    REQUIRE(report.metric_names.size() == 4 + 1 + 10);
    CHECK(report.metric_names[0] == "dtg_distance");
    CHECK(report.metric_values[0] > 0);                 // x̃ has moved off x
    CHECK(report.metric_names[4] == "dtg_manual_weight1");
    double shares = 0;
    for (std::size_t a = 0; a < 10; ++a) shares += report.metric_values[5 + a];
    CHECK(shares == doctest::Approx(1.0).epsilon(1e-4));

    testing::temp_dir dir;
    T straight(parity, dtg_random{o}, weight::equal{}, sgd({.learning_rate = 0.02, .momentum = 0.9}), opts(4));
    straight.fit(data, {.epochs = 2});
    T first(parity, dtg_random{o}, weight::equal{}, sgd({.learning_rate = 0.02, .momentum = 0.9}), opts(4));
    struct stop_at_7 {
        bool on_step_end(const train::step_report& r) { return r.step == 7; }
    };
    first.fit(data, {.epochs = 2}, stop_at_7{});
    first.save_checkpoint(dir / "dtg.ckpt");
    T resumed(parity, dtg_random{o}, weight::equal{}, sgd({.learning_rate = 0.02, .momentum = 0.9}), opts(4));
    resumed.load_checkpoint(dir / "dtg.ckpt");
    resumed.fit(data, {.epochs = 2});
    CHECK(std::memcmp(resumed.model().parameters().data(), straight.model().parameters().data(),
                      model_type::parameter_count * sizeof(float)) == 0);
    CHECK(std::memcmp(resumed.generator().feature_generator().parameters().data(),
                      straight.generator().feature_generator().parameters().data(),
                      dtg_random::feature_network::parameter_count * sizeof(float)) == 0);
}

TEST_CASE("DTG's generator rates follow the network's schedule when asked, and only then") {
    const auto data = testing::blobs(200, 2);
    using T = trainer<model_type, dtg_random, weight::equal, sgd>;
    auto make = [&](bool follow, lr_schedule schedule) {
        gen::dtg_options o;
        o.generator_lr = 2e-3;
        o.manual_weight_lr = 1e-2;
        o.follow_network_schedule = follow;
        auto to = opts(5);
        to.schedule = schedule;
        return T(parity, dtg_random{o}, weight::equal{}, sgd({.learning_rate = 0.02, .momentum = 0.9}), to);
    };
    auto same_bits = [](const auto& a, const auto& b) {
        return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
    };
    SUBCASE("a constant schedule changes nothing: the factor is exactly 1") {
        auto plain = make(false, optim::constant_lr{});
        auto follow = make(true, optim::constant_lr{});
        plain.fit(data, {.epochs = 2});
        follow.fit(data, {.epochs = 2});
        CHECK(follow.generator().generator_learning_rate() == 2e-3);
        CHECK(same_bits(plain.generator().feature_generator().parameters(), follow.generator().feature_generator().parameters()));
        CHECK(same_bits(plain.model().parameters(), follow.model().parameters()));
    }
    SUBCASE("the rates take the network's factor; at a zero network rate the generators stop") {
        // step_lr every epoch with γ = 0.25: factor 1, then 0.25 in epoch 2.
        auto follow = make(true, optim::step_lr{.every = 1, .gamma = 0.25});
        follow.fit(data, {.epochs = 2});
        CHECK(follow.generator().generator_learning_rate() == doctest::Approx(2e-3 * 0.25).epsilon(1e-12));
        auto plain = make(false, optim::step_lr{.every = 1, .gamma = 0.25});
        plain.fit(data, {.epochs = 2});
        CHECK(plain.generator().generator_learning_rate() == 2e-3);
        // γ = 0: the network's rate is 0 from epoch 2 on.  Following it, φ and ω stay where
        // epoch 1 left them; with constant rates the regulariser and the hypergradient still move φ.
        auto frozen = make(true, optim::step_lr{.every = 1, .gamma = 0.0});
        auto moving = make(false, optim::step_lr{.every = 1, .gamma = 0.0});
        frozen.fit(data, {.epochs = 1});
        moving.fit(data, {.epochs = 1});
        const auto phi_f = frozen.generator().feature_generator().parameters();
        const auto phi_l = frozen.generator().label_generator().parameters();
        const float omega = frozen.generator().manual_weight(0);
        REQUIRE(same_bits(phi_f, moving.generator().feature_generator().parameters()));  // epoch 1 is the same
        frozen.fit(data, {.epochs = 3});
        moving.fit(data, {.epochs = 3});
        CHECK(frozen.generator().generator_learning_rate() == 0.0);
        CHECK(same_bits(phi_f, frozen.generator().feature_generator().parameters()));
        CHECK(same_bits(phi_l, frozen.generator().label_generator().parameters()));
        CHECK(frozen.generator().manual_weight(0) == omega);
        CHECK_FALSE(same_bits(phi_f, moving.generator().feature_generator().parameters()));
    }
    SUBCASE("resuming mid-schedule from a checkpoint gives the same bits") {
        testing::temp_dir dir;
        const lr_schedule schedule = optim::cosine_lr{.total = 3};
        auto straight = make(true, schedule);
        straight.fit(data, {.epochs = 3});
        auto first = make(true, schedule);
        struct stop_at_9 {
            bool on_step_end(const train::step_report& r) { return r.step == 9; }
        };
        first.fit(data, {.epochs = 3}, stop_at_9{});
        first.save_checkpoint(dir / "dtg_follow.ckpt");
        auto resumed = make(true, schedule);
        resumed.load_checkpoint(dir / "dtg_follow.ckpt");
        resumed.fit(data, {.epochs = 3});
        CHECK(resumed.generator().generator_learning_rate() == straight.generator().generator_learning_rate());
        CHECK(same_bits(resumed.generator().feature_generator().parameters(), straight.generator().feature_generator().parameters()));
        CHECK(same_bits(resumed.model().parameters(), straight.model().parameters()));
    }
}

TEST_CASE("gen::random_labels gives each dataset row one fixed label, spread over the classes") {
    gen::random_labels g;
    train::generator_setup setup;
    const std::array<std::size_t, 2> widths{2, 10};
    setup.head_widths = widths;
    setup.seed = 5;
    g.prepare(setup);
    std::vector<int> count(10, 0);
    for (std::uint32_t r = 0; r < 5000; ++r) {
        const auto l = g.label_of(r);
        REQUIRE(l >= 0);
        REQUIRE(l < 10);
        ++count[std::size_t(l)];
        CHECK(g.label_of(r) == l);
    }
    for (int c : count) CHECK(std::abs(c - 500) < 100);
    // A batch that does not name its rows cannot get stable labels.
    std::vector<float> x(20);
    std::vector<std::int32_t> y(1);
    std::array<train::auxiliary_targets<float>, 1> targets;
    targets[0].reserve(1, 10);
    CHECK_THROWS_AS(g.generate(train::batch<float>{x.data(), 1, y.data(), y.data(), {}}, std::span<train::auxiliary_targets<float>>(targets)),
                    config_error);
}

namespace {
// A generator whose generated inputs have the wrong size: the trainer must refuse it.
struct bad_inputs {
    static const char* name() { return "bad"; }
    static constexpr std::size_t auxiliary_tasks = 1;
    void prepare(const train::generator_setup&) {}
    void generate(const train::batch<float>& b, std::span<train::auxiliary_targets<float>> targets) {
        targets[0].type = train::auxiliary_targets<float>::kind::hard;
        for (std::size_t i = 0; i < b.size; ++i) targets[0].labels[i] = 0;
        targets[0].inputs.assign(3, 0.0f);
    }
};
using two_head = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
}  // namespace

TEST_CASE("the trainer names a generator's generated inputs of the wrong shape") {
    const auto data = testing::blobs(64, 1);
    trainer<two_head, bad_inputs, weight::equal, sgd> t(parity, bad_inputs{}, weight::equal{}, sgd({.learning_rate = 0.02}), opts(1));
    const auto before = t.model().parameters();
    CHECK_THROWS_WITH_AS(t.fit(data, {.epochs = 1}), doctest::Contains("generated inputs of auxiliary task 1"), shape_error);
    CHECK(std::equal(before.begin(), before.end(), t.model().parameters().begin()));
}

TEST_CASE("with an unhelpful manual task (random labels), DTG's primary test loss is below Equal's") {
    // Parity of 10 Gaussian blobs, 1,000 training examples, 25 epochs; the manual task is a fixed
    // random label per example.  Equal trains on it with weight 1; DTG adds its generated task and
    // learns the manual task's weight.  Seeds fixed; the mean over three seeds is compared.
    double equal_sum = 0, dtg_sum = 0, stl_sum = 0;
    gen::dtg_options o;
    o.manual_weight_lr = 1e-2;
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        const auto data = testing::blobs(1000, seed, 20, 1.5);
        const auto test = testing::blobs(2000, seed + 100, 20, 1.5);
        const sgd opt({.learning_rate = 0.02, .momentum = 0.9});
        trainer<model_type, gen::none, weight::equal, sgd> stl(parity, {}, {}, opt, opts(seed));
        stl.fit(data, {.epochs = 25});
        trainer<model_type, gen::random_labels, weight::equal, sgd> equal(parity, {}, {}, opt, opts(seed));
        equal.fit(data, {.epochs = 25});
        trainer<model_type, dtg_random, weight::equal, sgd> dtg(parity, dtg_random{o}, {}, opt, opts(seed));
        dtg.fit(data, {.epochs = 25});
        const double s = stl.evaluate(test).primary_loss(), e = equal.evaluate(test).primary_loss(),
                     d = dtg.evaluate(test).primary_loss();
        MESSAGE("seed " << seed << ": test primary loss STL " << s << ", Equal (random manual task) " << e << ", DTG " << d
                        << " (manual weight learned: " << dtg.generator().manual_weight(0) << ")");
        stl_sum += s;
        equal_sum += e;
        dtg_sum += d;
    }
    MESSAGE("mean over 3 seeds: STL " << stl_sum / 3 << ", Equal " << equal_sum / 3 << ", DTG " << dtg_sum / 3);
    CHECK(dtg_sum < equal_sum);
}

TEST_CASE("DTG refuses a non-positive Hessian-vector step") {
    gen::dtg_options o;
    o.hvp_step = 0;
    CHECK_THROWS_AS(fd_gen{o}, config_error);
    o.hvp_step = -0.01;
    CHECK_THROWS_AS(fd_gen{o}, config_error);
}
