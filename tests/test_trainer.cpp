// The composed trainer: the step pipeline does only the work its policies need, the cosine rule
// behaves as GCS specifies, auxiliary learning helps on a problem built for it, callbacks work,
// divergence is caught, and runtime selection by name works.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <thread>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/gen/human_hierarchy.hpp"
#include "auxl/gen/none.hpp"
#include "auxl/train/callbacks.hpp"
#include "auxl/train/runtime_select.hpp"
#include "auxl/train/trainer.hpp"
#include "auxl/weight/cosine.hpp"
#include "auxl/weight/equal.hpp"
#include "synthetic.hpp"
#include "temp_dir.hpp"

using namespace auxl;

namespace {
using trunk = nn::sequential<nn::input<20>, nn::dense<32>, nn::relu, nn::dense<32>, nn::relu>;
using model_type = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using sgd = optim::sgd<float>;
using stl_trainer = trainer<model_type, gen::none, weight::equal, sgd>;
using equal_trainer = trainer<model_type, gen::human_hierarchy, weight::equal, sgd>;
using cosine_trainer = trainer<model_type, gen::human_hierarchy, weight::cosine, sgd>;
using gate_trainer = trainer<model_type, gen::human_hierarchy, weight::cosine_gate, sgd>;

const data::hierarchy parity = data::hierarchy::fashion_parity2();

trainer_options opts(std::uint64_t seed, std::size_t batch = 32) {
    trainer_options o;
    o.seed = seed;
    o.batch_size = batch;
    return o;
}
sgd make_sgd(double lr = 0.05) { return sgd({.learning_rate = lr, .momentum = 0.9}); }
}  // namespace

TEST_CASE("STL and human+equal run one backward per step; human+cosine runs one per task") {
    const auto data = testing::blobs(96, 1);
    stl_trainer stl(parity, {}, weight::equal{}, make_sgd(), opts(1));
    equal_trainer eq(parity, {}, weight::equal{}, make_sgd(), opts(1));
    cosine_trainer cos(parity, {}, weight::cosine{}, make_sgd(), opts(1));
    stl_trainer::fit_options fit;
    fit.epochs = 2;
    stl.fit(data, fit);
    eq.fit(data, {.epochs = 2});
    cos.fit(data, {.epochs = 2});
    CHECK(stl.steps_done() == 6);
    CHECK(stl.backward_passes() == 6);
    CHECK(eq.backward_passes() == 6);
    CHECK(cos.backward_passes() == 12);
    CHECK(std::isnan(stl.last_losses()[1]));  // STL: the auxiliary head gets no loss
    CHECK(std::isfinite(eq.last_losses()[1]));
}

TEST_CASE("every method starts from the same initialisation for the same seed") {
    stl_trainer a(parity, {}, weight::equal{}, make_sgd(), opts(3));
    cosine_trainer b(parity, {}, weight::cosine{}, make_sgd(), opts(3));
    CHECK(std::equal(a.model().parameters().begin(), a.model().parameters().end(), b.model().parameters().begin()));
}

TEST_CASE("cosine weight is in [0, 1] and zero when the auxiliary gradient opposes the primary one") {
    train::parameter_ranges ranges{8, 4, {4, 6}, {2, 2}};
    weight::cosine rule;
    weight::cosine_gate gate;
    rule.prepare(ranges, 1);
    gate.prepare(ranges, 1);
    // rows: primary (trunk 1,2,0,1 | head0 .5 .5 | head1 0 0), auxiliary (trunk | head0 0 0 | head1 1 -1)
    std::vector<float> rows = {1, 2, 0, 1, .5f, .5f, 0, 0,   -1, -2, 0, -1, 0, 0, 1, -1};
    std::vector<float> out(8);
    rule.combine(rows.data(), ranges, out.data());
    CHECK(rule.last_cosines()[0] == doctest::Approx(-1.0));
    CHECK(rule.last_weights()[0] == 0.0);
    // Opposed auxiliary: the trunk update is the primary gradient alone; the auxiliary head still learns.
    CHECK(out == std::vector<float>{1, 2, 0, 1, .5f, .5f, 1, -1});
    // Partially aligned: weighted rule uses the cosine, the gate uses 1.
    std::vector<float> rows2 = {1, 0, 0, 0, 0, 0, 0, 0,   1, 1, 0, 0, 0, 0, 2, 2};
    rule.combine(rows2.data(), ranges, out.data());
    CHECK(rule.last_weights()[0] == doctest::Approx(std::sqrt(0.5)));
    CHECK(out[0] == doctest::Approx(1 + std::sqrt(0.5)));
    CHECK(out[6] == 2.0f);
    gate.combine(rows2.data(), ranges, out.data());
    CHECK(gate.last_weights()[0] == 1.0);
    CHECK(out[0] == doctest::Approx(2.0));
    CHECK(weight::cosine::weight_for(0.3) == doctest::Approx(0.3));
    CHECK(weight::cosine_gate::weight_for(-0.3) == 0.0);
}

