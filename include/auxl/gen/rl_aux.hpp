// auxl/gen/rl_aux.hpp — RL-AUX: a policy that assigns each training example an auxiliary label
// (and, weight-aware, an auxiliary-loss weight), trained by PPO on the primary task's progress
// (Goldfeder, So, Lipson 2025; ALGORITHMS.md §2).
//
// gen::rl_aux<PolicyTrunk, AuxClasses> owns a policy network: PolicyTrunk (any nn::sequential on
// the model's input; by default the model's own trunk architecture) with three heads — label
// logits over the A auxiliary classes, 21 weight-bin logits, and a value.  For example i with
// primary class y_i it picks
//   a label  l_i ∈ B(y_i)  (a softmax restricted to the primary class's block of ψ classes) and,
//   weight-aware, a bin k_i ∈ {0..20} with weight w_i = 2^(8 k_i / 20 − 3) ∈ [1/8, 32].
// The auxiliary target is the hard label l_i (the code's soft "mask-softmax of a one-hot" target
// is selectable: soft_targets_like_code).  The policy acts on the whole batch with one batched
// forward — the paper's code runs it once per image, which dominates its cost.
//
// Reward, after the network's update on the batch: the improvement of the primary loss on a
// reward batch drawn from the dev set, L_before − L_after (default), or the code's −L_after;
// plus 0.2 · H(mean chosen target) to keep labels spread.  (The code's double softmax in the
// reward and its reward batch of training images are not reproduced: proper cross-entropy on
// logits, dev data.)
//
// Learning: PPO (clip 0.2, 10 epochs per rollout, minibatch 128, Adam lr 3e-4, entropy 0.01,
// value coefficient 0.5, gradient-norm clip 0.5, advantages normalised per minibatch) with GAE.
// Each batch is one time step whose reward all its examples share; the code's per-image γ = 0.99
// and λ = 0.95 become γ^B and λ^B per batch, so the horizon in examples is the code's.
// REINFORCE with a moving-average baseline is the cheap alternative (learner = reinforce).
//
// Schedules: single_pass (default) trains the network with the sampled actions and learns from
// them; two_pass is the paper's epoch — a throw-away exploration pass with sampled actions (the
// network is restored afterwards), then the real pass with the greedy policy.  Cost per epoch:
// single_pass ≈ STL + one policy forward per batch + two reward-batch forwards + PPO updates
// (10 policy passes per example per rollout); two_pass ≈ twice that.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/data/dataset.hpp"
#include "auxl/loss/block_layout.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/multi_task.hpp"
#include "auxl/optim/adam.hpp"
#include "auxl/rl/ppo.hpp"
#include "auxl/train/concepts.hpp"

