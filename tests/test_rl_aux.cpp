// RL-AUX: GAE and PPO pieces against hand computations and finite differences, the policy's
// actions stay in range, PPO learns a bandit, the trainer integration (both schedules, both
// learners), and a report on down-weighting noisy examples.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/gen/rl_aux.hpp"
#include "gradcheck.hpp"
#include "synthetic.hpp"
#include "temp_dir.hpp"

using namespace auxl;

TEST_CASE("GAE matches a hand computation, with and without an episode end") {
    const std::vector<double> r = {1.0, 0.0, 2.0}, v = {0.5, 0.2, 1.0};
    const double gamma = 0.9, lambda = 0.8, next = 0.4;
    const auto a = rl::gae(r, v, {false, false, false}, next, gamma, lambda);
    const double d2 = 2.0 + 0.9 * 0.4 - 1.0;           // 1.36
    const double d1 = 0.0 + 0.9 * 1.0 - 0.2;           // 0.70
    const double d0 = 1.0 + 0.9 * 0.2 - 0.5;           // 0.68
    CHECK(a[2] == doctest::Approx(d2));
    CHECK(a[1] == doctest::Approx(d1 + 0.72 * d2));
    CHECK(a[0] == doctest::Approx(d0 + 0.72 * (d1 + 0.72 * d2)));
    const auto b = rl::gae(r, v, {false, true, false}, next, gamma, lambda);
    CHECK(b[1] == doctest::Approx(0.0 - 0.2));          // episode ends after step 1: no bootstrap
    CHECK(b[0] == doctest::Approx(d0 + 0.72 * (0.0 - 0.2)));
}

TEST_CASE("the clipped PPO loss and the categorical pieces have the gradients they claim") {
    for (double adv : {1.3, -0.7}) {
        for (double old : {-1.0, -1.4, -0.6}) {
            const double lp = -1.0;
            const double h = 1e-6;
            const double numeric = (rl::ppo_clip_loss(lp + h, old, adv, 0.2) - rl::ppo_clip_loss(lp - h, old, adv, 0.2)) / (2 * h);
            CHECK(rl::ppo_clip_gradient(lp, old, adv, 0.2) == doctest::Approx(numeric).epsilon(1e-6));
        }
    }
    // log π(a) and H against finite differences of the logits.
    std::vector<double> z = {0.3, -1.2, 0.8, 0.1}, p(4), g(4, 0.0), gh(4, 0.0);
    rl::categorical<double>::probabilities(z.data(), 4, p.data());
    rl::categorical<double>::add_log_prob_gradient(p.data(), 4, 2, 1.0, g.data());
    rl::categorical<double>::add_entropy_gradient(p.data(), 4, 1.0, gh.data());
    auto logp = [&] {
        std::vector<double> q(4);
        rl::categorical<double>::probabilities(z.data(), 4, q.data());
        return rl::categorical<double>::log_prob(q.data(), 2);
    };
    auto entropy = [&] {
        std::vector<double> q(4);
        rl::categorical<double>::probabilities(z.data(), 4, q.data());
        return rl::categorical<double>::entropy(q.data(), 4);
    };
    CHECK(testing::relative_error(g, testing::numeric_gradient(logp, z.data(), 4)) < 1e-6);
    CHECK(testing::relative_error(gh, testing::numeric_gradient(entropy, z.data(), 4)) < 1e-6);
    CHECK(gen::rl_aux_weight(0) == doctest::Approx(0.125));
    CHECK(gen::rl_aux_weight(20) == doctest::Approx(32.0));
    CHECK(gen::rl_aux_weight(10) == doctest::Approx(2.0));
}

namespace {
using trunk = nn::sequential<nn::input<20>, nn::dense<32>, nn::relu, nn::dense<32>, nn::relu>;
using model_type = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using rl_gen = gen::rl_aux_for<model_type>;
using sgd = optim::sgd<float>;
const data::hierarchy parity = data::hierarchy::fashion_parity2();

trainer_options opts(std::uint64_t seed) {
    trainer_options o;
    o.seed = seed;
    o.batch_size = 32;
    o.dev_fraction = 0.2;
    return o;
}
}  // namespace

