// auxl/train/trainer.hpp — one statically dispatched training loop for a composition of
// policies: auxl::trainer<Model, Generator, Weighting, Optimizer, Reducer = dist::local>.
//
// The step pipeline (DESIGN.md):
//   1. the generator turns the batch into auxiliary targets (hard or soft, optional weights);
//   2. one forward of the model; the primary loss and each auxiliary loss (softmax cross-entropy,
//      focal γ optional);
//   3. backward: if the rule needs per-task gradients, each task into its own row of a
//      (K+1) x P matrix; otherwise one backward of the weighted sum;
//   4. the rule combines the rows into one update direction;
//   5. the optimizer applies it;
//   6. meta-updates of the generator, if it has any (after_step).
// Everything is resolved at compile time: STL + equal runs exactly one forward and one backward.
// The Reducer (auxl/dist/local.hpp: none, the default; auxl/dist/mpi.hpp: data-parallel) combines
// the gradient across processes between the backward (3) and the combination (4).
// Non-finite losses or gradients stop the step with auxl::numeric_error before the parameters
// change.  fit() loops over epochs with a seeded batcher and calls the callbacks; checkpoints
// capture the whole state (parameters, optimizer, generator, rule, rng streams, batcher
// position, epoch accumulators) so a resumed run continues bit for bit.
#pragma once

#include <algorithm>
#include <concepts>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/core/finite.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/core/worker_gemm.hpp"
#include "auxl/data/batcher.hpp"
#include "auxl/data/dataset.hpp"
#include "auxl/data/hierarchy.hpp"
#include "auxl/data/subset.hpp"
#include "auxl/dist/local.hpp"
#include "auxl/io/checkpoint.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/nn/init.hpp"
#include "auxl/optim/schedule.hpp"
#include "auxl/train/concepts.hpp"
#include "auxl/train/type_name.hpp"
#include "auxl/train/types.hpp"

namespace auxl {

/// Learning-rate schedule applied per epoch to the optimizer's initial rate.
using lr_schedule = std::variant<optim::constant_lr, optim::step_lr, optim::cosine_lr>;

enum class non_finite_policy { raise, skip_step };

struct trainer_options {
    std::uint64_t seed = 0;                    ///< all randomness derives from it (named streams)
    std::size_t batch_size = 128;              ///< also the largest batch step() accepts
    /// Focal γ of every task's loss; unset = the generator's default_focal_gamma if it declares
    /// one (MAXL: 2, as in its code), else 0 (plain cross-entropy).
    std::optional<double> focal_gamma = std::nullopt;
    lr_schedule schedule = optim::constant_lr{};
    nn::init_scheme init = nn::init_scheme::he_uniform;
    /// Share of the training set held out as a dev set when a policy needs one (needs_dev_set)
    /// and fit() is given none; stratified over the fine classes, drawn from the seed.
    double dev_fraction = 0.05;
    /// Clip the update direction (after the weighting rule, before the optimizer) to this global
    /// L2 norm; unset = no clipping.  The norm before clipping is in step_report::gradient_norm.
    std::optional<double> max_grad_norm = std::nullopt;
    /// What a non-finite input, loss or update direction does: raise (default: an auxl::error
    /// naming the step, the task or tensor; parameters untouched) or skip the step (parameters,
    /// optimizer and the policies' meta-updates untouched; counted in skipped_steps()).
    non_finite_policy on_non_finite = non_finite_policy::raise;
};

/// The split fit() makes when a policy needs a dev set and none is given: (training part, dev
/// part), options.dev_fraction of every fine class held out, drawn from options.seed.  Public so
/// a baseline can train on exactly the part the dev-set methods train on (the demo's "stl@dev":
/// STL without the held-out examples, which separates a method's effect from the split's).
template <class T>
std::pair<data::dataset<T>, data::dataset<T>> dev_split(const data::dataset<T>& given, const trainer_options& options) {
    rng split(options.seed, "dev-split");
    return data::stratified_split(given, options.dev_fraction, split);
}

/// The same split as row indices of `given` (training part, dev part): what fit() uses, so the
/// training part, 95 % of the set by default, is read in place rather than copied.
template <class T>
std::pair<std::vector<std::size_t>, std::vector<std::size_t>> dev_split_rows(const data::dataset<T>& given,
                                                                             const trainer_options& options) {
    rng split(options.seed, "dev-split");
    return data::stratified_split_rows(given, options.dev_fraction, split);
}

namespace detail {
// Reads a rule's trait without a second error when the rule is not a WeightingRule at all.
template <class W>
constexpr bool rule_needs_task_gradients() {
    if constexpr (requires { W::needs_task_gradients; }) {
        return W::needs_task_gradients;
    } else {
        return false;
    }
}

template <class P>
constexpr bool declares_distributed_ready() {
    if constexpr (requires { P::distributed_ready; }) {
        return bool(P::distributed_ready);
    } else {
        return false;
    }
}
}  // namespace detail

template <class Model, class Generator, class Weighting, class Optimizer, class Reducer = dist::local>
class trainer {
    static_assert(train::Model<Model>,
                  "auxl::trainer: the Model argument is not a Model (an nn::multi_task<Trunk, PrimaryHead, AuxHeads...>)");
    static_assert(train::LabelGenerator<Generator>,
                  "auxl::trainer: the Generator argument is not a LabelGenerator (needs name(), auxiliary_tasks, "
                  "prepare(setup) and generate(batch, targets); see auxl/train/concepts.hpp)");
    static_assert(train::WeightingRule<Weighting>,
                  "auxl::trainer: the Weighting argument is not a WeightingRule (needs name(), needs_task_gradients, "
                  "prepare(ranges, K), last_weights(), metric_names()/metric_values(), and auxiliary_weight(k) or "
                  "combine(rows, ranges, out); see auxl/train/concepts.hpp)");
    static_assert(train::Optimizer<Optimizer>,
                  "auxl::trainer: the Optimizer argument is not an Optimizer (needs step(params, grad), "
                  "learning_rate() and set_learning_rate(lr))");

public:
    using model_type = Model;
    using scalar_type = typename Model::scalar_type;
    using T = scalar_type;
    static constexpr std::size_t task_count = Model::task_count;
    static constexpr std::size_t auxiliary_count = task_count - 1;
    static constexpr bool per_task_gradients = detail::rule_needs_task_gradients<Weighting>();
    /// Whether the rule's direction is Σ_k (per-trunk-module coefficient) × task k's gradient, heads
    /// unscaled — then the trainer can form it in one model_.backward_weighted (weight::module_aware).
    /// (Needs a model with backward_weighted, as nn::multi_task has; other Models use the rows.)
    static constexpr bool rule_combines_by_module =
        requires(Weighting& w, std::span<T> c, Model& m, const std::array<const T*, task_count>& dy, std::span<const T> cc) {
            { w.combine_in_backward() } -> std::convertible_to<bool>;
            w.module_coefficients(c);
            { Model::trunk_module_count } -> std::convertible_to<std::size_t>;
            m.backward_weighted(dy, cc, c);
        };
    /// Whether the model runs layers on auxl's workers (a convolution).  Then step(), fit() and
    /// evaluate() keep OpenBLAS's thread pool idle for everything they compute, the generator's
    /// and rule's products included (core/worker_gemm.hpp).
    static constexpr bool model_runs_on_workers = [] {
        if constexpr (requires { Model::runs_on_workers; }) return bool(Model::runs_on_workers);
        else return false;
    }();