namespace auxl::gen {

enum class rl_schedule { single_pass, two_pass };
enum class rl_reward { dev_improvement, negative_post_update_loss };
enum class rl_learner { ppo, reinforce };

struct rl_aux_options {
    bool learn_weights = false;          ///< weight-aware variant: also choose per-example weights
    std::size_t psi_per_class = 5;       ///< labels per primary class (when psi is empty)
    std::vector<std::size_t> psi;
    rl_schedule schedule = rl_schedule::single_pass;
    rl_reward reward = rl_reward::dev_improvement;
    rl_learner learner = rl_learner::ppo;
    bool soft_targets_like_code = false;
    double entropy_bonus = 0.2;          ///< weight of H(mean target) in the reward
    std::size_t reward_batch = 256;      ///< dev examples per reward evaluation (fewer if the dev set is smaller)
    double lr = 3e-4;
    std::size_t ppo_epochs = 10;
    std::size_t rollout_batches = 4;     ///< batches per rollout before a PPO update
    std::size_t minibatch = 128;
    double clip = 0.2;
    double entropy_coef = 0.01;
    double value_coef = 0.5;
    double max_grad_norm = 0.5;
    double gamma = 0.99;                 ///< per example, as in the code (γ^B per batch)
    double gae_lambda = 0.95;            ///< per example (λ^B per batch)
    double baseline_decay = 0.9;         ///< REINFORCE moving-average baseline
    /// Initial weight policy: a prior centred on this weight (bias of the weight head ∝
    /// −(k − k₀)²/8 around the bin k₀ of the weight), so the weight-aware policy starts near the
    /// labels-only method.  0 = the code's uniform start (mean weight ≈ 6, which hurt in our runs).
    double initial_weight = 1.0;
};

/// Weight of bin k: 2^(8k/20 − 3), from 1/8 (k = 0) to 32 (k = 20); bin 10 is weight 2.
inline double rl_aux_weight(std::size_t bin) { return std::exp2(8.0 * double(bin) / 20.0 - 3.0); }

template <class PolicyTrunk, std::size_t AuxClasses, class Scalar = float>
class rl_aux {
public:
    using T = Scalar;
    static constexpr std::size_t weight_bins = 21;
    using policy_type = nn::basic_multi_task<T, PolicyTrunk, nn::head<nn::dense<AuxClasses>>, nn::head<nn::dense<weight_bins>>,
                                             nn::head<nn::dense<1>>>;
    /// "rl_aux" (labels only) or "rl_aux_w" (labels and weights).
    const char* name() const { return options_.learn_weights ? "rl_aux_w" : "rl_aux"; }
    static constexpr std::size_t auxiliary_tasks = 1;
    static constexpr bool distributed_ready = true;  ///< label shares and policy gradients averaged through trainer.reducer()
    static constexpr bool needs_dev_set = true;

    rl_aux() : rl_aux(rl_aux_options{}) {}
    explicit rl_aux(rl_aux_options options) : options_(std::move(options)) {
        if (options_.rollout_batches == 0 || options_.ppo_epochs == 0 || options_.minibatch == 0)
            raise<config_error>("auxl::gen::rl_aux: rollout_batches, ppo_epochs and minibatch must be positive");
        if (!(options_.clip > 0)) raise<config_error>("auxl::gen::rl_aux: clip must be positive");
    }

    void prepare(const train::generator_setup& setup) {
        if (!setup.hierarchy) raise<config_error>("auxl::gen::rl_aux: no hierarchy given");
        blocks_ = options_.psi.empty() ? loss::block_layout::uniform(setup.hierarchy->primary_classes(), options_.psi_per_class)
                                       : loss::block_layout(options_.psi);
        if (blocks_.auxiliary_classes() != AuxClasses || setup.head_widths.size() < 2 || setup.head_widths[1] != AuxClasses) {
            raise<config_error>("auxl::gen::rl_aux: psi gives ", blocks_.auxiliary_classes(), " labels; the policy has ",
                                AuxClasses, " and the auxiliary head ", setup.head_widths.size() < 2 ? 0 : setup.head_widths[1]);
        }
        if (blocks_.primary_classes() != setup.hierarchy->primary_classes()) {
            raise<config_error>("auxl::gen::rl_aux: psi has ", blocks_.primary_classes(), " blocks, the hierarchy ",
                                setup.hierarchy->primary_classes(), " primary classes");
        }
        if (setup.input_size != policy_type::input_size) {
            raise<config_error>("auxl::gen::rl_aux: the policy takes ", policy_type::input_size, " inputs, the model ", setup.input_size);
        }
        hierarchy_ = setup.hierarchy;
        batch_ = setup.max_batch;
        const std::size_t cap = std::max(batch_, options_.minibatch);
        policy_ = std::make_unique<policy_type>(cap);
        rng init(setup.seed, "rl-init");
        policy_->init(init, nn::init_scheme::he_uniform);
        if (options_.initial_weight > 0) {
            const double k0 = (std::log2(options_.initial_weight) + 3.0) * 20.0 / 8.0;
            for (const auto& seg : policy_->layout().segments()) {
                if (seg.name != "head1.0.dense.bias") continue;
                for (std::size_t k = 0; k < weight_bins; ++k) {
                    policy_->parameters()[seg.offset + k] = T(-(double(k) - k0) * (double(k) - k0) / 8.0);
                }
            }
        }
        policy_grad_ = policy_->make_arena();
        optimizer_ = optim::adam<T>({.learning_rate = options_.lr, .epsilon = 1e-5});  // SB3's Adam ε
        sampler_.reseed(setup.seed ^ 0x726c2d73616d706cull);
        ppo_order_.reseed(setup.seed ^ 0x72c02d6f72646572ull);
        reward_rows_.reseed(setup.seed ^ 0x726577617264ull);
        const std::size_t R = options_.rollout_batches * batch_;
        roll_x_.assign(R * policy_type::input_size, T(0));
        roll_primary_.assign(R, 0);
        roll_label_.assign(R, 0);
        roll_bin_.assign(R, 0);
        roll_logp_.assign(R, 0.0);
        roll_value_.assign(R, 0.0);
        roll_batch_of_.assign(R, 0);
        probs_.assign(cap * std::max(AuxClasses, weight_bins), T(0));
        dlogits_[0].assign(cap * AuxClasses, T(0));
        dlogits_[1].assign(cap * weight_bins, T(0));
        dlogits_[2].assign(cap, T(0));
        step_labels_.assign(batch_, 0);
        step_logp_.assign(batch_, 0.0);
        mb_x_.assign(options_.minibatch * policy_type::input_size, T(0));
        step_bins_.assign(batch_, 0);
        label_share_.assign(AuxClasses, 0.0);
        metric_names_ = {"reward", "label_entropy", "weight_entropy", "weight_mean", "weight_sd"};
        for (std::size_t a = 0; a < AuxClasses; ++a) metric_names_.push_back("label_share" + std::to_string(a));
        metric_values_.assign(metric_names_.size(), 0.0);
    }