TEST_CASE("on real gradients the cosine rule's trunk direction is a descent direction for the primary loss") {
    const auto data = testing::blobs(256, 2);
    cosine_trainer t(parity, {}, weight::cosine{}, make_sgd(0.02), opts(2, 64));
    // Train a little, then inspect one step's rows: ⟨G, D⟩ ≥ ‖G‖² on the trunk.
    t.fit(data, {.epochs = 2});
    auto& model = t.model();
    std::vector<std::int32_t> primary(64), fine(64);
    for (std::size_t i = 0; i < 64; ++i) {
        fine[i] = data.labels[i];
        primary[i] = parity.primary_of(fine[i]);
    }
    model.forward(data.inputs.data(), 64);
    loss::softmax_cross_entropy<float> ce;
    std::vector<float> d0(64 * 2), d1(64 * 10);
    ce.value_and_gradient(model.output(0), 64, 2, loss::hard_targets{primary.data()}, nullptr, d0.data());
    std::vector<std::int32_t> aux(64);
    for (std::size_t i = 0; i < 64; ++i) aux[i] = parity.block_index_of(fine[i]);
    ce.value_and_gradient(model.output(1), 64, 10, loss::hard_targets{aux.data()}, nullptr, d1.data());
    const std::size_t P = model_type::parameter_count;
    arena<float> rows(2 * P), out(P);
    model.backward_head(0, d0.data(), std::span<float>(rows.data(), P));
    model.backward_head(1, d1.data(), std::span<float>(rows.data() + P, P));
    train::parameter_ranges ranges{P, model_type::trunk_parameter_count, {model_type::head_offsets.begin(), model_type::head_offsets.end()},
                                   {model_type::head_sizes.begin(), model_type::head_sizes.end()}};
    weight::cosine rule;
    rule.prepare(ranges, 1);
    rule.combine(rows.data(), ranges, out.data());
    double g_dot_d = 0, g_norm = 0;
    for (std::size_t i = 0; i < ranges.trunk_size; ++i) {
        g_dot_d += double(rows[i]) * out[i];
        g_norm += double(rows[i]) * rows[i];
    }
    MESSAGE("cosine " << rule.last_cosines()[0] << ", <G,D> " << g_dot_d << ", |G|^2 " << g_norm);
    CHECK(g_norm > 0);
    CHECK(g_dot_d >= g_norm * (1 - 1e-6));
    CHECK(rule.last_weights()[0] >= 0.0);
    CHECK(rule.last_weights()[0] <= 1.0);
}

TEST_CASE("human+equal reaches a lower primary test loss than STL where fine labels carry the structure") {
    // Primary = parity of 10 blobs: each primary class is a union of five blobs, which the fine
    // labels name.  200 training examples, 15 epochs, SGD 0.02 + momentum, weight decay 5e-4.
    const auto test = testing::blobs(2000, 1000, 20, 1.2);
    const sgd opt({.learning_rate = 0.02, .momentum = 0.9, .weight_decay = 5e-4});
    double stl_loss = 0, human_loss = 0, stl_acc = 0, human_acc = 0;
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        const auto train_set = testing::blobs(200, seed, 20, 1.2);
        stl_trainer stl(parity, {}, weight::equal{}, opt, opts(seed));
        equal_trainer human(parity, {}, weight::equal{}, opt, opts(seed));
        stl.fit(train_set, {.epochs = 15});
        human.fit(train_set, {.epochs = 15});
        const auto a = stl.evaluate(test), b = human.evaluate(test);
        CHECK(b.primary_loss() < a.primary_loss());
        stl_loss += a.primary_loss();
        human_loss += b.primary_loss();
        stl_acc += a.primary_accuracy();
        human_acc += b.primary_accuracy();
    }
    MESSAGE("primary test loss STL " << stl_loss / 3 << " human+equal " << human_loss / 3 << "; accuracy " << stl_acc / 3
                                     << " vs " << human_acc / 3);
    CHECK(human_loss < stl_loss);
    CHECK(human_acc > stl_acc);
}

TEST_CASE("the auxiliary weight scales the auxiliary loss's gradient in the joint backward") {
    const auto data = testing::blobs(32, 4);
    equal_trainer zero(parity, {}, weight::equal{0.0}, make_sgd(), opts(5));
    stl_trainer stl(parity, {}, weight::equal{}, make_sgd(), opts(5));
    zero.fit(data, {.epochs = 1});
    stl.fit(data, {.epochs = 1});
    // λ = 0 trains exactly like STL on the trunk and the primary head.
    const auto& a = zero.model().parameters();
    const auto& b = stl.model().parameters();
    CHECK(std::equal(a.begin(), a.begin() + std::ptrdiff_t(model_type::head_offsets[1]), b.begin()));
    CHECK_THROWS_AS(weight::equal{-1.0}, config_error);
}