    static_assert(std::is_same_v<typename Optimizer::scalar_type, T>,
                  "auxl::trainer: the optimizer's scalar type differs from the model's (use optim::sgd<double> with a "
                  "double model)");
    // A generator may feed fewer heads than the model has (the rest get no loss), so methods with
    // different head counts can share one model type and hence one initialisation.
    static_assert(Generator::auxiliary_tasks <= auxiliary_count,
                  "auxl::trainer: the generator feeds more auxiliary heads than the model has");
    static_assert(Generator::auxiliary_tasks > 0 || !per_task_gradients,
                  "auxl::trainer: gen::none trains the primary task alone; combine it with weight::equal");

    struct fit_options {
        std::size_t epochs = 1;                          ///< train until this many epochs are done
        const data::dataset<T>* validation = nullptr;    ///< evaluated after every epoch if given
        /// Dev data for policies that need it (else split off the training set).  The trainer
        /// keeps the pointer after fit() returns, for later step() calls: it must outlive them.
        const data::dataset<T>* dev = nullptr;
    };
    /// Whether a policy asks for a dev set (reward batches of RL-AUX, upper levels of bi-level rules).
    static constexpr bool needs_dev_set = [] {
        bool needs = false;
        if constexpr (requires { Generator::needs_dev_set; }) needs = needs || bool(Generator::needs_dev_set);
        if constexpr (requires { Weighting::needs_dev_set; }) needs = needs || bool(Weighting::needs_dev_set);
        return needs;
    }();

    trainer(data::hierarchy hierarchy, Generator generator = {}, Weighting rule = {}, Optimizer optimizer = {},
            trainer_options options = {}, Reducer reducer = {})
        : reducer_(std::move(reducer)),
          options_(std::move(options)),
          hierarchy_(std::move(hierarchy)),
          model_(options_.batch_size),
          generator_(std::move(generator)),
          rule_(std::move(rule)),
          optimizer_(std::move(optimizer)),
          init_rng_(options_.seed, "init"),
          order_rng_(options_.seed, "order"),
          dropout_rng_(options_.seed, "dropout") {
        if (options_.batch_size == 0) raise<config_error>("auxl::trainer: batch size must be positive");
        if (Model::head_widths[0] != hierarchy_.primary_classes()) {
            raise<config_error>("auxl::trainer: the primary head has ", Model::head_widths[0], " outputs but hierarchy ",
                                hierarchy_.name(), " has ", hierarchy_.primary_classes(), " primary classes");
        }
        model_.init(init_rng_, options_.init);
        base_lr_ = optimizer_.learning_rate();
        loss_ = loss::softmax_cross_entropy<T>(T(options_.focal_gamma ? *options_.focal_gamma : generator_default_gamma()));

        const std::size_t B = options_.batch_size;
        grad_.resize(Model::parameter_count);
        // The rows are sized at their first use: a module-wise rule combining in the backward never needs them.
        for (std::size_t k = 0; k < task_count; ++k) dlogits_[k].assign(B * Model::head_widths[k], T(0));
        for (std::size_t k = 0; k < auxiliary_count; ++k) targets_[k].reserve(B, Model::head_widths[k + 1]);
        x_.assign(B * Model::input_size, T(0));
        primary_.assign(B, 0);
        fine_.assign(B, 0);
        eval_labels_.assign(B, 0);

        ranges_.total = Model::parameter_count;
        ranges_.trunk_size = Model::trunk_parameter_count;
        ranges_.head_offset.assign(Model::head_offsets.begin(), Model::head_offsets.end());
        ranges_.head_size.assign(Model::head_sizes.begin(), Model::head_sizes.end());
        for (const auto& m : model_.layout().modules()) {
            if (m.offset >= Model::trunk_parameter_count) continue;
            ranges_.trunk_module_offset.push_back(m.offset);
            ranges_.trunk_module_size.push_back(m.extent);
            ranges_.trunk_module_name.push_back(m.name);
        }
        rule_.prepare(ranges_, auxiliary_count);

        train::generator_setup setup;
        setup.hierarchy = &hierarchy_;
        setup.max_batch = B;
        setup.head_widths = std::span<const std::size_t>(Model::head_widths.data(), task_count);
        setup.seed = options_.seed;
        setup.input_size = Model::input_size;
        generator_.prepare(setup);
        for (const auto& n : rule_.metric_names()) metric_names_.push_back(n);
        if constexpr (requires { generator_.metric_names(); }) {
            for (const auto& n : generator_.metric_names()) metric_names_.push_back(n);
        }
        metric_values_.assign(metric_names_.size(), 0.0);
        if constexpr (per_task_gradients) lookahead_.resize(Model::parameter_count);
        reset_epoch_accumulators();
    }

    // trainer holds pointers into itself (the generator's hierarchy): not copyable or movable.
    trainer(const trainer&) = delete;
    trainer& operator=(const trainer&) = delete;

    /// "stl", or "<generator>+<rule>" (the generator's name may depend on its options).
    std::string method_name() const {
        if constexpr (Generator::auxiliary_tasks == 0) {
            return generator_.name();
        } else {
            return std::string(generator_.name()) + "+" + Weighting::name();
        }
    }