    const loss::block_layout& blocks() const { return blocks_; }
    policy_type& policy() { return *policy_; }
    /// The actions generate() took on the last batch, one per example: the auxiliary label (its
    /// index in the auxiliary head, inside the example's primary block) and the weight bin (0 when
    /// weights are not learned).  For logs, and for replaying a run's draws elsewhere
    /// (tests/torch_step_auxl.cpp feeds them to the PyTorch reference).
    std::span<const std::int32_t> last_labels() const { return {step_labels_.data(), last_batch_}; }
    std::span<const std::int32_t> last_bins() const { return {step_bins_.data(), last_batch_}; }
    const rl_aux_options& options() const { return options_; }

    // Two-pass schedule hooks (called by the trainer at each epoch start).
    bool wants_exploration_pass() const { return options_.schedule == rl_schedule::two_pass; }
    void set_exploring(bool on) { exploring_ = on; }
    /// Greedy actions and no learning whatever the schedule (evaluating the policy).
    void set_evaluation(bool on) { evaluation_ = on; }
    /// Whether this step samples actions and learns from their reward.
    bool learning() const { return !evaluation_ && (options_.schedule == rl_schedule::single_pass || exploring_); }

    /// One batched policy forward; samples (learning) or takes the most likely (greedy) actions.
    template <class U>
    void generate(const train::batch<U>& b, std::span<train::auxiliary_targets<U>> targets) {
        static_assert(std::is_same_v<U, T>, "auxl::gen::rl_aux: the policy's scalar type must be the model's");
        const std::size_t B = b.size, A = AuxClasses;
        policy_->forward(b.inputs, B);
        last_batch_ = B;
        const bool sample = learning();
        auto& t = targets[0];
        t.type = options_.soft_targets_like_code ? train::auxiliary_targets<T>::kind::soft : train::auxiliary_targets<T>::kind::hard;
        if (options_.learn_weights) t.weights.resize(B);
        double label_h = 0, weight_h = 0;
        std::fill(label_share_.begin(), label_share_.end(), 0.0);
        for (std::size_t i = 0; i < B; ++i) {
            const auto c = std::size_t(b.primary[i]);
            const std::size_t off = blocks_.block_offset(c), len = blocks_.block_size(c);
            T* p = probs_.data();
            rl::categorical<T>::probabilities(policy_->output(0) + i * A + off, len, p);
            const std::size_t l = pick(p, len, sample);
            label_h += rl::categorical<T>::entropy(p, len);
            double logp = rl::categorical<T>::log_prob(p, l);
            step_labels_[i] = std::int32_t(off + l);
            label_share_[off + l] += 1.0 / double(B);
            std::size_t k = 0;  // weight bin; only chosen (and used) in the weight-aware variant
            if (options_.learn_weights) {
                rl::categorical<T>::probabilities(policy_->output(1) + i * weight_bins, weight_bins, p);
                k = pick(p, weight_bins, sample);
                weight_h += rl::categorical<T>::entropy(p, weight_bins);
                logp += rl::categorical<T>::log_prob(p, k);
                t.weights[i] = T(rl_aux_weight(k));
            }
            step_bins_[i] = std::int32_t(k);
            if (options_.soft_targets_like_code) {
                // The code's target: mask-softmax of a one-hot inside the block (e/(e+ψ−1) on l).
                T* row = t.soft.data() + i * A;
                std::fill_n(row, A, T(0));
                const double z = std::exp(1.0) + double(len - 1);
                for (std::size_t j = 0; j < len; ++j) row[off + j] = T((j == l ? std::exp(1.0) : 1.0) / z);
            } else {
                t.labels[i] = std::int32_t(off + l);
            }
            if (sample) step_logp_[i] = logp;
        }
        double wsum = 0, wsq = 0;
        if (options_.learn_weights) {
            for (std::size_t i = 0; i < B; ++i) {
                wsum += double(t.weights[i]);
                wsq += double(t.weights[i]) * double(t.weights[i]);
            }
        } else {
            wsum = double(B);
            wsq = double(B);
        }
        const double wmean = wsum / double(B);
        metric_values_[1] = label_h / double(B);
        metric_values_[2] = weight_h / double(B);
        metric_values_[3] = wmean;
        metric_values_[4] = std::sqrt(std::max(0.0, wsq / double(B) - wmean * wmean));
        for (std::size_t a = 0; a < A; ++a) metric_values_[5 + a] = label_share_[a];
        if (sample) record_rollout(b);
    }

