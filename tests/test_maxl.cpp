// MAXL: the exact meta-gradient against a central finite difference of the unrolled objective
// (double precision), the finite-difference path against the exact one, a descent check, the
// trainer integration, and a report of what the generated labels learn on a clustered problem.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/gen/maxl.hpp"
#include "gradcheck.hpp"
#include "synthetic.hpp"
#include "temp_dir.hpp"

using namespace auxl;

namespace {
using trunk = nn::sequential<nn::input<6>, nn::dense<7>, nn::tanh, nn::dense<5>, nn::tanh>;
using model_type = nn::basic_multi_task<double, trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<6>>>;
using gen_net = nn::sequential<nn::input<6>, nn::dense<5>, nn::tanh, nn::dense<6>>;
using exact = gen::maxl<gen_net, gen::exact_meta_gradient, double>;
using fd = gen::maxl<gen_net, gen::finite_difference_meta_gradient, double>;

struct fixture {
    static constexpr std::size_t B = 5;
    data::hierarchy h{"tiny", {0, 1, 0, 1, 0, 1}};
    model_type model{B};
    std::vector<double> x;
    std::vector<std::int32_t> primary = {0, 1, 1, 0, 1};
    loss::softmax_cross_entropy<double> ce{2.0};
    double alpha = 0.3, lambda = 0.7;
    nn::pass_options plain{};

    fixture() {
        rng init(3, "init");
        model.init(init, nn::init_scheme::xavier_normal);
        rng data(3, "data");
        x = testing::random_vector(B * 6, data);
    }

    template <class G>
    G make() {
        gen::maxl_options o;
        o.psi_per_class = 3;
        o.entropy_weight = 0.2;
        G g(o);
        train::generator_setup setup;
        setup.hierarchy = &h;
        setup.max_batch = B;
        const std::array<std::size_t, 2> widths{2, 6};
        setup.head_widths = widths;
        setup.seed = 9;
        setup.input_size = 6;
        g.prepare(setup);
        return g;
    }

    template <class G>
    std::vector<double> meta_gradient(G& g) {
        g.run_generator(x.data(), primary.data(), B);
        model.forward(x.data(), B, plain);
        g.meta_gradient(model, x.data(), primary.data(), B, alpha, lambda, ce, plain, nullptr);
        return {g.gradient().begin(), g.gradient().end()};
    }
};
}  // namespace

TEST_CASE("MAXL's exact meta-gradient equals a finite difference of the unrolled objective") {
    fixture f;
    auto g = f.make<exact>();
    const auto before = f.model.parameters();
    const auto analytic = f.meta_gradient(g);
    CHECK(std::equal(before.begin(), before.end(), f.model.parameters().begin()));  // parameters restored exactly
    auto& phi = g.network().parameters();
    const auto numeric = testing::numeric_gradient(
        [&] { return g.unrolled_objective(f.model, f.x.data(), f.primary.data(), f.B, f.alpha, f.lambda, f.ce, f.plain); },
        phi.data(), phi.size(), 1e-6);
    const double err = testing::relative_error(analytic, numeric);
    MESSAGE("relative error exact vs unrolled finite difference: " << err);
    CHECK(err < 1e-5);
    double norm = 0;
    for (double v : analytic) norm += v * v;
    CHECK(norm > 1e-12);  // not trivially zero
}

TEST_CASE("MAXL's finite-difference path agrees with the exact path") {
    fixture f;
    auto a = f.make<exact>();
    auto b = f.make<fd>();
    const auto ga = f.meta_gradient(a);
    const auto gb = f.meta_gradient(b);
    const double err = testing::relative_error(ga, gb);
    MESSAGE("relative difference exact vs finite-difference path: " << err);
    CHECK(err < 1e-4);
}

