// RL-AUX: GAE and PPO pieces against hand computations and finite differences, the policy's
// actions stay in range, PPO learns a bandit, the trainer integration (both schedules, both
// learners), and the weight-aware policy down-weighting corrupted examples.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <span>
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
    // Into a caller's buffer (RL-AUX's PPO update keeps it), with no dones meaning no episode ends.
    std::vector<double> into(3, -7.0);
    rl::gae(std::span<const double>(r), std::span<const double>(v), {}, next, gamma, lambda, std::span<double>(into));
    CHECK(into == a);
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
    // last_labels()/last_bins() report exactly the actions generate() just took.
    REQUIRE(g.last_labels().size() == 32);
    REQUIRE(g.last_bins().size() == 32);
    for (std::size_t i = 0; i < 32; ++i) {
        CHECK(g.last_labels()[i] == targets[0].labels[i]);
        const auto bin = g.last_bins()[i];
        REQUIRE(bin >= 0);
        REQUIRE(bin < std::int32_t(rl_gen::weight_bins));
        CHECK(targets[0].weights[i] == float(gen::rl_aux_weight(std::size_t(bin))));
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

namespace {
// A problem on which the auxiliary loss of some examples is harmful in a way a batch-level reward
// can detect.  30 % of the training examples are corrupted: their label is moved to the next blob,
// which flips the primary (parity) class, and a flag input (dimension 19, 0 elsewhere and on the
// dev set) marks them, so the policy can tell them apart.  With ψ = 1 the auxiliary label is the
// (corrupted) primary class, so each example's weight scales how hard the trunk is pulled towards
// its label.  Measured with fixed weights (2 vs 0.5 for one group, one full-batch step, every 10
// epochs of 400, seeds 1–3): up-weighting the corrupted group lowered the reward in 83–95 % of the
// probes (all but the first few), up-weighting the clean group raised it in 75–100 %.
//   Random labels instead of corrupted ones are not enough: their pull is zero-mean, so the
// dev-loss change they cause is second order and the policy cannot see it in a batch reward.
struct corrupted_problem {
    data::dataset<float> train, dev;
    std::vector<bool> corrupted;
    explicit corrupted_problem(std::uint64_t seed) : train(testing::blobs(128, seed, 20, 0.8)), dev(testing::blobs(200, seed + 100, 20, 0.8)) {
        corrupted.resize(train.size());
        for (std::size_t i = 0; i < train.size(); ++i) {
            corrupted[i] = i % 10 < 3;
            if (corrupted[i]) train.labels[i] = (train.labels[i] + 1) % 10;
            train.inputs(i, 19) = corrupted[i] ? 3.0f : 0.0f;
        }
        for (std::size_t i = 0; i < dev.size(); ++i) dev.inputs(i, 19) = 0.0f;
    }
};
using one_label_model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<2>>>;
using one_label_gen = gen::rl_aux_for<one_label_model>;
}  // namespace

TEST_CASE("the weight-aware policy learns to give corrupted examples lower auxiliary weights than clean ones") {
    // Per-example credit comes only from a batch-level reward (as in the paper), so one run is
    // noisy: over seeds 1–20 (AUXL_TEST_SEEDS=20, 2026-12-01) 19 runs ended with the lower mean
    // weight on the corrupted group; log ratio of the group means −0.29 on average, sd 0.20.
    // The check pools six seeds (standard error ≈ 0.08).  Full-batch steps keep batch-composition
    // noise out of the reward; 800 epochs take ~2 s per seed.
    const char* more = std::getenv("AUXL_TEST_SEEDS");  // to measure over more seeds
    const std::size_t n_seeds = more ? std::size_t(std::max(1, std::atoi(more))) : 6;
    double log_ratio_sum = 0;
    std::size_t lower = 0;
    std::vector<std::uint64_t> seeds(n_seeds);
    std::iota(seeds.begin(), seeds.end(), std::uint64_t(1));
    for (const std::uint64_t seed : seeds) {
        const corrupted_problem p(seed);
        gen::rl_aux_options ro;
        ro.learn_weights = true;
        ro.psi_per_class = 1;
        ro.lr = 3e-3;  // 10x the default: 800 steps is a short run for the policy
        trainer_options o;
        o.seed = seed;
        o.batch_size = 128;
        trainer<one_label_model, one_label_gen, weight::equal, sgd> t(parity, one_label_gen{ro}, weight::equal{},
                                                                      sgd({.learning_rate = 0.01}), o);
        // E_π[w | x] per group, averaged over 11 snapshots in the second half of training (the
        // policy keeps exploring, so one snapshot is noisier than the trend).
        double corrupted_w = 0, clean_w = 0, snapshots = 0;
        for (std::size_t epoch = 400; epoch <= 800; epoch += 40, ++snapshots) {
            t.fit(p.train, {.epochs = epoch, .dev = &p.dev});
            const auto w = t.generator().expected_weights(p.train.inputs.data(), p.train.size());
            for (std::size_t i = 0; i < w.size(); ++i) (p.corrupted[i] ? corrupted_w : clean_w) += w[i];
            for (double v : w) REQUIRE((v >= 0.125 && v <= 32.0));
        }
        const double n_corrupted = double(std::count(p.corrupted.begin(), p.corrupted.end(), true));
        corrupted_w /= n_corrupted * snapshots;
        clean_w /= (double(p.train.size()) - n_corrupted) * snapshots;
        MESSAGE("seed " << seed << ": mean expected weight corrupted " << corrupted_w << ", clean " << clean_w);
        log_ratio_sum += std::log(corrupted_w / clean_w);
        lower += corrupted_w < clean_w;
    }
    const double mean_log_ratio = log_ratio_sum / double(n_seeds);
    MESSAGE("mean log(corrupted / clean weight) over " << n_seeds << " seeds: " << mean_log_ratio << "; lower on the corrupted group in "
                                                       << lower << " of them");
    CHECK(mean_log_ratio < 0);
}