    /// Primary loss on a reward batch before the update (for the improvement reward).
    template <class Trainer>
    void before_update(Trainer& trainer, const train::batch<T>&) {
        if (!learning()) return;
        draw_reward_rows(trainer);
        if (options_.reward == rl_reward::dev_improvement) loss_before_ = reward_batch_loss(trainer);
    }

    /// Reward for this batch, and a policy update when a rollout is complete.
    template <class Trainer>
    void after_update(Trainer& trainer, const train::batch<T>& b) {
        if (!learning()) return;
        if constexpr (std::remove_reference_t<decltype(trainer.reducer())>::distributed) {
            // Data-parallel: the reward batch is the same dev rows on every rank (same parameters,
            // same draws), so the loss terms agree; the label shares and the policy gradients are
            // averaged over the ranks, so every rank's policy takes the same steps.
            auto& r = trainer.reducer();
            average_policy_gradient_ = [&r](std::span<T> g, double rows) { return r.weighted_average(g, rows); };
            sum_across_ = [&r](std::span<double> x) { r.sum(x); };
            max_across_ = [&r](std::size_t n) { return r.max(n); };
            r.weighted_average(std::span<double>(label_share_), double(b.size));
        }
        const double after = reward_batch_loss(trainer);
        double h = 0;
        for (double s : label_share_)
            if (s > 0) h -= s * std::log(s);
        const double base = options_.reward == rl_reward::dev_improvement ? loss_before_ - after : -after;
        learn_from_reward(b, base + options_.entropy_bonus * h);
    }

    /// Credits `reward` to the actions generate() just took on batch b (PPO: stored until the
    /// rollout is full; REINFORCE: an immediate update).  Public so other environments can drive
    /// the learner (tests use a bandit).
    void learn_from_reward(const train::batch<T>& b, double reward) {
        metric_values_[0] = reward;
        if (options_.learner == rl_learner::reinforce) {
            reinforce_update(b, reward);
        } else {
            rewards_.push_back(reward);
            if (rewards_.size() == options_.rollout_batches) ppo_update();
        }
    }