TEST_CASE("a diverging run stops with a numeric_error and leaves the parameters of the failed step untouched") {
    auto data = testing::blobs(64, 6);
    data.inputs *= 1e18f;  // huge activations: finite for a step or two, then inf
    equal_trainer t(parity, {}, weight::equal{}, make_sgd(0.5), opts(6));
    // Keep a copy of the parameters after every successful step.
    struct snapshot {
        equal_trainer* trainer;
        arena<float> last;
        std::size_t steps = 0;
        void on_step_end(const train::step_report&) {
            last = trainer->model().parameters();
            ++steps;
        }
    } keep{&t, t.model().parameters()};
    CHECK_THROWS_WITH_AS(t.fit(data, {.epochs = 5}, keep), doctest::Contains("training diverged"), numeric_error);
    MESSAGE("diverged after " << keep.steps << " good steps");
    CHECK(std::equal(keep.last.begin(), keep.last.end(), t.model().parameters().begin()));
    for (float w : t.model().parameters()) CHECK(std::isfinite(w));
}

TEST_CASE("trainer input checks: width, class count, batch size and primary head width") {
    equal_trainer t(parity, {}, weight::equal{}, make_sgd(), opts(1, 8));
    auto narrow = testing::blobs(16, 1, 19);
    CHECK_THROWS_WITH_AS(t.fit(narrow, {.epochs = 1}), doctest::Contains("has 19 values per example, the model expects 20"),
                         shape_error);
    auto d = testing::blobs(16, 1);
    d.classes = 12;
    CHECK_THROWS_WITH_AS(t.fit(d, {.epochs = 1}), doctest::Contains("12 fine classes"), shape_error);
    std::vector<float> x(9 * 20);
    std::vector<std::int32_t> y(9, 0);
    CHECK_THROWS_AS(t.step(train::batch<float>{x.data(), 9, y.data(), y.data(), {}}), shape_error);
    CHECK_THROWS_WITH_AS(equal_trainer(data::hierarchy::fashion_super5(), {}, weight::equal{}, make_sgd(), opts(1)),
                         doctest::Contains("primary head has 2 outputs but hierarchy super5 has 5"), config_error);
}

TEST_CASE("callbacks: progress writes plain lines, CSV has one row per epoch, early stopping and time limit stop") {
    const auto data = testing::blobs(64, 7);
    const auto val = testing::blobs(64, 8);
    testing::temp_dir dir;
    cosine_trainer t(parity, {}, weight::cosine{}, make_sgd(), opts(7));
    std::ostringstream out;
    train::progress show(out, 0);
    train::csv_log csv(dir / "log.csv", "run1");
    cosine_trainer::fit_options fit;
    fit.epochs = 3;
    fit.validation = &val;
    t.fit(data, fit, show, csv);
    CHECK(out.str().find("human+cosine epoch 3/3") != std::string::npos);
    CHECK(out.str().find("val loss") != std::string::npos);
    std::ifstream in(dir / "log.csv");
    std::string header, line;
    std::getline(in, header);
    CHECK(header == "run,epoch,step,lr,epoch_seconds,total_seconds,train_loss0,train_loss1,aux_weight1,cosine1,val_loss0,"
                    "val_loss1,val_accuracy0,val_accuracy1");
    int rows = 0;
    while (std::getline(in, line)) ++rows;
    CHECK(rows == 3);

    struct stop_after_two_steps {
        int steps = 0;
        bool on_step_end(const train::step_report&) { return ++steps == 2; }
    } stopper;
    const auto three_batches = testing::blobs(96, 7);
    equal_trainer u(parity, {}, weight::equal{}, make_sgd(), opts(7));
    u.fit(three_batches, {.epochs = 3}, stopper);
    CHECK(u.steps_done() == 2);
    CHECK(u.epochs_done() == 0);
    u.fit(three_batches, {.epochs = 1});  // resumes mid-epoch and finishes it
    CHECK(u.steps_done() == 3);
    CHECK(u.epochs_done() == 1);

    equal_trainer v(parity, {}, weight::equal{}, make_sgd(), opts(7));
    train::early_stopping patience(2);
    train::time_limit forever(1e9);
    const auto last = v.fit(data, {.epochs = 200, .validation = &val}, patience, forever);
    CHECK(v.epochs_done() < 200);
    CHECK(last.epoch == v.epochs_done());
    CHECK_FALSE(forever.reached());
    train::time_limit none(0.0);
    equal_trainer w(parity, {}, weight::equal{}, make_sgd(), opts(7));
    w.fit(data, {.epochs = 5}, none);
    CHECK(w.steps_done() == 1);
}