    Model& model() { return model_; }
    const Model& model() const { return model_; }
    Generator& generator() { return generator_; }
    Weighting& rule() { return rule_; }
    Optimizer& optimizer() { return optimizer_; }
    /// The optimizer's rate before any schedule: optimizer().learning_rate() / base_learning_rate()
    /// is how far the schedule has annealed it (generators that follow the schedule use this).
    double base_learning_rate() const { return base_lr_; }
    /// The gradient reducer: generators and rules with meta-gradients on the step's batch average
    /// them across processes through it (a no-op for the default dist::local).
    Reducer& reducer() { return reducer_; }
    /// Rows per global batch: options().batch_size on each of reducer().size() processes.
    std::size_t global_batch_size() const { return options_.batch_size * std::size_t(reducer_.size()); }
    const data::hierarchy& hierarchy() const { return hierarchy_; }
    const trainer_options& options() const { return options_; }
    std::size_t steps_done() const { return step_; }
    /// Steps skipped for a non-finite input, loss or direction (on_non_finite = skip_step) since
    /// this trainer was constructed (not stored in checkpoints).
    std::size_t skipped_steps() const { return skipped_steps_; }
    std::size_t epochs_done() const { return epoch_; }
    /// Backward passes of the model so far (one per step for joint rules, K+1 for per-task rules).
    std::size_t backward_passes() const { return backward_passes_; }
    /// The training loss object (focal γ included), for generators that differentiate through it.
    const loss::softmax_cross_entropy<T>& loss() const { return loss_; }
    /// λ_k of auxiliary task k in the plain training objective L_pri + Σ λ_k L_aux,k — the rule's
    /// fixed weight (equal) or its scale (cosine).  Lookahead-based generators step along it.
    double lookahead_aux_weight(std::size_t k = 0) const {
        if constexpr (!per_task_gradients) {
            return rule_.auxiliary_weight(k);
        } else if constexpr (requires { rule_.lambda(); }) {
            return rule_.lambda();
        } else {
            return 1.0;
        }
    }
    /// ∇_w [L_pri + Σ λ_k L_aux,k] on the current step's batch, at the parameters before the
    /// update — available from a generator's before_update hook.  With a joint rule it is the
    /// step's gradient; with a per-task rule it is summed from the gradient rows (O(P)).
    const arena<T>& lookahead_gradient() {
        if constexpr (!per_task_gradients) {
            return grad_;  // the step's gradient is exactly this sum: no copy
        } else {
            if (!lookahead_ready_ && weighted_backward_) {
                // No rows this step: one more backward of the step's forward, with each auxiliary
                // upstream scaled by its lookahead weight.
                std::array<const T*, task_count> upstream{};
                upstream[0] = dlogits_[0].data();
                for (std::size_t k = 1; k < task_count; ++k) {
                    if (targets_[k - 1].type == train::auxiliary_targets<T>::kind::none) continue;
                    const std::size_t n = last_batch_.size * Model::head_widths[k];
                    lookahead_upstream_[k].resize(n);
                    const T lambda = T(lookahead_aux_weight(k - 1));
                    for (std::size_t i = 0; i < n; ++i) lookahead_upstream_[k][i] = lambda * dlogits_[k][i];
                    upstream[k] = lookahead_upstream_[k].data();
                }
                lookahead_.zero();
                model_.backward(upstream, lookahead_);
                reducer_.average(std::span<T>(lookahead_.data(), lookahead_.size()));
                lookahead_ready_ = true;
            }
            if (!lookahead_ready_) {
                const std::size_t P = Model::parameter_count;
                std::copy_n(rows_.data(), P, lookahead_.data());
                for (std::size_t k = 1; k < task_count; ++k) {
                    const T lambda = T(lookahead_aux_weight(k - 1));
                    const T* row = rows_.data() + k * P;
                    for (std::size_t i = 0; i < P; ++i) lookahead_[i] += lambda * row[i];
                }
                lookahead_ready_ = true;
            }
            return lookahead_;
        }
    }
    /// The batch of the last step (valid until the next step; its targets are current_targets()).
    const train::batch<T>& last_batch() const { return last_batch_; }
    /// The auxiliary targets the generator made for the current step (one per auxiliary head).
    std::span<const train::auxiliary_targets<T>> current_targets() const {
        return std::span<const train::auxiliary_targets<T>>(targets_.data(), auxiliary_count);
    }
    /// Parameter ranges of the model (trunk, modules, heads), as the rule sees them.
    const train::parameter_ranges& ranges() const { return ranges_; }

    /// The dev set of the current fit (given, or split off the training set); null if none.
    const data::dataset<T>* dev_set() const { return dev_; }

    /// A second model of the same type (created on first use) for perturbed or lookahead passes
    /// that must not disturb the main model's activations; copy_masks_from() replays dropout.
    Model& scratch_model() {
        if (!scratch_) scratch_ = std::make_unique<Model>(options_.batch_size);
        return *scratch_;
    }

    /// Pass options that reuse the dropout masks of the current step (perturbed passes).
    nn::pass_options reuse_masks() { return nn::pass_options{true, &dropout_rng_, true}; }

    /// Wall time spent training in fit() over this trainer's life: the steps, an exploration pass
    /// (two-pass RL-AUX) and a generator's per-epoch pass (per-epoch MAXL); evaluation and
    /// callbacks' own work at epoch end are excluded.  Saved in checkpoints, so a resumed run
    /// counts the time its earlier processes spent too.
    double training_seconds() const { return training_seconds_; }
    /// Per-task losses of the last step (NaN for a task without targets).
    std::span<const double> last_losses() const { return losses_; }

    /// One training step on a gathered batch (at most options().batch_size rows).
    train::step_report step(const train::batch<T>& b) {
        const products_on_workers_scope scope(model_runs_on_workers);
        if (b.size == 0 || b.size > options_.batch_size) {
            raise<shape_error>("auxl::trainer::step: batch of ", b.size, " rows; expected 1 to ", options_.batch_size);
        }
        if (!b.primary || !b.inputs) raise<shape_error>("auxl::trainer::step: the batch has no inputs or primary labels");
        if (Generator::auxiliary_tasks > 0 && !b.fine) {
            raise<shape_error>("auxl::trainer::step: the generator needs fine labels and the batch has none");
        }
        if constexpr (Reducer::distributed) {
            // A policy with its own meta-update must average it across processes (through
            // trainer.reducer()) and say so; otherwise each rank would drift to its own state.
            constexpr bool generator_meta = requires { generator_.before_update(*this, b); } ||
                                            requires { generator_.after_update(*this, b); } ||
                                            requires(const data::dataset<T>& d) { generator_.after_epoch(*this, d); };
            static_assert(!generator_meta || detail::declares_distributed_ready<Generator>(),
                          "auxl::trainer: this generator has meta-updates that are not averaged across processes; it "
                          "cannot run under a distributed reducer (average them through trainer.reducer(), then declare "
                          "static constexpr bool distributed_ready = true)");
            constexpr bool rule_meta = requires { rule_.after_update(*this, b); } || requires { Weighting::needs_trainer_in_combine; };
            static_assert(!rule_meta || detail::declares_distributed_ready<Weighting>(),
                          "auxl::trainer: this weighting rule has meta-updates that are not averaged across processes; "
                          "it cannot run under a distributed reducer (average them through trainer.reducer(), then "
                          "declare static constexpr bool distributed_ready = true)");
        }
        const std::size_t B = b.size;
        reducer_.begin_step(B);
        last_batch_ = b;
        for (auto& t : targets_) {
            t.type = train::auxiliary_targets<T>::kind::none;
            t.weights.clear();
            t.inputs.clear();
        }
        generator_.generate(b, std::span<train::auxiliary_targets<T>>(targets_.data(), auxiliary_count));

        // Heads on the batch's inputs share one forward; a head with generated inputs (DTG) gets a
        // forward of its own after the batch's backward (backward passes add into the gradient).
        std::array<bool, task_count> generated{};
        for (std::size_t k = 1; k < task_count; ++k) {
            const auto& t = targets_[k - 1];
            generated[k] = t.type != train::auxiliary_targets<T>::kind::none && !t.inputs.empty();
            if (generated[k] && t.inputs.size() != B * Model::input_size) {
                raise<shape_error>("auxl::trainer::step: the generated inputs of auxiliary task ", k, " have ", t.inputs.size(),
                                   " values; expected ", B, " rows of ", Model::input_size);
            }
        }
        train::step_report report;
        report.epoch = epoch_;
        report.main_process = reducer_.rank() == 0;
        report.losses = std::span<const double>(losses_.data(), task_count);
        if (!compute_update(b, generated)) {
            ++step_;
            ++skipped_steps_;
            report.step = step_;
            report.skipped = true;
            report.learning_rate = optimizer_.learning_rate();
            report.aux_weights = std::span<const double>(aux_weights_.data(), auxiliary_count);
            return report;
        }
        lookahead_ready_ = false;
        if (options_.max_grad_norm) report.gradient_norm = clip_update_direction(*options_.max_grad_norm);
        // Meta-updates of the generator see the batch, the activations of this step's forward and
        // the parameters before this step's update (MAXL reuses the training gradient for its
        // lookahead instead of recomputing it).
        if constexpr (requires { generator_.before_update(*this, b); }) generator_.before_update(*this, b);
        optimizer_.step(model_.parameters(), grad_);
        if constexpr (requires { generator_.after_update(*this, b); }) generator_.after_update(*this, b);
        if constexpr (requires { rule_.after_update(*this, b); }) rule_.after_update(*this, b);
        ++step_;

        const auto weights = rule_.last_weights();
        for (std::size_t k = 0; k < auxiliary_count; ++k) {
            aux_weights_[k] = targets_[k].type == train::auxiliary_targets<T>::kind::none ? 0.0 : weights[k];
        }
        report.step = step_;
        report.learning_rate = optimizer_.learning_rate();
        report.aux_weights = std::span<const double>(aux_weights_.data(), auxiliary_count);
        return report;
    }