    std::span<const std::string> metric_names() const { return metric_names_; }
    std::span<const double> metric_values() const { return metric_values_; }

    /// The weight the greedy policy gives each example of x (the most likely bin), for diagnostics.
    std::vector<double> greedy_weights(const T* x, std::size_t n) {
        return per_example_weight(x, n, [](const T* p) {
            return rl_aux_weight(std::size_t(std::max_element(p, p + weight_bins) - p));
        });
    }

    /// E_π[w | x] for each example of x: the mean of the weight the sampling policy would choose.
    /// Smoother than greedy_weights() while the weight distribution is still wide.
    std::vector<double> expected_weights(const T* x, std::size_t n) {
        return per_example_weight(x, n, [](const T* p) {
            double e = 0;
            for (std::size_t k = 0; k < weight_bins; ++k) e += double(p[k]) * rl_aux_weight(k);
            return e;
        });
    }

    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("policy", policy_->parameters());
        optimizer_.visit_state([&](const std::string& n, auto& value) { visit("optimizer/" + n, value); });
        visit("baseline", baseline_);
        visit("baseline_set", baseline_set_);
        // A rollout in progress is part of the state: a resumed run must update the policy on
        // exactly the samples an uninterrupted run would.
        visit("rollout/rewards", rewards_);
        visit("rollout/x", roll_x_);
        visit("rollout/primary", roll_primary_);
        visit("rollout/label", roll_label_);
        visit("rollout/bin", roll_bin_);
        visit("rollout/logp", roll_logp_);
        visit("rollout/value", roll_value_);
        visit("rollout/batch_of", roll_batch_of_);
        visit("rollout/size", roll_size_);
        for (auto* r : {&sampler_, &ppo_order_, &reward_rows_}) words_.push_back(rng_state_words(*r));
        visit("rng/sampler", words_[0]);
        visit("rng/ppo_order", words_[1]);
        visit("rng/reward_rows", words_[2]);
        restore_rng_words(sampler_, words_[0]);
        restore_rng_words(ppo_order_, words_[1]);
        restore_rng_words(reward_rows_, words_[2]);
        words_.clear();
    }

private:
    // Applies `of_probabilities` to each example's weight-bin distribution (policy in batches).
    template <class F>
    std::vector<double> per_example_weight(const T* x, std::size_t n, F of_probabilities) {
        std::vector<double> w(n);
        T* p = probs_.data();
        for (std::size_t start = 0; start < n; start += batch_) {
            const std::size_t m = std::min(batch_, n - start);
            policy_->forward(x + start * policy_type::input_size, m);
            for (std::size_t i = 0; i < m; ++i) {
                rl::categorical<T>::probabilities(policy_->output(1) + i * weight_bins, weight_bins, p);
                w[start + i] = of_probabilities(p);
            }
        }
        return w;
    }

    std::size_t pick(const T* p, std::size_t n, bool sample) {
        if (!sample) return std::size_t(std::max_element(p, p + n) - p);
        double u = sampler_.uniform(), acc = 0;
        for (std::size_t j = 0; j < n; ++j) {
            acc += double(p[j]);
            if (u < acc) return j;
        }
        return n - 1;
    }

    void record_rollout(const train::batch<T>& b) {
        const std::size_t B = b.size, F = policy_type::input_size;
        if (options_.learner == rl_learner::reinforce) return;  // REINFORCE learns from the live batch
        if (roll_size_ + B > roll_primary_.size()) raise<error>("auxl::gen::rl_aux: rollout buffer overflow");
        std::copy_n(b.inputs, B * F, roll_x_.data() + roll_size_ * F);
        for (std::size_t i = 0; i < B; ++i) {
            roll_primary_[roll_size_ + i] = b.primary[i];
            roll_label_[roll_size_ + i] = step_labels_[i];
            roll_bin_[roll_size_ + i] = step_bins_[i];
            roll_logp_[roll_size_ + i] = step_logp_[i];
            roll_value_[roll_size_ + i] = double(policy_->output(2)[i]);
            roll_batch_of_[roll_size_ + i] = std::uint32_t(rewards_.size());
        }
        roll_size_ += B;
    }