TEST_CASE("RL-AUX's labels lie in the primary class's block and its weights in [1/8, 32]") {
    const auto data = testing::blobs(128, 1);
    gen::rl_aux_options ro;
    ro.learn_weights = true;
    trainer<model_type, rl_gen, weight::equal, sgd> t(parity, rl_gen{ro}, weight::equal{}, sgd({.learning_rate = 0.05}), opts(1));
    struct watch_targets {
        bool on_step_end(const train::step_report& r) {
            ok &= std::isfinite(r.losses[1]);
            return false;
        }
        bool ok = true;
    } watch;
    t.fit(data, {.epochs = 2}, watch);
    CHECK(watch.ok);
    // Inspect one batch of generated targets directly.
    auto& g = t.generator();
    std::vector<std::int32_t> primary(32), fine(32);
    for (std::size_t i = 0; i < 32; ++i) {
        fine[i] = data.labels[i];
        primary[i] = parity.primary_of(fine[i]);
    }
    std::array<train::auxiliary_targets<float>, 1> targets;
    targets[0].reserve(32, 10);
    g.set_exploring(true);  // two-pass learning mode samples; single-pass samples anyway
    g.generate(train::batch<float>{data.inputs.data(), 32, primary.data(), fine.data(), {}}, std::span<train::auxiliary_targets<float>>(targets));
    REQUIRE(targets[0].weights.size() == 32);
    for (std::size_t i = 0; i < 32; ++i) {
        const auto label = targets[0].labels[i];
        const auto c = std::size_t(primary[i]);
        CHECK(std::size_t(label) >= g.blocks().block_offset(c));
        CHECK(std::size_t(label) < g.blocks().block_offset(c) + g.blocks().block_size(c));
        CHECK(targets[0].weights[i] >= 0.125f);
        CHECK(targets[0].weights[i] <= 32.0f);
    }
}

TEST_CASE("PPO inside RL-AUX learns a bandit: the reward is the share of labels equal to a known best") {
    // A stand-in environment: the reward for a batch is the share of its chosen labels that are
    // the first class of the block.  The policy's greedy choice must move there.
    const auto data = testing::blobs(256, 2);
    using policy_gen = gen::rl_aux<trunk, 10, float>;
    gen::rl_aux_options ro;
    ro.rollout_batches = 4;  // 2 made advantages ±1 per rollout and the greedy share oscillate (seen on a second machine)
    ro.lr = 3e-3;
    policy_gen g(ro);
    train::generator_setup setup;
    setup.hierarchy = &parity;
    setup.max_batch = 32;
    const std::array<std::size_t, 2> widths{2, 10};
    setup.head_widths = widths;
    setup.seed = 5;
    setup.input_size = 20;
    g.prepare(setup);
    std::array<train::auxiliary_targets<float>, 1> targets;
    targets[0].reserve(32, 10);
    std::vector<std::int32_t> primary(32), fine(32);
    auto share_best = [&](bool sample) {
        g.set_evaluation(!sample);
        double best = 0;
        for (std::size_t start = 0; start + 32 <= 256; start += 32) {
            for (std::size_t i = 0; i < 32; ++i) {
                fine[i] = data.labels[start + i];
                primary[i] = parity.primary_of(fine[i]);
            }
            g.generate(train::batch<float>{data.inputs.data() + start * 20, 32, primary.data(), fine.data(), {}}, std::span<train::auxiliary_targets<float>>(targets));
            for (std::size_t i = 0; i < 32; ++i) best += std::size_t(targets[0].labels[i]) == g.blocks().block_offset(std::size_t(primary[i]));
        }
        return best / 256.0;
    };
    // Drive the learner through its public hooks with a fake reward: a minimal trainer stand-in.
    struct fake_trainer {};
    const double before = share_best(false);
    for (int round = 0; round < 400; ++round) {
        for (std::size_t start = 0; start + 32 <= 256; start += 32) {
            for (std::size_t i = 0; i < 32; ++i) {
                fine[i] = data.labels[start + i];
                primary[i] = parity.primary_of(fine[i]);
            }
            g.set_evaluation(false);
            const train::batch<float> b{data.inputs.data() + start * 20, 32, primary.data(), fine.data(), {}};
            g.generate(b, std::span<train::auxiliary_targets<float>>(targets));
            double reward = 0;
            for (std::size_t i = 0; i < 32; ++i) reward += std::size_t(targets[0].labels[i]) == g.blocks().block_offset(std::size_t(primary[i]));
            g.learn_from_reward(b, reward / 32.0);
        }
    }
    const double after = share_best(false);
    MESSAGE("greedy share of the best label: before " << before << ", after " << after << " (5 labels per block)");
    CHECK(after > 0.9);
    CHECK(after > before + 0.3);
}