    /// Trains until `options.epochs` epochs are done (continuing a resumed run where it stopped).
    template <class... Callbacks>
    train::epoch_report fit(const data::dataset<T>& full_train_set, const fit_options& fit, Callbacks&&... callbacks) {
        static_assert((train::Callback<std::remove_cvref_t<Callbacks>> && ...),
                      "auxl::trainer::fit: a callback has none of on_fit_begin, on_step_end, on_epoch_end, on_fit_end");
        const products_on_workers_scope scope(model_runs_on_workers);
        check_dataset(full_train_set, "training");
        const training_rows train_set = prepare_dev_set(full_train_set, fit.dev);
        if (fit.validation) check_dataset(*fit.validation, "validation");
        if (batcher_.rows() != train_set.size()) {
            if (batcher_.rows() != 0 && batcher_.epoch_started()) {
                raise<config_error>("auxl::trainer::fit: the run was interrupted on a training set of ", batcher_.rows(),
                                    " rows; this one has ", train_set.size());
            }
            batcher_ = data::batcher(train_set.size(), global_batch_size());
        }
        check_replicas_agree("at the start of fit()");
        train::fit_plan plan{method_name(), epoch_, fit.epochs, batcher_.batches_per_epoch(), task_count};
        plan.main_process = reducer_.rank() == 0;
        (call_fit_begin(callbacks, plan), ...);

        train::epoch_report report = last_report_;
        const auto fit_start = std::chrono::steady_clock::now();
        bool stop = false;
        while (epoch_ < fit.epochs && !stop) {
            const double lr = std::visit([&](const auto& s) { return s(base_lr_, epoch_); }, options_.schedule);
            optimizer_.set_learning_rate(lr);
            // Training time counts every pass that trains something: the exploration pass and a
            // generator's per-epoch pass too, so two-pass RL-AUX and per-epoch MAXL report their cost.
            const auto epoch_start = std::chrono::steady_clock::now();
            if (!batcher_.epoch_started()) {
                batcher_.start_epoch(order_rng_);
                reset_epoch_accumulators();
                run_exploration_pass(train_set);
            }
            while (!batcher_.epoch_done() && !stop) {
                const auto rows = shard_of(batcher_.next());
                if (rows.empty()) continue;  // a last global batch smaller than the process count
                const auto b = gather(train_set, rows);
                auto step_report = step(b);
                accumulate(step_report);
                step_report.step_in_epoch = epoch_steps_;
                step_report.steps_per_epoch = batcher_.batches_per_epoch();
                ((stop = call_step_end(callbacks, step_report) || stop), ...);
            }
            if (batcher_.epoch_done()) {
                if constexpr (requires { generator_.after_epoch(*this, full_train_set); }) {
                    generator_.after_epoch(*this, training_part(train_set));
                }
            }
            const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
            epoch_seconds_ += spent;
            training_seconds_ += spent;
            if (!batcher_.epoch_done()) break;  // stopped by a callback mid-epoch; fit() again resumes here
            ++epoch_;
            batcher_.restore({}, 0);
            check_replicas_agree("after an epoch");
            report = make_epoch_report(fit);
            report.main_process = reducer_.rank() == 0;
            report.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();
            if (fit.validation) {
                report.has_validation = true;
                report.validation = evaluate(*fit.validation);
            }
            last_report_ = report;
            ((stop = call_epoch_end(callbacks, report) || stop), ...);
        }
        (call_fit_end(callbacks, report), ...);
        return report;
    }

    /// Loss and accuracy of each task on a dataset (evaluation mode: no dropout).
    /// Task 0 against the primary labels; auxiliary heads as wide as the hierarchy's fine classes
    /// against the human fine labels; other heads NaN.  Loss = plain cross-entropy.
    train::evaluation evaluate(const data::dataset<T>& d) {
        const products_on_workers_scope scope(model_runs_on_workers);
        check_dataset(d, "evaluation");
        train::evaluation result;
        result.loss.assign(task_count, 0.0);
        result.accuracy.assign(task_count, 0.0);
        result.examples = d.size();
        const loss::softmax_cross_entropy<T> plain;
        const std::size_t chunk = options_.batch_size, F = Model::input_size;
        for (std::size_t start = 0; start < d.size(); start += chunk) {
            const std::size_t n = std::min(chunk, d.size() - start);
            model_.forward(d.inputs.data() + start * F, n);
            for (std::size_t k = 0; k < task_count; ++k) {
                if (k == 0) {
                    hierarchy_.map_to_primary(d.labels.data() + start, n, eval_labels_.data());
                } else if (Model::head_widths[k] == hierarchy_.fine_classes()) {
                    for (std::size_t i = 0; i < n; ++i) eval_labels_[i] = hierarchy_.block_index_of(d.labels[start + i]);
                } else {
                    continue;
                }
                const T* out = model_.output(k);
                const std::size_t W = Model::head_widths[k];
                result.loss[k] += double(plain.value_and_gradient(out, n, W, loss::hard_targets{eval_labels_.data()})) * double(n);
                for (std::size_t i = 0; i < n; ++i) {
                    const T* row = out + i * W;
                    result.accuracy[k] += std::size_t(std::max_element(row, row + W) - row) == std::size_t(eval_labels_[i]);
                }
            }
        }
        for (std::size_t k = 0; k < task_count; ++k) {
            const bool defined = k == 0 || Model::head_widths[k] == hierarchy_.fine_classes();
            result.loss[k] = defined ? result.loss[k] / double(d.size()) : std::numeric_limits<double>::quiet_NaN();
            result.accuracy[k] = defined ? result.accuracy[k] / double(d.size()) : std::numeric_limits<double>::quiet_NaN();
        }
        return result;
    }