    template <class Trainer>
    void draw_reward_rows(Trainer& trainer) {
        const auto* dev = trainer.dev_set();
        if (!dev) raise<config_error>("auxl::gen::rl_aux: no dev set for the reward");
        const std::size_t n = std::min(options_.reward_batch, dev->size());
        reward_index_.resize(n);
        if (n == dev->size()) {
            for (std::size_t i = 0; i < n; ++i) reward_index_[i] = i;
        } else {
            for (std::size_t i = 0; i < n; ++i) reward_index_[i] = std::size_t(reward_rows_.below(dev->size()));
        }
    }

    // Mean primary cross-entropy of the current network on the reward rows (evaluation mode).
    template <class Trainer>
    double reward_batch_loss(Trainer& trainer) {
        const auto& dev = *trainer.dev_set();
        auto& model = trainer.model();
        using M = std::remove_reference_t<decltype(model)>;
        const std::size_t F = M::input_size, chunk = model.max_batch();
        reward_x_.resize(chunk * F);
        reward_y_.resize(chunk);
        const loss::softmax_cross_entropy<T> ce;
        double total = 0;
        for (std::size_t start = 0; start < reward_index_.size(); start += chunk) {
            const std::size_t m = std::min(chunk, reward_index_.size() - start);
            for (std::size_t r = 0; r < m; ++r) {
                const std::size_t row = reward_index_[start + r];
                std::copy_n(dev.inputs.data() + row * F, F, reward_x_.data() + r * F);
                reward_y_[r] = hierarchy_->primary_of(dev.labels[row]);
            }
            model.forward(reward_x_.data(), m);
            total += double(ce.value_and_gradient(model.output(0), m, M::head_widths[0], loss::hard_targets{reward_y_.data()})) *
                     double(m);
        }
        return total / double(reward_index_.size());
    }

    // Logit gradients of one sample's loss coefficient `g_logp` on log π (plus the entropy bonus).
    void add_policy_gradient(std::size_t i, std::int32_t primary, std::int32_t label, std::int32_t bin, double g_logp,
                             double entropy_scale) {
        const std::size_t A = AuxClasses;
        const auto c = std::size_t(primary);
        const std::size_t off = blocks_.block_offset(c), len = blocks_.block_size(c);
        T* p = probs_.data();
        rl::categorical<T>::probabilities(policy_->output(0) + i * A + off, len, p);
        rl::categorical<T>::add_log_prob_gradient(p, len, std::size_t(label) - off, g_logp, dlogits_[0].data() + i * A + off);
        rl::categorical<T>::add_entropy_gradient(p, len, entropy_scale, dlogits_[0].data() + i * A + off);
        if (options_.learn_weights) {
            rl::categorical<T>::probabilities(policy_->output(1) + i * weight_bins, weight_bins, p);
            rl::categorical<T>::add_log_prob_gradient(p, weight_bins, std::size_t(bin), g_logp, dlogits_[1].data() + i * weight_bins);
            rl::categorical<T>::add_entropy_gradient(p, weight_bins, entropy_scale, dlogits_[1].data() + i * weight_bins);
        }
    }

    double log_prob_of(std::size_t i, std::int32_t primary, std::int32_t label, std::int32_t bin) {
        const std::size_t A = AuxClasses;
        const auto c = std::size_t(primary);
        const std::size_t off = blocks_.block_offset(c), len = blocks_.block_size(c);
        T* p = probs_.data();
        rl::categorical<T>::probabilities(policy_->output(0) + i * A + off, len, p);
        double lp = rl::categorical<T>::log_prob(p, std::size_t(label) - off);
        if (options_.learn_weights) {
            rl::categorical<T>::probabilities(policy_->output(1) + i * weight_bins, weight_bins, p);
            lp += rl::categorical<T>::log_prob(p, std::size_t(bin));
        }
        return lp;
    }