TEST_CASE("RL-AUX trains in both schedules and with both learners, and resumes from a checkpoint bit for bit") {
    const auto data = testing::blobs(160, 3);
    for (int variant = 0; variant < 3; ++variant) {
        CAPTURE(variant);
        gen::rl_aux_options ro;
        ro.learn_weights = variant != 1;
        if (variant == 1) ro.schedule = gen::rl_schedule::two_pass;
        if (variant == 2) ro.learner = gen::rl_learner::reinforce;
        using T = trainer<model_type, rl_gen, weight::equal, sgd>;
        T t(parity, rl_gen{ro}, weight::equal{}, sgd({.learning_rate = 0.05, .momentum = 0.9}), opts(3));
        const auto policy0 = t.generator().policy().parameters();
        const auto report = t.fit(data, {.epochs = 3});
        CHECK(t.steps_done() == 3 * 4);  // 160 − 20 % dev = 128 rows = 4 batches, whatever the schedule
        CHECK_FALSE(std::equal(policy0.begin(), policy0.end(), t.generator().policy().parameters().begin()));
        REQUIRE(report.metric_names.size() == 15);
        CHECK(report.metric_names[0] == "reward");
        CHECK(std::isfinite(report.metric_values[0]));
    }
    // Resume: the policy, its optimizer, rollouts in progress and streams are in the checkpoint.
    testing::temp_dir dir;
    gen::rl_aux_options ro;
    ro.learn_weights = true;
    ro.rollout_batches = 3;
    using T = trainer<model_type, rl_gen, weight::equal, sgd>;
    T straight(parity, rl_gen{ro}, weight::equal{}, sgd({.learning_rate = 0.05}), opts(8));
    straight.fit(data, {.epochs = 3});
    T first(parity, rl_gen{ro}, weight::equal{}, sgd({.learning_rate = 0.05}), opts(8));
    struct stop_at_5 {
        bool on_step_end(const train::step_report& r) { return r.step == 5; }
    };
    first.fit(data, {.epochs = 3}, stop_at_5{});
    first.save_checkpoint(dir / "rl.ckpt");
    T resumed(parity, rl_gen{ro}, weight::equal{}, sgd({.learning_rate = 0.05}), opts(8));
    resumed.load_checkpoint(dir / "rl.ckpt");
    resumed.fit(data, {.epochs = 3});
    CHECK(std::memcmp(resumed.model().parameters().data(), straight.model().parameters().data(),
                      model_type::parameter_count * sizeof(float)) == 0);
}

TEST_CASE("report: does the weight-aware policy down-weight examples whose auxiliary signal is noise?") {
    // Half the examples are informative blobs; the other half are pure noise inputs with random
    // fine labels, so their auxiliary loss only adds noise to the shared trunk.
    auto data = testing::blobs(600, 4, 20, 0.8);
    rng noise(4, "noise");
    std::vector<bool> noisy(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) {
        noisy[i] = i % 2 == 1;
        if (noisy[i]) {
            for (std::size_t j = 0; j < 20; ++j) data.inputs(i, j) = float(noise.normal(0.0, 3.0));
        }
    }
    gen::rl_aux_options ro;
    ro.learn_weights = true;
    trainer<model_type, rl_gen, weight::equal, sgd> t(parity, rl_gen{ro}, weight::equal{}, sgd({.learning_rate = 0.05, .momentum = 0.9}),
                                                      opts(4));
    t.fit(data, {.epochs = 20});
    const auto w = t.generator().greedy_weights(data.inputs.data(), data.size());
    double noisy_w = 0, clean_w = 0;
    for (std::size_t i = 0; i < w.size(); ++i) (noisy[i] ? noisy_w : clean_w) += w[i];
    noisy_w /= double(data.size() / 2);
    clean_w /= double(data.size() / 2);
    MESSAGE("mean greedy weight: noisy examples " << noisy_w << ", informative examples " << clean_w);
    CHECK(std::isfinite(noisy_w));
}