    // --- checkpoints ------------------------------------------------------------------------

    /// A description of the composition and the model's segment table (first line = composition).
    std::string manifest() const {
        std::ostringstream out;
        out << "auxl trainer " << method_name() << " | model " << detail::type_name<Model>() << " | optimizer "
            << detail::type_name<Optimizer>() << "\n";
        model_.layout().summary(out);
        return out.str();
    }
    static std::uint64_t type_hash(const std::string& manifest_text) {
        // The reducer is left out: a checkpoint of a data-parallel run resumes in one process and
        // the other way round.
        return io::text_hash(detail::type_name<trainer<Model, Generator, Weighting, Optimizer>>() + "\n" + manifest_text);
    }

    /// Writes the whole training state to `path` (temporary file + rename: an existing
    /// checkpoint at `path` survives any failure).
    /// In a data-parallel run only rank 0 writes (the state is the same on every rank).
    void save_checkpoint(const std::filesystem::path& path) {
        if (reducer_.rank() != 0) return;
        const std::string text = manifest();
        io::checkpoint_writer writer(type_hash(text), text);
        visit_state([&](const std::string& name, auto& value) { writer.add(name, value); });
        // Wall time is not training state, but a resumed run should report its whole cost.
        writer.add(training_seconds_section, training_seconds_);
        writer.write(path);
    }

    /// Restores the state written by save_checkpoint.  A file of another composition, a corrupt
    /// file or a missing section is an io_error and leaves this trainer unchanged.
    void load_checkpoint(const std::filesystem::path& path) {
        const std::string text = manifest();
        const io::checkpoint_reader reader(path, type_hash(text), text);
        // First pass only checks that every section exists with a usable size ...
        visit_state([&](const std::string& name, auto& value) { check_section(reader, name, value); });
        // Optional: checkpoints written before it was recorded resume with the clock at 0.
        const bool has_seconds = reader.has(training_seconds_section);
        if (has_seconds) check_section(reader, training_seconds_section, training_seconds_);
        // ... so the second pass cannot fail half-way.
        visit_state([&](const std::string& name, auto& value) { reader.read(name, value); });
        if (has_seconds) reader.read(training_seconds_section, training_seconds_);
        batcher_ = batcher_rows_ == 0 ? data::batcher() : data::batcher(batcher_rows_, global_batch_size());
        batcher_.restore(permutation_, cursor_);
        for (std::size_t i = 0; i < rng_words_.size(); ++i) restore_rng(i);
    }

private:
    // Forward, losses, backward and the rule's combination into grad_; false when the step is
    // skipped (on_non_finite = skip_step) because an input, a loss or the direction is not finite.
    bool compute_update(const train::batch<T>& b, const std::array<bool, task_count>& generated) {
        if constexpr (!Reducer::distributed) {
            return local_gradients(b, generated) && finish_update();
        } else {
            // Every rank must reach the collective calls: a local failure is reported to all ranks
            // first, then raised (or skipped) everywhere.
            std::exception_ptr failure;
            bool ok = false;
            try {
                ok = local_gradients(b, generated);
            } catch (...) {
                failure = std::current_exception();
            }
            if (!reducer_.all(ok)) {
                if (failure) std::rethrow_exception(failure);
                if (!ok || skipping()) return false;
                raise<numeric_error>("auxl::trainer: step ", step_ + 1, " (epoch ", epoch_ + 1,
                                     "): another process found a non-finite input or loss in its shard of the batch; "
                                     "parameters are unchanged by this step");
            }
            return finish_update();
        }
    }

    // Forward, losses and backward of this process's rows into rows_ (per-task rules) or grad_.
    bool local_gradients(const train::batch<T>& b, const std::array<bool, task_count>& generated) {
        const std::size_t B = b.size;
        if (!inputs_finite(b.inputs, B, "input")) return false;
        for (std::size_t k = 1; k < task_count; ++k) {
            if (generated[k] && !inputs_finite(targets_[k - 1].inputs.data(), B, "generated input")) return false;
        }
        model_.forward(b.inputs, B, nn::pass_options{true, &dropout_rng_, false});
        std::array<const T*, task_count> upstream{};
        losses_[0] = loss_.value_and_gradient(model_.output(0), B, Model::head_widths[0], loss::hard_targets{b.primary},
                                              nullptr, dlogits_[0].data());
        upstream[0] = dlogits_[0].data();
        for (std::size_t k = 1; k < task_count; ++k) {
            losses_[k] = std::numeric_limits<double>::quiet_NaN();
            if (targets_[k - 1].type == train::auxiliary_targets<T>::kind::none || generated[k]) continue;
            upstream[k] = auxiliary_upstream(k, B);
        }
        if (!check_finite_losses(upstream)) return false;

        weighted_backward_ = false;
        if constexpr (per_task_gradients && rule_combines_by_module) {
            // A module-wise rule's direction in one backward (no K+1 rows), unless a head has
            // generated inputs (its own forward, so its own backward).
            if (rule_.combine_in_backward() && std::none_of(generated.begin(), generated.end(), [](bool g) { return g; })) {
                module_coefficients_.resize(task_count * Model::trunk_module_count);
                rule_.module_coefficients(std::span<T>(module_coefficients_));
                grad_.zero();
                model_.backward_weighted(upstream, std::span<const T>(module_coefficients_), grad_.span());
                backward_passes_ += std::size_t(std::count_if(upstream.begin(), upstream.end(), [](const T* u) { return u; }));
                weighted_backward_ = true;
                return true;
            }
        }
        if constexpr (per_task_gradients) {
            rows_.ensure_size(task_count * Model::parameter_count);
            rows_.zero();
            for (std::size_t k = 0; k < task_count; ++k) {
                if (!upstream[k]) continue;
                model_.backward_head(k, upstream[k], std::span<T>(rows_.data() + k * Model::parameter_count, Model::parameter_count));
                ++backward_passes_;
            }
            for (std::size_t k = 1; k < task_count; ++k) {
                if (!generated[k]) continue;
                if (!generated_forward(k, B, upstream)) return false;
                model_.backward_head(k, upstream[k], std::span<T>(rows_.data() + k * Model::parameter_count, Model::parameter_count));
                ++backward_passes_;
            }
        } else {
            grad_.zero();
            model_.backward(upstream, grad_);
            ++backward_passes_;
            for (std::size_t k = 1; k < task_count; ++k) {
                if (!generated[k]) continue;
                if (!generated_forward(k, B, upstream)) return false;
                model_.backward_head(k, upstream[k], grad_);
                ++backward_passes_;
            }
        }
        return true;
    }