    // One policy step from the logit gradients of n samples (n = 0: this rank has none in this
    // minibatch but still joins the average of a data-parallel run).
    void apply_policy_gradient(std::size_t n) {
        policy_grad_.zero();
        if (n > 0) {
            policy_->backward({dlogits_[0].data(), options_.learn_weights ? dlogits_[1].data() : nullptr,
                               options_.learner == rl_learner::ppo ? dlogits_[2].data() : nullptr},
                              policy_grad_);
        }
        if (average_policy_gradient_ && average_policy_gradient_(std::span<T>(policy_grad_.data(), policy_grad_.size()), double(n)) == 0) {
            return;  // no rank had samples
        }
        double norm = 0;
        for (T g : policy_grad_) norm += double(g) * double(g);
        norm = std::sqrt(norm);
        if (options_.max_grad_norm > 0 && norm > options_.max_grad_norm) {
            const T s = T(options_.max_grad_norm / norm);
            for (auto& g : policy_grad_) g *= s;
        }
        optimizer_.step(policy_->parameters(), policy_grad_);
    }

    // REINFORCE on the live batch (the policy's activations are still those of generate()).
    void reinforce_update(const train::batch<T>& b, double reward) {
        if (!baseline_set_) {
            baseline_ = reward;
            baseline_set_ = 1;
        }
        const double advantage = reward - baseline_;
        baseline_ = options_.baseline_decay * baseline_ + (1 - options_.baseline_decay) * reward;
        const std::size_t B = b.size;
        policy_->forward(b.inputs, B);  // same parameters as at generate(): the activations it needs
        std::fill_n(dlogits_[0].data(), B * AuxClasses, T(0));
        std::fill_n(dlogits_[1].data(), B * weight_bins, T(0));
        for (std::size_t i = 0; i < B; ++i) {
            add_policy_gradient(i, b.primary[i], step_labels_[i], step_bins_[i], -advantage / double(B),
                                -options_.entropy_coef / double(B));
        }
        apply_policy_gradient(B);
    }

    // PPO over the finished rollout: GAE per batch-step, then ppo_epochs passes of minibatches.
    void ppo_update() {
        const std::size_t N = roll_size_, S = rewards_.size(), F = policy_type::input_size;
        // Members reused update after update (assign keeps their capacity): no allocation per update.
        auto& mean_value = ppo_mean_value_;
        auto& count = ppo_count_;
        auto& batch_adv = ppo_batch_adv_;
        auto& adv = ppo_adv_;
        auto& ret = ppo_ret_;
        auto& order = ppo_order_index_;
        mean_value.assign(S, 0.0);
        count.assign(S, 0.0);
        for (std::size_t i = 0; i < N; ++i) {
            mean_value[roll_batch_of_[i]] += roll_value_[i];
            count[roll_batch_of_[i]] += 1;
        }
        if (sum_across_) {  // the value of a batch-step is the mean over the global batch
            sum_across_(mean_value);
            sum_across_(count);
        }
        for (std::size_t s = 0; s < S; ++s) mean_value[s] /= std::max(1.0, count[s]);
        const double B = double(batch_);
        const double gamma = std::pow(options_.gamma, B), lambda = std::pow(options_.gae_lambda, B);
        batch_adv.assign(S, 0.0);
        rl::gae(std::span<const double>(rewards_), std::span<const double>(mean_value), {}, mean_value.back(), gamma, lambda,
                std::span<double>(batch_adv));  // no episode ends: {} dones
        adv.assign(N, 0.0);
        ret.assign(N, 0.0);
        for (std::size_t i = 0; i < N; ++i) {
            const auto s = roll_batch_of_[i];
            ret[i] = batch_adv[s] + mean_value[s];
            adv[i] = ret[i] - roll_value_[i];
        }
        order.assign(N, 0);
        const std::size_t M = options_.minibatch;
        for (std::size_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
            for (std::size_t i = 0; i < N; ++i) order[i] = i;
            shuffle(order.begin(), order.end(), ppo_order_);
            // Data-parallel: every rank runs as many minibatches as the rank with the most samples
            // (a rank whose shards were smaller joins the last ones with none).  Advantages are
            // normalised within each rank's part of a minibatch.
            const std::size_t rounds = max_across_ ? max_across_(N) : N;
            for (std::size_t start = 0; start < rounds; start += M) {
                const std::size_t m = start < N ? std::min(M, N - start) : 0;
                if (m == 0) {
                    apply_policy_gradient(0);
                    continue;
                }
                for (std::size_t r = 0; r < m; ++r) std::copy_n(roll_x_.data() + order[start + r] * F, F, mb_x_.data() + r * F);
                policy_->forward(mb_x_.data(), m);
                double mean = 0, sq = 0;
                for (std::size_t r = 0; r < m; ++r) mean += adv[order[start + r]];
                mean /= double(m);
                for (std::size_t r = 0; r < m; ++r) sq += (adv[order[start + r]] - mean) * (adv[order[start + r]] - mean);
                const double sd = m > 1 ? std::sqrt(sq / double(m - 1)) : 1.0;
                std::fill_n(dlogits_[0].data(), m * AuxClasses, T(0));
                std::fill_n(dlogits_[1].data(), m * weight_bins, T(0));
                for (std::size_t r = 0; r < m; ++r) {
                    const std::size_t i = order[start + r];
                    const double a = (adv[i] - mean) / (sd + 1e-8);
                    const double lp = log_prob_of(r, roll_primary_[i], roll_label_[i], roll_bin_[i]);
                    const double g = rl::ppo_clip_gradient(lp, roll_logp_[i], a, options_.clip) / double(m);
                    add_policy_gradient(r, roll_primary_[i], roll_label_[i], roll_bin_[i], g, -options_.entropy_coef / double(m));
                    const double v = double(policy_->output(2)[r]);
                    dlogits_[2][r] = T(2.0 * options_.value_coef * (v - ret[i]) / double(m));
                }
                apply_policy_gradient(m);
            }
        }
        rewards_.clear();
        roll_size_ = 0;
    }