TEST_CASE("with a scratch model the meta-gradient is the same and the model's activations stay at w") {
    fixture f;
    for (int path = 0; path < 2; ++path) {
        CAPTURE(path);
        auto run = [&](auto g) {
            const auto plain = f.meta_gradient(g);
            model_type scratch(f.B);
            g.run_generator(f.x.data(), f.primary.data(), f.B);
            f.model.forward(f.x.data(), f.B, f.plain);
            const std::vector<double> out0(f.model.output(0), f.model.output(0) + f.B * 2);
            g.meta_gradient(f.model, f.x.data(), f.primary.data(), f.B, f.alpha, f.lambda, f.ce, f.plain, nullptr, &scratch);
            const std::vector<double> with_scratch(g.gradient().begin(), g.gradient().end());
            CHECK(testing::relative_error(plain, with_scratch) < 1e-12);
            CHECK(std::equal(out0.begin(), out0.end(), f.model.output(0)));  // activations untouched
        };
        if (path == 0) run(f.make<exact>());
        else run(f.make<fd>());
    }
}

TEST_CASE("with dropout in the trunk, a scratch model replays the main model's masks") {
    using drop_trunk = nn::sequential<nn::input<6>, nn::dense<7>, nn::tanh, nn::dropout<1, 3>, nn::dense<5>, nn::tanh>;
    using drop_model = nn::basic_multi_task<double, drop_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<6>>>;
    drop_model a(4), b(4);
    rng init(1, "init"), masks(1, "dropout");
    a.init(init);
    b.parameters() = a.parameters();
    std::vector<double> x(4 * 6, 0.5);
    a.forward(x.data(), 4, {true, &masks, false});
    b.copy_masks_from(a);
    b.forward(x.data(), 4, {true, &masks, true});
    CHECK(std::equal(a.output(1), a.output(1) + 4 * 6, b.output(1)));
}

TEST_CASE("a small generator step along the meta-gradient lowers the unrolled objective") {
    fixture f;
    auto g = f.make<exact>();
    const auto grad = f.meta_gradient(g);
    auto J = [&] { return g.unrolled_objective(f.model, f.x.data(), f.primary.data(), f.B, f.alpha, f.lambda, f.ce, f.plain); };
    const double before = J();
    double norm2 = 0;
    for (double v : grad) norm2 += v * v;
    auto& phi = g.network().parameters();
    const double step = 1e-2 / std::sqrt(norm2);
    for (std::size_t i = 0; i < phi.size(); ++i) phi[i] -= step * grad[i];
    const double after = J();
    MESSAGE("J before " << before << ", after " << after << ", predicted change " << -step * norm2);
    CHECK(after < before);
    CHECK(before - after == doctest::Approx(step * norm2).epsilon(0.05));
}

TEST_CASE("generated targets are block-softmax distributions of the primary class") {
    fixture f;
    auto g = f.make<exact>();
    g.run_generator(f.x.data(), f.primary.data(), f.B);
    for (std::size_t i = 0; i < f.B; ++i) {
        double in_block = 0;
        for (std::size_t a = 0; a < 6; ++a) {
            const double t = g.targets()[i * 6 + a];
            const bool inside = a / 3 == std::size_t(f.primary[i]);
            if (inside) in_block += t;
            else CHECK(t == 0.0);
        }
        CHECK(in_block == doctest::Approx(1.0));
    }
    gen::maxl_options bad;
    bad.psi_per_class = 4;  // 2 x 4 = 8 classes for a 6-wide head
    exact wrong(bad);
    train::generator_setup setup;
    setup.hierarchy = &f.h;
    setup.max_batch = 4;
    const std::array<std::size_t, 2> widths{2, 6};
    setup.head_widths = widths;
    setup.input_size = 6;
    CHECK_THROWS_WITH_AS(wrong.prepare(setup), doctest::Contains("psi gives 8 auxiliary classes"), config_error);
}

namespace {
using mlp = nn::sequential<nn::input<20>, nn::dense<32>, nn::relu, nn::dense<32>, nn::relu>;
using mlp_model = nn::multi_task<mlp, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using maxl_gen = gen::maxl<gen::maxl_net_for<mlp_model>>;
}  // namespace