    // Averages the gradients (and the reported losses) across processes, then lets the rule
    // combine the rows; false if the direction is not finite and the policy skips.
    bool finish_update() {
        if constexpr (Reducer::distributed) {
            if (weighted_backward_) {
                reducer_.average(std::span<T>(grad_.data(), grad_.size()));  // linear in the rows: average after combining
            } else if constexpr (per_task_gradients) {
                reducer_.average(std::span<T>(rows_.data(), rows_.size()));
            } else {
                reducer_.average(std::span<T>(grad_.data(), grad_.size()));
            }
            reducer_.average(std::span<double>(losses_.data(), task_count));
        }
        if (weighted_backward_) return check_finite_gradient();
        if constexpr (per_task_gradients) {
            if constexpr (requires { Weighting::needs_trainer_in_combine; }) {
                rule_.combine_with(*this, rows_.data(), ranges_, grad_.data());
            } else {
                rule_.combine(rows_.data(), ranges_, grad_.data());
            }
        }
        return check_finite_gradient();
    }

    // Loss of auxiliary task k on the model's last forward; its logit gradient (scaled by the
    // task's weight for joint rules) goes to dlogits_[k], which is returned.
    const T* auxiliary_upstream(std::size_t k, std::size_t B) {
        const auto& t = targets_[k - 1];
        const T scale = per_task_gradients ? T(1) : T(aux_weight_for(k - 1));
        const T* weights = t.weights.empty() ? nullptr : t.weights.data();
        if (t.type == train::auxiliary_targets<T>::kind::hard) {
            losses_[k] = loss_.value_and_gradient(model_.output(k), B, Model::head_widths[k], loss::hard_targets{t.labels.data()},
                                                  weights, dlogits_[k].data(), scale);
        } else {
            losses_[k] = loss_.value_and_gradient(model_.output(k), B, Model::head_widths[k], loss::soft_targets<T>{t.soft.data()},
                                                  weights, dlogits_[k].data(), scale);
        }
        return dlogits_[k].data();
    }

    // The forward of a head with generated inputs, and its loss; false if the step is skipped.
    bool generated_forward(std::size_t k, std::size_t B, std::array<const T*, task_count>& upstream) {
        model_.forward(targets_[k - 1].inputs.data(), B, nn::pass_options{true, &dropout_rng_, false});
        upstream[k] = auxiliary_upstream(k, B);
        std::array<const T*, task_count> only{};
        only[k] = upstream[k];
        return check_finite_losses(only);
    }

    bool skipping() const { return options_.on_non_finite == non_finite_policy::skip_step; }

    // Rows x input_size values of `what`; a non-finite one raises (naming step, row and column)
    // or, when skipping, returns false.
    bool inputs_finite(const T* x, std::size_t rows, const char* what) const {
        const std::size_t F = Model::input_size;
        if (all_finite(x, rows * F)) return true;  // the vectorised scan; the loop below finds the bad value
        for (std::size_t i = 0; i < rows * F; ++i) {
            if (std::isfinite(x[i])) continue;
            if (skipping()) return false;
            raise<value_error>("auxl::trainer: step ", step_ + 1, " (epoch ", epoch_ + 1, "): ", what, " row ", i / F, " column ",
                               i % F, " is ", std::isnan(x[i]) ? "NaN" : "infinite",
                               "; data must be finite. Parameters are unchanged by this step.");
        }
        return true;
    }

    bool check_finite_losses(const std::array<const T*, task_count>& upstream) const {
        for (std::size_t k = 0; k < task_count; ++k) {
            if (upstream[k] && !std::isfinite(losses_[k])) {
                if (skipping()) return false;
                raise<numeric_error>("auxl::trainer: step ", step_ + 1, " (epoch ", epoch_ + 1, "): the ",
                                     k == 0 ? "primary" : "auxiliary", " loss of task ", k, " is ", losses_[k],
                                     " — training diverged; lower the learning rate or the auxiliary weight. "
                                     "Parameters are unchanged by this step.");
            }
        }
        return true;
    }

    // Scales grad_ to at most max_norm (global L2); returns the norm before.
    double clip_update_direction(double max_norm) {
        double sq = 0;
        for (T g : grad_) sq += double(g) * double(g);
        const double n = std::sqrt(sq);
        if (n > max_norm && n > 0) {
            const T scale = T(max_norm / n);
            for (auto& g : grad_) g *= scale;
        }
        return n;
    }

    double aux_weight_for(std::size_t k) const {
        if constexpr (per_task_gradients) {
            return 1.0;
        } else {
            return rule_.auxiliary_weight(k);
        }
    }

    // The rows fit() trains on: all of `data`, or (rows non-null) data's rows (*rows)[i], i < size.
    struct training_rows {
        const data::dataset<T>* data = nullptr;
        const std::vector<std::size_t>* rows = nullptr;
        std::size_t size() const { return rows ? rows->size() : data->size(); }
    };

    // The training set to use: the given one, or — when a policy needs a dev set and none was
    // given — the given one minus a stratified dev split (the same split for the same seed, the
    // rows of dev_split()).  Only the dev part is copied; the training part is read in place
    // through its row indices, which saves a copy of 95 % of the set (188 MB on Fashion-MNIST).
    training_rows prepare_dev_set(const data::dataset<T>& given, const data::dataset<T>* dev) {
        if constexpr (!needs_dev_set) {
            (void)dev;
            return {&given, nullptr};
        } else {
            if (dev) {
                check_dataset(*dev, "dev");
                dev_ = dev;
                return {&given, nullptr};
            }
            if (split_source_ != &given || split_size_ != given.size()) {
                auto [kept, held] = dev_split_rows(given, options_);
                split_train_rows_ = std::move(kept);
                split_dev_ = given.subset(held);
                split_dev_.name = given.name + "/dev";
                split_train_ = data::dataset<T>{};  // built again by training_part() if a generator asks
                split_source_ = &given;
                split_size_ = given.size();
            }
            if (split_dev_.size() == 0) raise<config_error>("auxl::trainer: the dev split of ", given.name, " is empty; raise dev_fraction");
            dev_ = &split_dev_;
            return {&given, &split_train_rows_};
        }
    }