    rl_aux_options options_;
    const data::hierarchy* hierarchy_ = nullptr;
    loss::block_layout blocks_;
    std::size_t batch_ = 0;
    std::size_t last_batch_ = 0;  ///< rows of the last generate() (last_labels(), last_bins())
    std::unique_ptr<policy_type> policy_;
    arena<T> policy_grad_;
    optim::adam<T> optimizer_;
    rng sampler_{0}, ppo_order_{0}, reward_rows_{0};
    bool exploring_ = false;
    bool evaluation_ = false;

    std::vector<T> probs_;
    std::array<std::vector<T>, 3> dlogits_;
    std::vector<std::int32_t> step_labels_, step_bins_;
    std::vector<double> step_logp_;
    std::vector<double> label_share_;
    double loss_before_ = 0;
    std::vector<std::size_t> reward_index_;
    std::vector<T> reward_x_;
    std::vector<std::int32_t> reward_y_;

    // Rollout storage (PPO).
    std::vector<T> roll_x_;
    std::vector<std::int32_t> roll_primary_, roll_label_, roll_bin_;
    std::vector<double> roll_logp_, roll_value_, rewards_;
    std::vector<std::uint32_t> roll_batch_of_;
    std::size_t roll_size_ = 0;
    std::vector<T> mb_x_;
    std::vector<double> ppo_mean_value_, ppo_count_, ppo_batch_adv_, ppo_adv_, ppo_ret_;  // ppo_update's
    std::vector<std::size_t> ppo_order_index_;                                             // workspace
    double baseline_ = 0;
    std::uint8_t baseline_set_ = 0;

    std::vector<std::string> metric_names_;
    std::vector<double> metric_values_;
    std::vector<std::vector<std::uint64_t>> words_;

    // Data-parallel runs: the trainer's reducer (set by after_update; empty in one process).
    std::function<double(std::span<T>, double)> average_policy_gradient_;
    std::function<void(std::span<double>)> sum_across_;
    std::function<std::size_t(std::size_t)> max_across_;
};

/// The RL-AUX generator whose policy has the model's trunk architecture.
template <class Model>
using rl_aux_for = rl_aux<typename Model::trunk_spec, Model::head_widths[1], typename Model::scalar_type>;

}  // namespace auxl::gen