TEST_CASE("MAXL trains inside the trainer with equal and cosine rules, resumes bit for bit, and logs diagnostics") {
    const auto data = testing::blobs(96, 4);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer_options o;
    o.seed = 4;
    o.batch_size = 32;
    using T1 = trainer<mlp_model, maxl_gen, weight::equal, optim::sgd<float>>;
    using T2 = trainer<mlp_model, maxl_gen, weight::cosine, optim::sgd<float>>;
    T1 a(parity, maxl_gen{}, weight::equal{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    T2 b(parity, maxl_gen{}, weight::cosine{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    CHECK(a.loss().gamma() == 2.0f);  // MAXL's default focal γ
    const auto phi0 = a.generator().network().parameters();
    const auto ra = a.fit(data, {.epochs = 2});
    b.fit(data, {.epochs = 2});
    CHECK(std::isfinite(a.last_losses()[1]));
    CHECK(std::isfinite(b.last_losses()[1]));
    CHECK_FALSE(std::equal(phi0.begin(), phi0.end(), a.generator().network().parameters().begin()));  // the generator learned
    REQUIRE(ra.metric_names.size() == 3);
    CHECK(ra.metric_names[0] == "gen_block_entropy");
    for (double v : ra.metric_values) {
        CHECK(v >= 0.0);
        CHECK(v <= 1.0 + 1e-9);
    }

    // Bit-exact resume including the generator's network and optimizer.
    testing::temp_dir dir;
    struct stop_at_4 {
        bool on_step_end(const train::step_report& r) { return r.step == 4; }
    };
    T1 straight(parity, maxl_gen{}, weight::equal{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    straight.fit(data, {.epochs = 3});
    T1 first(parity, maxl_gen{}, weight::equal{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
    first.fit(data, {.epochs = 3}, stop_at_4{});
    first.save_checkpoint(dir / "maxl.ckpt");
    trainer_options other = o;
    other.seed = 77;
    T1 resumed(parity, maxl_gen{}, weight::equal{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), other);
    resumed.load_checkpoint(dir / "maxl.ckpt");
    resumed.fit(data, {.epochs = 3});
    CHECK(std::memcmp(resumed.model().parameters().data(), straight.model().parameters().data(),
                      mlp_model::parameter_count * sizeof(float)) == 0);
    CHECK(std::memcmp(resumed.generator().network().parameters().data(), straight.generator().network().parameters().data(),
                      straight.generator().network().parameters().size() * sizeof(float)) == 0);
}

TEST_CASE("the per-epoch schedule runs one meta pass per epoch and leaves the network untouched during it") {
    const auto data = testing::blobs(64, 5);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer_options o;
    o.seed = 5;
    o.batch_size = 32;
    gen::maxl_options mo;
    mo.schedule = gen::maxl_schedule::per_epoch;
    using T1 = trainer<mlp_model, maxl_gen, weight::equal, optim::sgd<float>>;
    T1 t(parity, maxl_gen{mo}, weight::equal{}, optim::sgd<float>({.learning_rate = 0.05}), o);
    const auto phi0 = t.generator().network().parameters();
    struct check_generator_fixed {
        T1* t;
        arena<float> phi;
        bool changed_mid_epoch = false;
        void on_step_end(const train::step_report& r) {
            if (r.step_in_epoch == 1) phi = t->generator().network().parameters();
            else changed_mid_epoch |= !std::equal(phi.begin(), phi.end(), t->generator().network().parameters().begin());
        }
    } watch{&t, {}};
    t.fit(data, {.epochs = 2}, watch);
    CHECK_FALSE(watch.changed_mid_epoch);  // no meta-update during training epochs
    CHECK_FALSE(std::equal(phi0.begin(), phi0.end(), t.generator().network().parameters().begin()));
}

namespace {
// Mutual information (nats) between the argmax generated label and the hidden fine cluster.
double mutual_information(const std::vector<int>& a, const std::vector<int>& b) {
    std::map<int, double> pa, pb;
    std::map<std::pair<int, int>, double> pab;
    for (std::size_t i = 0; i < a.size(); ++i) {
        pa[a[i]] += 1;
        pb[b[i]] += 1;
        pab[{a[i], b[i]}] += 1;
    }
    const double n = double(a.size());
    double mi = 0;
    for (const auto& [k, c] : pab) mi += c / n * std::log((c / n) / (pa[k.first] / n * pb[k.second] / n));
    return mi;
}
}  // namespace

TEST_CASE("report: do MAXL's generated labels learn the hidden clusters on a clustered problem?") {
    // Primary = parity of 10 blobs; each primary class hides 5 clusters and ψ = 5 generated
    // classes per primary class.  Reported, not asserted (see the issue): MI between the
    // generated label and the cluster (max log 5 ≈ 1.61 within a primary class) and the entropies.
    const auto train_set = testing::blobs(400, 21, 20, 0.8);
    const auto parity = data::hierarchy::fashion_parity2();
    for (double generator_lr : {1e-3, 1e-1}) {
        trainer_options o;
        o.seed = 21;
        o.batch_size = 50;
        gen::maxl_options mo;
        mo.generator_lr = generator_lr;
        trainer<mlp_model, maxl_gen, weight::equal, optim::sgd<float>> t(parity, maxl_gen{mo}, weight::equal{},
                                                                          optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9}), o);
        auto& g = t.generator();
        std::vector<std::int32_t> primary(train_set.size());
        parity.map_to_primary(train_set.labels.data(), train_set.size(), primary.data());
        auto within_block_mi = [&] {
            // I(G; C) = I(G; C | P) + H(P) since the primary class P is a function of both.
            std::vector<int> generated, cluster, prim;
            for (std::size_t start = 0; start < train_set.size(); start += 50) {
                g.run_generator(train_set.inputs.data() + start * 20, primary.data() + start, 50);
                for (std::size_t i = 0; i < 50; ++i) {
                    const float* row = g.targets() + i * 10;
                    generated.push_back(int(std::max_element(row, row + 10) - row));
                    cluster.push_back(train_set.labels[start + i]);
                    prim.push_back(primary[start + i]);
                }
            }
            return mutual_information(generated, cluster) - mutual_information(prim, cluster);
        };
        const double mi_before = within_block_mi();
        const auto report = t.fit(train_set, {.epochs = 30});
        const double mi_after = within_block_mi();
        MESSAGE("generator lr " << generator_lr << ": within-block MI(generated label, hidden cluster) " << mi_before
                                << " nats at init -> " << mi_after << " after 30 epochs (max log 5 = 1.61); block entropy "
                                << report.metric_values[0] << ", batch entropy " << report.metric_values[1]
                                << ", aux agreement " << report.metric_values[2]);
        CHECK(std::isfinite(report.train_loss[1]));
    }
}

TEST_CASE("fit() without a dev set trains exactly as on dev_split()'s two parts, reading the training part in place") {
    // fit() keeps the training part as row indices of the given set (no copy of 95 % of it); a
    // generator's per-epoch pass (MAXL's epoch schedule) still gets that part as a dataset.  Both
    // must give the bits of a run handed the split dev_split() makes.
    const auto data = testing::blobs(160, 6);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer_options o;
    o.seed = 6;
    o.batch_size = 32;
    weight::module_aware_options ma;
    ma.interval = 3;  // several upper steps on the dev part within two epochs
    const auto [train_part, dev_part] = dev_split(data, o);
    CHECK(train_part.size() + dev_part.size() == data.size());
    const optim::sgd<float> sgd({.learning_rate = 0.05, .momentum = 0.9});

    SUBCASE("human labels, module-aware rule") {
        using T = trainer<mlp_model, gen::human_hierarchy, weight::module_aware, optim::sgd<float>>;
        T in_place(parity, gen::human_hierarchy{}, weight::module_aware{ma}, sgd, o);
        T given(parity, gen::human_hierarchy{}, weight::module_aware{ma}, sgd, o);
        in_place.fit(data, {.epochs = 2});
        given.fit(train_part, {.epochs = 2, .dev = &dev_part});
        REQUIRE(in_place.dev_set() != nullptr);
        CHECK(in_place.dev_set()->size() == dev_part.size());
        CHECK(std::memcmp(in_place.model().parameters().data(), given.model().parameters().data(),
                          mlp_model::parameter_count * sizeof(float)) == 0);
        CHECK(std::equal(in_place.rule().omega().begin(), in_place.rule().omega().end(), given.rule().omega().begin()));
    }
    SUBCASE("MAXL with its per-epoch pass, module-aware rule") {
        gen::maxl_options mo;
        mo.schedule = gen::maxl_schedule::per_epoch;
        using T = trainer<mlp_model, maxl_gen, weight::module_aware, optim::sgd<float>>;
        T in_place(parity, maxl_gen{mo}, weight::module_aware{ma}, sgd, o);
        T given(parity, maxl_gen{mo}, weight::module_aware{ma}, sgd, o);
        in_place.fit(data, {.epochs = 2});
        given.fit(train_part, {.epochs = 2, .dev = &dev_part});
        CHECK(std::memcmp(in_place.model().parameters().data(), given.model().parameters().data(),
                          mlp_model::parameter_count * sizeof(float)) == 0);
        CHECK(std::memcmp(in_place.generator().network().parameters().data(), given.generator().network().parameters().data(),
                          given.generator().network().parameters().size() * sizeof(float)) == 0);
    }
}

TEST_CASE("MAXL's lookahead under module-aware's weighted backward is the rows' lookahead") {
    // With combine_in_backward the trainer has no gradient rows to sum MAXL's lookahead gradient
    // from; it runs one more backward instead.  Both must train the same (double, to ~1e-10).
    rng gen(12, "set");
    data::dataset<double> d;
    d.name = "random";
    d.classes = 4;
    d.example_shape = {6, 1, 1};
    d.inputs = xt::xtensor<double, 2>::from_shape({64, 6});
    for (auto& v : d.inputs) v = gen.normal();
    for (std::size_t i = 0; i < 64; ++i) d.labels.push_back(std::int32_t(gen.below(4)));
    const data::hierarchy pairs("pairs", {0, 0, 1, 1});
    gen::maxl_options mo;
    mo.psi_per_class = 3;
    auto run = [&](bool weighted, std::size_t epochs) {
        weight::module_aware_options ma;
        ma.interval = 3;
        ma.combine_in_backward = weighted;
        trainer_options o;
        o.seed = 8;
        o.batch_size = 16;
        auto t = std::make_unique<trainer<model_type, exact, weight::module_aware, optim::sgd<double>>>(
            pairs, exact{mo}, weight::module_aware{ma}, optim::sgd<double>({.learning_rate = 0.05, .momentum = 0.9}), o);
        if (epochs) t->fit(d, {.epochs = epochs});
        return t;
    };
    const auto rows = run(false, 2), weighted = run(true, 2);
    // Compared as the change from the common start: the generator moves little in 8 steps.
    const auto start = run(false, 0);
    auto change = [&](const auto& t, bool generator) {
        const auto& now = generator ? t->generator().network().parameters() : t->model().parameters();
        const auto& then = generator ? start->generator().network().parameters() : start->model().parameters();
        std::vector<double> out(now.size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = now[i] - then[i];
        return out;
    };
    CHECK(testing::relative_error(change(rows, false), change(weighted, false)) < 1e-9);
    CHECK(testing::relative_error(change(rows, true), change(weighted, true)) < 1e-9);
}