    // The training rows as a dataset, for a generator's per-epoch pass (gen::maxl's epoch
    // schedule): the given set itself, or the split's training part, copied once on first use.
    const data::dataset<T>& training_part(const training_rows& t) {
        if (!t.rows) return *t.data;
        if (split_train_.size() != t.rows->size()) {
            split_train_ = t.data->subset(*t.rows);
            split_train_.name = t.data->name + "/train";
        }
        return split_train_;
    }

    // Paper-style RL-AUX epochs: a throw-away pass over this epoch's batches with the generator
    // exploring, then the real pass from the same starting state.  Everything but the
    // generator's own state is restored afterwards.
    void run_exploration_pass(const training_rows& train_set) {
        if constexpr (requires { generator_.wants_exploration_pass(); }) {
            if (!generator_.wants_exploration_pass()) return;
            const auto params = model_.parameters();
            const Optimizer optimizer = optimizer_;
            const rng dropout = dropout_rng_;
            const std::size_t steps_before = step_, passes = backward_passes_;
            const auto permutation = batcher_.permutation();
            generator_.set_exploring(true);
            while (!batcher_.epoch_done()) {
                const auto rows = shard_of(batcher_.next());
                if (!rows.empty()) step(gather(train_set, rows));
            }
            generator_.set_exploring(false);
            model_.parameters() = params;
            optimizer_ = optimizer;
            dropout_rng_ = dropout;
            step_ = steps_before;
            backward_passes_ = passes;
            batcher_.restore(permutation, 0);
        }
    }

    bool check_finite_gradient() const {
        if (all_finite(grad_.data(), grad_.size())) return true;  // the vectorised scan; the loop below names the tensor
        for (std::size_t i = 0; i < grad_.size(); ++i) {
            if (!std::isfinite(grad_[i])) {
                if (skipping()) return false;
                for (const auto& s : model_.layout().segments()) {
                    if (i >= s.offset && i < s.offset + s.size) {
                        raise<numeric_error>("auxl::trainer: step ", step_ + 1, ": the update direction for ", s.name,
                                             " is not finite — training diverged; parameters are unchanged by this step");
                    }
                }
                raise<numeric_error>("auxl::trainer: step ", step_ + 1, ": the update direction is not finite");
            }
        }
        return true;
    }

    void check_dataset(const data::dataset<T>& d, const char* role) const {
        if (d.size() == 0) raise<shape_error>("auxl::trainer: the ", role, " set ", d.name, " is empty");
        if (d.features() != Model::input_size) {
            raise<shape_error>("auxl::trainer: the ", role, " set ", d.name, " has ", d.features(),
                               " values per example, the model expects ", Model::input_size);
        }
        if (d.classes != hierarchy_.fine_classes()) {
            raise<shape_error>("auxl::trainer: the ", role, " set ", d.name, " has ", d.classes,
                               " fine classes, hierarchy ", hierarchy_.name(), " has ", hierarchy_.fine_classes());
        }
    }

    // This process's contiguous part of a global batch (all of it in a single-process run): the
    // first n mod size ranks get one row more, so the shards differ by at most one row.
    std::span<const std::uint32_t> shard_of(std::span<const std::uint32_t> rows) const {
        if constexpr (!Reducer::distributed) {
            return rows;
        } else {
            const std::size_t R = std::size_t(reducer_.size()), r = std::size_t(reducer_.rank());
            if (rows.size() < R) return {};
            const std::size_t base = rows.size() / R, extra = rows.size() % R;
            const std::size_t begin = r * base + std::min(r, extra);
            return rows.subspan(begin, base + (r < extra ? 1 : 0));
        }
    }

    // Data-parallel runs: every rank must hold the same parameters (same seed, same updates).
    void check_replicas_agree(const char* when) {
        if constexpr (Reducer::distributed) {
            const auto& p = model_.parameters();
            if (!reducer_.same_everywhere(io::bytes_hash(p.data(), p.size() * sizeof(T)))) {
                raise<config_error>("auxl::trainer: the processes hold different parameters ", when,
                                    " (different seeds, model types or data on different ranks?)");
            }
        } else {
            (void)when;
        }
    }

    // The batch of training rows `rows` (indices into the training rows t, as the batcher and
    // the generators count them).
    train::batch<T> gather(const training_rows& t, std::span<const std::uint32_t> rows) {
        const std::size_t F = Model::input_size;
        const data::dataset<T>& d = *t.data;
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const std::size_t row = t.rows ? (*t.rows)[rows[r]] : std::size_t(rows[r]);
            std::copy_n(d.inputs.data() + row * F, F, x_.data() + r * F);
            fine_[r] = d.labels[row];
        }
        hierarchy_.map_to_primary(fine_.data(), rows.size(), primary_.data());
        return train::batch<T>{x_.data(), rows.size(), primary_.data(), fine_.data(), rows};
    }

    static constexpr double generator_default_gamma() {
        if constexpr (requires { Generator::default_focal_gamma; }) {
            return Generator::default_focal_gamma;
        } else {
            return 0.0;
        }
    }

    void collect_metrics() {
        std::size_t m = 0;
        for (double v : rule_.metric_values()) metric_values_[m++] = v;
        if constexpr (requires { generator_.metric_values(); }) {
            for (double v : generator_.metric_values()) metric_values_[m++] = v;
        }
    }

    void reset_epoch_accumulators() {
        loss_sums_.assign(task_count, 0.0);
        weight_sums_.assign(auxiliary_count, 0.0);
        metric_sums_.assign(metric_names_.size(), 0.0);
        epoch_steps_ = 0;
        epoch_seconds_ = 0;
    }

    void accumulate(const train::step_report& r) {
        if (r.skipped) return;  // a skipped step's losses are not finite; epoch means leave it out
        for (std::size_t k = 0; k < task_count; ++k) loss_sums_[k] += r.losses[k];
        for (std::size_t k = 0; k < auxiliary_count; ++k) weight_sums_[k] += r.aux_weights[k];
        collect_metrics();
        for (std::size_t m = 0; m < metric_values_.size(); ++m) metric_sums_[m] += metric_values_[m];
        ++epoch_steps_;
    }

    train::epoch_report make_epoch_report(const fit_options& fit) const {
        train::epoch_report r;
        r.epoch = epoch_;
        r.epochs = fit.epochs;
        r.step = step_;
        r.learning_rate = optimizer_.learning_rate();
        const double n = epoch_steps_ ? double(epoch_steps_) : 1.0;
        for (double s : loss_sums_) r.train_loss.push_back(s / n);
        for (double s : weight_sums_) r.aux_weight.push_back(s / n);
        r.metric_names = metric_names_;
        for (double s : metric_sums_) r.metric_values.push_back(s / n);
        r.epoch_seconds = epoch_seconds_;
        return r;
    }