TEST_CASE("runtime selection builds each named method and rejects unknown names") {
    for (const auto& name : train::method_names()) {
        auto t = train::make_trainer<model_type>(name, parity, make_sgd(), opts(1));
        std::visit([&](auto& tr) { CHECK(tr.method_name() == name); }, *t);
    }
    CHECK_THROWS_WITH_AS(train::make_trainer<model_type>("maxl+nothing", parity, make_sgd(), opts(1)),
                         doctest::Contains("unknown method 'maxl+nothing'"), config_error);
}

TEST_CASE("the same seed gives bitwise the same trained parameters") {
    const auto data = testing::blobs(128, 9);
    cosine_trainer a(parity, {}, weight::cosine{}, make_sgd(), opts(11));
    cosine_trainer b(parity, {}, weight::cosine{}, make_sgd(), opts(11));
    a.fit(data, {.epochs = 3});
    b.fit(data, {.epochs = 3});
    CHECK(std::memcmp(a.model().parameters().data(), b.model().parameters().data(), model_type::parameter_count * sizeof(float)) == 0);
}

namespace {
// The human generator plus an exploration pass and a per-epoch pass that each take at least
// `pause` of wall time: the trainer must count both as training time.
struct slow_extra_passes : gen::human_hierarchy {
    static constexpr std::chrono::milliseconds pause{30};
    bool wants_exploration_pass() const { return true; }
    void set_exploring(bool on) {
        if (on) std::this_thread::sleep_for(pause);
        exploring = on;
    }
    template <class Trainer, class T>
    void after_epoch(Trainer&, const data::dataset<T>&) {
        std::this_thread::sleep_for(pause);
        ++epoch_passes;
    }
    bool exploring = false;
    int epoch_passes = 0;
};
}  // namespace

TEST_CASE("training time counts the exploration pass and the generator's per-epoch pass") {
    // Lower bounds only (a sleep lasts at least its duration), so this holds on any machine.
    const auto data = testing::blobs(96, 1);
    trainer<model_type, slow_extra_passes, weight::equal, sgd> t(parity, {}, weight::equal{}, make_sgd(), opts(1));
    const auto report = t.fit(data, {.epochs = 2});
    const double pause = std::chrono::duration<double>(slow_extra_passes::pause).count();
    CHECK(t.generator().epoch_passes == 2);
    CHECK(t.steps_done() == 6);  // the exploration pass's steps are not counted as steps
    CHECK(report.epoch_seconds >= 2 * pause);
    CHECK(t.training_seconds() >= 4 * pause);
}

namespace {
// An optimizer that records, from inside the step, whether the step keeps OpenBLAS's pool idle
// (core/worker_gemm.hpp): the scope must cover everything a step computes.
struct probing_sgd : sgd {
    using sgd::sgd;
    bool* inside_scope = nullptr;
    void step(std::span<float> params, std::span<const float> grad) {
        if (inside_scope) *inside_scope = products_on_workers();
        sgd::step(params, grad);
    }
    void step(arena<float>& params, const arena<float>& grad) { step(params.span(), grad.span()); }
};
using conv_trunk = nn::sequential<nn::input<1, 4, 5>, nn::conv2d<2, 3, 1, 1, nn::relu>, nn::flatten, nn::dense<8>, nn::relu>;
using conv_model = nn::multi_task<conv_trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
}  // namespace

TEST_CASE("a trainer whose model has a convolution keeps OpenBLAS's pool idle for its whole step") {
    using conv_trainer = trainer<conv_model, gen::human_hierarchy, weight::equal, probing_sgd>;
    using mlp_trainer = trainer<model_type, gen::human_hierarchy, weight::equal, probing_sgd>;
    static_assert(conv_trainer::model_runs_on_workers);
    static_assert(!mlp_trainer::model_runs_on_workers);
    const auto train_set = testing::blobs(64, 1, 20, 1.2);
    bool conv_seen = false, mlp_seen = true;
    probing_sgd conv_opt({.learning_rate = 0.05}), mlp_opt({.learning_rate = 0.05});
    conv_opt.inside_scope = &conv_seen;
    mlp_opt.inside_scope = &mlp_seen;
    conv_trainer conv(parity, {}, weight::equal{}, conv_opt, opts(1));
    mlp_trainer mlp(parity, {}, weight::equal{}, mlp_opt, opts(1));
    conv.fit(train_set, {.epochs = 1});
    mlp.fit(train_set, {.epochs = 1});
    CHECK(conv_seen);
    CHECK_FALSE(mlp_seen);
    CHECK_FALSE(products_on_workers());  // the scope ends with fit()
}