    // Callback dispatch: a hook may take (report) or (report, trainer&) and return void or bool.
    template <class C, class Arg>
    bool invoke_hook(C& c, const Arg& arg, auto hook) {
        if constexpr (requires { hook(c, arg, *this); }) {
            return as_stop(hook, c, arg, *this);
        } else if constexpr (requires { hook(c, arg); }) {
            return as_stop(hook, c, arg);
        } else {
            return false;
        }
    }
    template <class F, class... A>
    static bool as_stop(F& f, A&&... a) {
        if constexpr (std::is_same_v<decltype(f(a...)), bool>) {
            return f(a...);
        } else {
            f(a...);
            return false;
        }
    }
    template <class C>
    void call_fit_begin(C& c, const train::fit_plan& p) {
        invoke_hook(c, p, [](auto& cb, const auto& arg, auto&&... t) -> decltype(cb.on_fit_begin(arg, t...)) {
            return cb.on_fit_begin(arg, t...);
        });
    }
    template <class C>
    bool call_step_end(C& c, const train::step_report& r) {
        return invoke_hook(c, r, [](auto& cb, const auto& arg, auto&&... t) -> decltype(cb.on_step_end(arg, t...)) {
            return cb.on_step_end(arg, t...);
        });
    }
    template <class C>
    bool call_epoch_end(C& c, const train::epoch_report& r) {
        return invoke_hook(c, r, [](auto& cb, const auto& arg, auto&&... t) -> decltype(cb.on_epoch_end(arg, t...)) {
            return cb.on_epoch_end(arg, t...);
        });
    }
    template <class C>
    void call_fit_end(C& c, const train::epoch_report& r) {
        invoke_hook(c, r, [](auto& cb, const auto& arg, auto&&... t) -> decltype(cb.on_fit_end(arg, t...)) {
            return cb.on_fit_end(arg, t...);
        });
    }

    // --- state for checkpoints ----------------------------------------------------------------
    static constexpr const char* training_seconds_section = "counters/training_seconds";

    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("model/parameters", model_.parameters());
        optimizer_.visit_state([&](const std::string& name, auto& value) { visit("optimizer/" + name, value); });
        if constexpr (requires { generator_.visit_state(visit); }) {
            generator_.visit_state([&](const std::string& name, auto& value) { visit("generator/" + name, value); });
        }
        if constexpr (requires { rule_.visit_state(visit); }) {
            rule_.visit_state([&](const std::string& name, auto& value) { visit("rule/" + name, value); });
        }
        snapshot_rngs();
        for (std::size_t i = 0; i < rng_words_.size(); ++i) visit("rng/" + std::to_string(i), rng_words_[i]);
        visit("counters/step", step_);
        visit("counters/epoch", epoch_);
        visit("counters/backward_passes", backward_passes_);
        visit("schedule/base_lr", base_lr_);
        permutation_ = batcher_.permutation();
        cursor_ = batcher_.cursor();
        batcher_rows_ = batcher_.rows();
        visit("batcher/rows", batcher_rows_);
        visit("batcher/permutation", permutation_);
        visit("batcher/cursor", cursor_);
        visit("epoch/loss_sums", loss_sums_);
        visit("epoch/weight_sums", weight_sums_);
        visit("epoch/metric_sums", metric_sums_);
        visit("epoch/steps", epoch_steps_);
    }

    template <class V>
    static void check_section(const io::checkpoint_reader& reader, const std::string& name, const V& value) {
        if (!reader.has(name)) raise<io_error>("auxl: checkpoint is missing section ", name);
        const std::size_t found = reader.section_size(name);
        std::size_t expected = found;
        if constexpr (std::is_arithmetic_v<V>) {
            expected = sizeof(V);
        } else if constexpr (requires { value.data(); value.size(); typename V::value_type; }) {
            using E = typename V::value_type;
            if constexpr (std::is_same_v<V, arena<E>>) {
                if (value.size() > 0) expected = value.size() * sizeof(E);
            }
            if (found % sizeof(E) != 0) expected = found - found % sizeof(E);
        }
        if (found != expected) {
            raise<io_error>("auxl: checkpoint section ", name, ": expected ", expected, " bytes, found ", found);
        }
    }

    rng* stream(std::size_t i) {
        rng* streams[] = {&init_rng_, &order_rng_, &dropout_rng_};
        return streams[i];
    }
    void snapshot_rngs() {
        for (std::size_t i = 0; i < rng_words_.size(); ++i) rng_words_[i] = rng_state_words(*stream(i));
    }
    void restore_rng(std::size_t i) {
        if (rng_words_[i].size() != 6) raise<io_error>("auxl: checkpoint rng stream ", i, " has ", rng_words_[i].size(), " words, expected 6");
        restore_rng_words(*stream(i), rng_words_[i]);
    }

    Reducer reducer_;
    trainer_options options_;
    data::hierarchy hierarchy_;
    Model model_;
    Generator generator_;
    Weighting rule_;
    Optimizer optimizer_;
    loss::softmax_cross_entropy<T> loss_;
    rng init_rng_, order_rng_, dropout_rng_;
    double base_lr_ = 0;

    train::parameter_ranges ranges_;
    arena<T> grad_;
    arena<T> rows_;  // (K+1) x P, only for rules with per-task gradients (sized at first use)
    bool weighted_backward_ = false;  // this step's direction came from model_.backward_weighted (no rows)
    std::vector<T> module_coefficients_;  // task x trunk module, from a module-wise rule
    std::array<std::vector<T>, task_count> lookahead_upstream_;  // lookahead_gradient() without rows
    std::array<std::vector<T>, task_count> dlogits_;
    std::array<train::auxiliary_targets<T>, auxiliary_count> targets_;
    std::vector<T> x_;
    std::vector<std::int32_t> primary_, fine_, eval_labels_;
    std::array<double, task_count> losses_{};
    std::array<double, auxiliary_count + 1> aux_weights_{};

    data::batcher batcher_;
    std::size_t step_ = 0, epoch_ = 0, backward_passes_ = 0, skipped_steps_ = 0;
    std::vector<double> loss_sums_, weight_sums_, metric_sums_;
    std::size_t epoch_steps_ = 0;
    double epoch_seconds_ = 0;
    double training_seconds_ = 0;
    train::epoch_report last_report_;
    std::vector<std::string> metric_names_;
    std::vector<double> metric_values_;
    arena<T> lookahead_;
    bool lookahead_ready_ = false;
    std::unique_ptr<Model> scratch_;
    train::batch<T> last_batch_;
    const data::dataset<T>* dev_ = nullptr;
    std::vector<std::size_t> split_train_rows_;  // the dev split's training part, as rows of the given set
    data::dataset<T> split_train_, split_dev_;     // split_train_: only if a generator's per-epoch pass asks
    const data::dataset<T>* split_source_ = nullptr;
    std::size_t split_size_ = 0;

    // Staging for checkpoint (de)serialisation.
    std::array<std::vector<std::uint64_t>, 3> rng_words_;
    std::vector<std::uint32_t> permutation_;
    std::size_t cursor_ = 0, batcher_rows_ = 0;
};

}  // namespace auxl
