// auxl/gen/dtg.hpp — DTG-style joint data-task generation (after Chen et al., NeurIPS 2023;
// ALGORITHMS.md §5 and §8.6).  "DTG-style" because the paper's text is only partly known:
//
// Follows the paper (confirmed): a joint generator = feature generator + label generator; the
// lower level trains the task model on the primary loss plus the auxiliary loss on generated
// data and task (and any manually collected auxiliary task); the upper level updates the
// generator with the implicit (IFT) gradient of the primary loss plus the explicit gradient of
// an instance regulariser; the two levels alternate with mini-batch updates.
//
// Ours (the spec's proposal, where the paper is unreadable):
//   feature generator  x̃ = x + G_f([x; e_y]; φ_f)  — residual, on the example x (detached) and a
//                      one-hot of its primary class; the last layer starts at zero, so x̃ = x at
//                      first.  It works in the model's *input* space: the spec's trunk-feature
//                      space would need a split trunk for the generated task to reach any
//                      shared parameter (a head on trunk features trains only that head), while
//                      inputs are already "features" for tabular data and train the whole trunk.
//   label generator    ỹ = blocksoftmax_y(G_l(x̃; φ_l))  — soft labels in the block of y (MAXL).
//   lower level        L_T = L_pri(x) + Σ_m ω_m L_manual,m(x) + λ L_gen(x̃, ỹ)  (λ = the rule's
//                      weight, 1 for weight::equal); the generated head runs a second forward.
//   manual tasks       any generator (human labels, gen::random_labels, …) whose auxiliary
//                      heads come first; weight ω_m = ReLU(ω) starts at 1 (the paper's "Equal"
//                      start) and is learned by the same hypergradient (learn_manual_weights),
//                      so an unhelpful manual task can be turned down.
//   upper level        every `upper_every` steps (1 = strict alternation, the appendix's wording),
//                      after the lower step, on that step's batch:
//                        v = ∇_θ L_pri(dev batch);  s = Σ_{j≤3} (I − αH)^j v,  H = ∇²_θ L_T + wd
//                        (exact HVPs by default, `hvp`);  α = the optimizer's learning rate
//                        ∇_φ = −α ∇_φ⟨s, ∇_θ L_gen⟩ + ∇_φ R,  ∇_ω = −α ⟨s, ∇_θ L_manual⟩
//                      The mixed product is the derivative along s of the generator upstream
//                      (∂L_gen/∂x̃ from the network's input gradient, ∂L_gen/∂ỹ = the loss's
//                      target coefficients): exact (the input gradient's tangent from
//                      backward_tangent, the coefficients' from the output tangent) or a central
//                      difference at θ ± εs (§8.6); then one backward through G_l and G_f.  R = λ_f mean‖x̃ − x‖²/F + λ_l Σ_a ȳ_a log ȳ_a (stay near the source
//                      example; spread the batch's labels) — the paper's formula is unknown.
//                      Clipped to `clip` (joint norm), then Adam on φ and ω, at constant rates
//                      or (follow_network_schedule) annealed by the network's schedule.
//
// Cost per step: the generated head's extra forward and backward, the generators' forward; per
// upper step: the dev gradient (a forward and backward), one forward and backward at θ on the
// batch and on the generated batch, shared by every second-order product, then per product (3
// HVPs and the mixed product) a tangent pass and a backward tangent on each, and one generator
// backward.  (Sharing the passes made the step 17-19 % faster with numbers bitwise unchanged,
// docs/bench/dtg_prepared_products_spr_2026-12-06.log; central differences instead redo a
// forward and backward at θ ± εu for every product.)
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/data/hierarchy.hpp"
#include "auxl/gen/none.hpp"
#include "auxl/loss/batch_entropy.hpp"
#include "auxl/loss/block_layout.hpp"
#include "auxl/loss/block_softmax.hpp"
#include "auxl/meta/dev_gradient.hpp"
#include "auxl/meta/hvp.hpp"
#include "auxl/meta/implicit.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/init.hpp"
#include "auxl/nn/network.hpp"
#include "auxl/nn/relu.hpp"
#include "auxl/nn/sequential.hpp"
#include "auxl/optim/adam.hpp"
#include "auxl/train/concepts.hpp"
#include "auxl/train/types.hpp"

namespace auxl::gen {

struct dtg_options {
    std::size_t psi_per_class = 5;        ///< generated labels per primary class (when psi is empty)
    std::vector<std::size_t> psi;
    std::size_t upper_every = 1;          ///< lower steps per upper step
    std::size_t neumann_terms = 3;
    std::optional<double> neumann_alpha;  ///< default: the optimizer's current learning rate
    double clip = 10.0;                   ///< joint norm of the upper gradient (φ and ω)
    double generator_lr = 1e-3;           ///< Adam on φ_f, φ_l
    double manual_weight_lr = 1e-3;       ///< Adam on ω
    /// Scale both rates by the network's schedule (its current rate over its initial rate), so the
    /// generators settle as the network's rate anneals.  Off by default: the reference code keeps
    /// the rates constant.  Why it exists: with a constant rate the feature generator can still
    /// drift late in a cosine schedule, when the network no longer adapts to what it generates
    /// (docs/STUDY.md, "The CNN at 1,000 and 300 examples, and DTG's generator schedule": the A/B
    /// of this option).
    bool follow_network_schedule = false;
    bool learn_manual_weights = true;     ///< false: manual tasks keep weight 1 (Equal)
    double distance_weight = 1.0;         ///< λ_f of mean ‖x̃ − x‖² / F
    double entropy_weight = 0.2;          ///< λ_l of the batch-entropy regulariser (MAXL's 0.2)
    std::size_t dev_batch = 256;          ///< dev rows per upper step (fewer if the dev set is smaller)
    /// How the upper step's second-order products are formed (meta/hvp.hpp): the Neumann
    /// series' Hessian-vector products and the mixed product.  automatic: exact (forward-over-
    /// reverse through the model's backward_tangent, what PyTorch's double backward computes) when
    /// every layer of the model has it, else central differences.  Central differences miss the
    /// feature generator's mixed product badly on ReLU networks (README, DTG): the model's input
    /// gradient jumps wherever a unit changes sign between θ − εs and θ + εs.
    meta::hvp_method hvp = meta::hvp_method::automatic;
    /// Norm of the perturbation of θ in the central differences (hvp = central_difference, or
    /// automatic on a model without backward_tangent).  0.01 follows ALGORITHMS.md §8.0.
    double hvp_step = 0.01;
    nn::init_scheme init = nn::init_scheme::pytorch_default;
};

/// FeatureGen: an nn::sequential from F + C inputs (example and one-hot primary class) to F;
/// LabelGen: from F to A = Σψ; Manual: a generator of the manually collected auxiliary tasks
/// (gen::none for none), whose heads come first; the generated task uses the head after them
/// (head manual_tasks + 1; further heads of the model, if any, stay unused).
template <class FeatureGen, class LabelGen, class Manual = none, class Scalar = float>
class dtg {
public:
    using T = Scalar;
    using feature_network = nn::basic_network<T, FeatureGen>;
    using label_network = nn::basic_network<T, LabelGen>;
    static constexpr std::size_t manual_tasks = Manual::auxiliary_tasks;
    static constexpr std::size_t auxiliary_tasks = manual_tasks + 1;
    /// Data-parallel: HVPs, the generators' and ω's upper gradients and the entropy term's mean
    /// label are averaged through trainer.reducer(); the dev gradient is the same rows everywhere.
    static constexpr bool distributed_ready = true;
    static constexpr std::size_t generated_head = auxiliary_tasks;  ///< model head of the generated task
    static constexpr bool needs_dev_set = true;
    static constexpr std::size_t F = label_network::input_size;
    static_assert(feature_network::output_size == F,
                  "auxl::gen::dtg: the feature generator must output as many values as the label generator takes");

    const char* name() const { return "dtg"; }

    dtg() : dtg(dtg_options{}) {}
    explicit dtg(dtg_options options, Manual manual = Manual{}) : options_(std::move(options)), manual_(std::move(manual)) {
        if (options_.upper_every == 0) raise<config_error>("auxl::gen::dtg: upper_every must be positive");
        if (!(options_.hvp_step > 0)) raise<config_error>("auxl::gen::dtg: hvp_step must be positive");
        if (!(options_.generator_lr > 0) || !(options_.manual_weight_lr > 0)) {
            raise<config_error>("auxl::gen::dtg: learning rates must be positive");
        }
        if (options_.distance_weight < 0 || options_.entropy_weight < 0) {
            raise<config_error>("auxl::gen::dtg: regulariser weights must be >= 0");
        }
    }

    void prepare(const train::generator_setup& setup) {
        if (!setup.hierarchy) raise<config_error>("auxl::gen::dtg: no hierarchy given");
        hierarchy_ = setup.hierarchy;
        const std::size_t C = hierarchy_->primary_classes();
        blocks_ = options_.psi.empty() ? loss::block_layout::uniform(C, options_.psi_per_class) : loss::block_layout(options_.psi);
        A_ = blocks_.auxiliary_classes();
        if (blocks_.primary_classes() != C) {
            raise<config_error>("auxl::gen::dtg: psi has ", blocks_.primary_classes(), " blocks, the hierarchy ", C, " primary classes");
        }
        if (setup.head_widths.size() < auxiliary_tasks + 1) {
            raise<config_error>("auxl::gen::dtg: the model has ", setup.head_widths.size(), " heads; expected at least ",
                                auxiliary_tasks + 1, " (primary, ", manual_tasks, " manual, 1 generated)");
        }
        if (setup.head_widths[generated_head] != A_ || label_network::output_size != A_) {
            raise<config_error>("auxl::gen::dtg: psi gives ", A_, " generated labels; the generated head has ",
                                setup.head_widths[generated_head], " outputs and the label generator ", label_network::output_size);
        }
        if (setup.input_size != F || feature_network::input_size != F + C) {
            raise<config_error>("auxl::gen::dtg: the model takes ", setup.input_size, " inputs; the label generator takes ", F,
                                " and the feature generator ", feature_network::input_size, " (expected ", setup.input_size, " + ", C,
                                " primary classes)");
        }
        if constexpr (manual_tasks > 0) manual_.prepare(setup);
        const std::size_t B = setup.max_batch;
        features_.reserve(B);
        labels_.reserve(B);
        rng init(setup.seed, "dtg-init");
        features_.init(init, options_.init);
        labels_.init(init, options_.init);
        // x̃ = x at the start: the feature generator's last layer is zero.
        const auto& last = features_.layout().modules().back();
        std::fill_n(features_.parameters().data() + last.offset, last.extent, T(0));
        feature_grad_ = features_.make_arena();
        label_grad_ = labels_.make_arena();
        feature_opt_ = optim::adam<T>({.learning_rate = options_.generator_lr});
        label_opt_ = optim::adam<T>({.learning_rate = options_.generator_lr});
        omega_opt_ = optim::adam<T>({.learning_rate = options_.manual_weight_lr});
        omega_ = arena<T>(manual_tasks);
        for (auto& w : omega_) w = T(1);
        omega_grad_ = arena<T>(manual_tasks);
        gin_.assign(B * (F + C), T(0));
        x_tilde_.assign(B * F, T(0));
        y_tilde_.assign(B * A_, T(0));
        mean_.assign(A_, T(0));
        metric_names_ = {"dtg_distance", "dtg_label_entropy", "dtg_batch_entropy", "dtg_upper_norm"};
        for (std::size_t m = 0; m < manual_tasks; ++m) metric_names_.push_back("dtg_manual_weight" + std::to_string(m + 1));
        for (std::size_t a = 0; a < A_; ++a) metric_names_.push_back("dtg_label_share" + std::to_string(a));
        metric_values_.assign(metric_names_.size(), 0.0);
    }

    // ---- lower level -------------------------------------------------------------------------

    template <class U>
    void generate(const train::batch<U>& b, std::span<train::auxiliary_targets<U>> targets) {
        static_assert(std::is_same_v<U, T>, "auxl::gen::dtg: the generators' scalar type must be the model's");
        const std::size_t B = b.size, C = hierarchy_->primary_classes();
        if constexpr (manual_tasks > 0) {
            manual_.generate(b, targets.first(manual_tasks));
            for (std::size_t m = 0; m < manual_tasks; ++m) {
                if (omega_[m] == T(1) && !options_.learn_manual_weights) continue;
                auto& w = targets[m].weights;
                if (w.empty()) w.assign(B, T(1));
                for (auto& wi : w) wi *= manual_weight(m);
            }
        }
        // x̃ = x + G_f([x; e_y]).
        for (std::size_t i = 0; i < B; ++i) {
            T* row = gin_.data() + i * (F + C);
            std::copy_n(b.inputs + i * F, F, row);
            std::fill_n(row + F, C, T(0));
            row[F + std::size_t(b.primary[i])] = T(1);
        }
        const T* delta = features_.forward(gin_.data(), B);
        for (std::size_t i = 0; i < B * F; ++i) x_tilde_[i] = b.inputs[i] + delta[i];
        // ỹ = blocksoftmax_y(G_l(x̃)).
        loss::block_softmax<T>::forward(labels_.forward(x_tilde_.data(), B), B, blocks_, b.primary, y_tilde_.data());
        auto& t = targets[manual_tasks];
        t.type = train::auxiliary_targets<T>::kind::soft;
        std::copy_n(y_tilde_.data(), B * A_, t.soft.data());
        t.inputs.assign(x_tilde_.begin(), x_tilde_.begin() + std::ptrdiff_t(B * F));
        batch_size_ = B;
        record_metrics(b);
    }

    /// Upper level every `upper_every` steps, after the lower step (alternation).
    template <class Trainer>
    void after_update(Trainer& trainer, const train::batch<T>& b) {
        if (++steps_ % options_.upper_every != 0) return;
        upper_step(trainer, b);
    }

    // ---- upper level -------------------------------------------------------------------------

    /// One upper step on batch b (the batch of the trainer's last step; generate() ran on it).
    template <class Trainer>
    void upper_step(Trainer& trainer, const train::batch<T>& b) {
        compute_upper_gradient(trainer, b);
        if (options_.follow_network_schedule) follow_schedule(trainer);
        feature_opt_.step(features_.parameters(), feature_grad_);
        label_opt_.step(labels_.parameters(), label_grad_);
        if (manual_tasks > 0 && options_.learn_manual_weights) omega_opt_.step(omega_, omega_grad_);
    }

    /// The upper gradient (into feature_gradient(), label_gradient(), manual_weight_gradient()),
    /// clipped, without changing φ or ω.
    template <class Trainer>
    void compute_upper_gradient(Trainer& trainer, const train::batch<T>& b) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        static_assert(Model::task_count >= auxiliary_tasks + 1, "auxl::gen::dtg: the model needs a head per manual task plus one");
        const std::size_t P = Model::parameter_count, B = b.size;
        if (B != batch_size_) raise<error>("auxl::gen::dtg: upper step on a batch generate() did not see");
        const double alpha = options_.neumann_alpha ? *options_.neumann_alpha : trainer.optimizer().learning_rate();
        double wd = 0;
        if constexpr (requires { trainer.optimizer().hyper_parameters().weight_decay; }) {
            wd = trainer.optimizer().hyper_parameters().weight_decay;
        }
        for (auto* a : {&v_, &s_, &spare_})
            a->ensure_size(P);
        neumann_work_.ensure_size(2 * P);

        dev_cursor_ = meta::dev_primary_gradient(trainer, options_.dev_batch, dev_cursor_, v_, dev_buffers_, "auxl::gen::dtg");
        auto& reducer = trainer.reducer();
        const bool exact = meta::use_exact_products<Model>(options_.hvp, "auxl::gen::dtg");
        // Exact products: the forward and backward at θ (on b and on the generated batch) are the
        // same for every HVP and the mixed product; they run once here, each product then costs a
        // tangent and a backward tangent.
        if (exact) prepare_exact_products(trainer, b);
        auto apply_H = [&](std::span<const T> u, std::span<T> out) {
            if (exact) {
                apply_lower_hessian(trainer, u, out);
            } else {
                meta::hessian_vector(model.parameters(), u, [&](T* g) { lower_gradient(trainer, b, g); }, out, saved_, spare_,
                                     options_.hvp_step);
            }
            for (std::size_t i = 0; i < P; ++i) out[i] += T(wd) * u[i];
            reducer.average(out);  // data-parallel: the HVP of the global batch's lower loss
        };
        // The implicit term and the regulariser both act on φ through x̃ and ỹ: their upstream
        // gradients are summed first, so the generators run one backward per upper step.
        auto add_mixed = [&](std::span<const T> s, double scale) {
            if (exact) apply_exact_mixed_upstream(trainer, b, s, scale);
            else add_mixed_upstream(trainer, b, s, scale);
        };
        zero_upper_gradients();
        clear_upstream(b.size);
        meta::implicit_hypergradient(std::span<const T>(v_.data(), P), apply_H, add_mixed, alpha, options_.neumann_terms,
                                     std::span<T>(s_.data(), P), neumann_work_.span());
        if constexpr (std::remove_reference_t<decltype(reducer)>::distributed) {
            // The entropy term is of the global batch's mean generated label.
            loss::batch_entropy<T>::value(y_tilde_.data(), B, A_, mean_.data());
            reducer.average(std::span<T>(mean_.data(), A_));
            add_regulariser_upstream(b, true);
        } else {
            add_regulariser_upstream(b);
        }
        backward_generators(b);
        // Data-parallel: each rank's part of ∇_φ, ∇_ω comes from its shard (its means over its
        // rows); weighted by the shares they add up to the global batch's.
        reducer.average(std::span<T>(feature_grad_.data(), feature_grad_.size()));
        reducer.average(std::span<T>(label_grad_.data(), label_grad_.size()));
        reducer.average(std::span<T>(omega_grad_.data(), omega_grad_.size()));
        if (!options_.learn_manual_weights) omega_grad_.zero();
        // Joint clip over φ_f, φ_l and ω.
        double sq = 0;
        for (auto* g : {&feature_grad_, &label_grad_, &omega_grad_})
            for (T x : *g) sq += double(x) * double(x);
        const double n = std::sqrt(sq);
        metric_values_[3] = n;
        if (!std::isfinite(n)) raise<numeric_error>("auxl::gen::dtg: the upper gradient is not finite (", n, ")");
        if (options_.clip > 0 && n > options_.clip) {
            const T k = T(options_.clip / n);
            for (auto* g : {&feature_grad_, &label_grad_, &omega_grad_})
                for (auto& x : *g) x *= k;
        }
    }

    /// Sets the generators' and ω's Adam rates to their option values times the network's
    /// annealing factor (current rate / initial rate).
    template <class Trainer>
    void follow_schedule(Trainer& trainer) {
        const double base = trainer.base_learning_rate();
        const double factor = base > 0 ? trainer.optimizer().learning_rate() / base : 1.0;
        if (!std::isfinite(factor) || factor < 0) {
            raise<numeric_error>("auxl::gen::dtg: the network's learning-rate factor is ", factor, " (rate ",
                                 trainer.optimizer().learning_rate(), ", initial ", base, ")");
        }
        feature_opt_.set_learning_rate(options_.generator_lr * factor);
        label_opt_.set_learning_rate(options_.generator_lr * factor);
        omega_opt_.set_learning_rate(options_.manual_weight_lr * factor);
    }

    // ---- inspection --------------------------------------------------------------------------

    /// The generators' current Adam rate (generator_lr, times the schedule's factor when
    /// follow_network_schedule is on).
    double generator_learning_rate() const { return feature_opt_.learning_rate(); }

    feature_network& feature_generator() { return features_; }
    label_network& label_generator() { return labels_; }
    const loss::block_layout& blocks() const { return blocks_; }
    const dtg_options& options() const { return options_; }
    Manual& manual() { return manual_; }
    /// Generated examples and soft labels of the last batch (batch x F, batch x A).
    std::span<const T> generated_inputs() const { return std::span<const T>(x_tilde_.data(), batch_size_ * F); }
    std::span<const T> generated_labels() const { return std::span<const T>(y_tilde_.data(), batch_size_ * A_); }
    /// Weight ReLU(ω_m) of manual task m.
    T manual_weight(std::size_t m) const { return std::max(omega_[m], T(0)); }
    void set_manual_weight(std::size_t m, T w) { omega_[m] = w; }
    const arena<T>& feature_gradient() const { return feature_grad_; }
    const arena<T>& label_gradient() const { return label_grad_; }
    const arena<T>& manual_weight_gradient() const { return omega_grad_; }
    /// The instance regulariser R of the last batch (distance term, entropy term, weighted sum).
    double regulariser() const { return regulariser_; }

    std::span<const std::string> metric_names() const { return metric_names_; }
    std::span<const double> metric_values() const { return metric_values_; }

    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("feature_generator", features_.parameters());
        visit("label_generator", labels_.parameters());
        visit("manual_weights", omega_);
        feature_opt_.visit_state([&](const std::string& n, auto& value) { visit("feature_optimizer/" + n, value); });
        label_opt_.visit_state([&](const std::string& n, auto& value) { visit("label_optimizer/" + n, value); });
        omega_opt_.visit_state([&](const std::string& n, auto& value) { visit("manual_weight_optimizer/" + n, value); });
        visit("steps", steps_);
        visit("dev_cursor", dev_cursor_);
    }

    // ---- the pieces, public for tests --------------------------------------------------------

    /// Zeroes the upper gradients of φ_f, φ_l and ω (the pieces below add into them).
    void zero_upper_gradients() {
        feature_grad_.zero();
        label_grad_.zero();
        omega_grad_.zero();
    }

    /// g = ∇_θ L_T(θ, φ) on batch b at the model's current parameters (the step's dropout masks).
    template <class Trainer>
    void lower_gradient(Trainer& trainer, const train::batch<T>& b, T* g) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        const std::size_t P = Model::parameter_count, B = b.size;
        std::fill_n(g, P, T(0));
        const auto& ce = trainer.loss();
        const auto targets = trainer.current_targets();
        std::array<const T*, Model::task_count> up{};
        model.forward(b.inputs, B, trainer.reuse_masks());
        resize_upstream<Model>(B);
        ce.value_and_gradient(model.output(0), B, Model::head_widths[0], loss::hard_targets{b.primary}, nullptr, dy_[0].data());
        up[0] = dy_[0].data();
        for (std::size_t m = 0; m < manual_tasks; ++m) {
            const auto& t = targets[m];
            if (t.type == train::auxiliary_targets<T>::kind::none) continue;
            manual_loss_gradient(ce, model, t, m + 1, B, T(trainer.lookahead_aux_weight(m)), dy_[m + 1].data());
            up[m + 1] = dy_[m + 1].data();
        }
        model.backward(up, std::span<T>(g, P));
        model.forward(x_tilde_.data(), B, trainer.reuse_masks());
        ce.value_and_gradient(model.output(generated_head), B, A_, loss::soft_targets<T>{y_tilde_.data()}, nullptr,
                              dy_[generated_head].data(), T(trainer.lookahead_aux_weight(manual_tasks)));
        model.backward_head(generated_head, dy_[generated_head].data(), std::span<T>(g, P));
    }

    /// out = ∇²_θ L_T(θ, φ) u on batch b, exactly (forward-over-reverse; no weight decay term).
    /// Needs a model whose layers all have backward_tangent.
    template <class Trainer>
    void lower_hessian_vector(Trainer& trainer, const train::batch<T>& b, std::span<const T> u, std::span<T> out) {
        prepare_exact_products(trainer, b);
        apply_lower_hessian(trainer, u, out);
    }

    /// Adds scale · ∇_{φ,ω} ⟨s, ∇_θ L_T(θ, φ, ω)⟩ to the upper gradients: the derivative along s of
    /// the generator upstream (and of the manual losses), exact or by central differences at
    /// θ ± εs, ε = hvp_step/‖s‖ (`hvp`), then one backward through the label and feature generators.
    template <class Trainer>
    void mixed_product(Trainer& trainer, const train::batch<T>& b, std::span<const T> s, double scale) {
        clear_upstream(b.size);
        if (meta::use_exact_products<std::remove_reference_t<decltype(trainer.model())>>(options_.hvp, "auxl::gen::dtg")) {
            prepare_exact_products(trainer, b);
            apply_exact_mixed_upstream(trainer, b, s, scale);
        } else {
            add_mixed_upstream(trainer, b, s, scale);
        }
        backward_generators(b);
    }

    /// Adds ∇_φ R to the upper gradients and sets regulariser() to R, for the batch generate()
    /// last saw: R = λ_f mean_i ‖x̃_i − x_i‖²/F + λ_l Σ_a ȳ_a log ȳ_a.
    void add_regulariser_gradient(const train::batch<T>& b) {
        clear_upstream(b.size);
        add_regulariser_upstream(b);
        backward_generators(b);
    }

private:
    void clear_upstream(std::size_t B) {
        d_xt_.assign(B * F, T(0));
        d_yt_.assign(B * A_, T(0));
    }

    // The mixed product's upstream on x̃ and ỹ (into d_xt_, d_yt_) and its ω part.
    template <class Trainer>
    void add_mixed_upstream(Trainer& trainer, const train::batch<T>& b, std::span<const T> s, double scale) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        const std::size_t P = Model::parameter_count, B = b.size;
        const double ns = meta::norm(s);
        if (ns == 0) return;
        const T eps = T(options_.hvp_step / ns);
        probe_.ensure_size(P);
        saved_ = model.parameters();
        resize_upstream<Model>(B);
        const T lambda = T(trainer.lookahead_aux_weight(manual_tasks));
        auto& dx = dx_;
        auto& c = c_;
        std::array<std::array<double, manual_tasks + 1>, 2> manual_loss{};
        const auto& ce = trainer.loss();
        for (int side = 0; side < 2; ++side) {
            const T sign = side == 0 ? T(1) : T(-1);
            for (std::size_t i = 0; i < P; ++i) model.parameters()[i] = saved_[i] + sign * eps * s[i];
            if constexpr (manual_tasks > 0) {
                model.forward(b.inputs, B, trainer.reuse_masks());
                const auto targets = trainer.current_targets();
                for (std::size_t m = 0; m < manual_tasks; ++m) {
                    manual_loss[side][m] = manual_loss_gradient(ce, model, targets[m], m + 1, B, T(1), dy_[m + 1].data(), true);
                }
            }
            model.forward(x_tilde_.data(), B, trainer.reuse_masks());
            ce.value_and_gradient(model.output(generated_head), B, A_, loss::soft_targets<T>{y_tilde_.data()}, nullptr,
                                  dy_[generated_head].data(), lambda);
            dx[side].assign(B * F, T(0));
            probe_.zero();
            model.backward_head(generated_head, dy_[generated_head].data(), probe_, dx[side].data());
            c[side].assign(B * A_, T(0));
            ce.target_coefficients(model.output(generated_head), B, A_, c[side].data());
            for (auto& x : c[side]) x *= lambda;
        }
        model.parameters() = saved_;
        const T k = T(scale) / (T(2) * eps);
        for (std::size_t i = 0; i < B * F; ++i) d_xt_[i] += k * (dx[0][i] - dx[1][i]);
        for (std::size_t i = 0; i < B * A_; ++i) d_yt_[i] += k * (c[0][i] - c[1][i]);
        for (std::size_t m = 0; m < manual_tasks; ++m) {
            if (omega_[m] > T(0)) omega_grad_[m] += T(scale * (manual_loss[0][m] - manual_loss[1][m]) / (2.0 * double(eps)));
        }
    }

    // ---- exact second-order products (forward-over-reverse) --------------------------------
    // prepare_exact_products runs, at the model's current θ, the passes every product shares: the
    // forward on b and the backward of the primary and manual losses there (the model keeps their
    // activations and per-layer gradients), and on the trainer's scratch model (θ copied, the
    // step's dropout masks replayed) the forward on x̃ and the backward of λ L_gen, input gradient
    // included.  Each product along a direction u then runs a tangent pass and a backward tangent
    // on each model: H u = ∇²_θ L_T u, or the mixed product's upstream along s.  Nothing may run
    // either model between the preparation and the products.

    template <class Trainer>
    void prepare_exact_products(Trainer& trainer, const train::batch<T>& b) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        if constexpr (Model::has_backward_tangent) {
            const std::size_t B = b.size;
            const auto& ce = trainer.loss();
            const auto targets = trainer.current_targets();
            resize_upstream<Model>(B);
            exact_primary_ = b.primary;
            exact_manual_.fill(false);
            model.forward(b.inputs, B, trainer.reuse_masks());
            ce.value_and_gradient(model.output(0), B, Model::head_widths[0], loss::hard_targets{b.primary}, nullptr, dy_[0].data());
            for (std::size_t m = 0; m < manual_tasks; ++m) {
                if (targets[m].type == train::auxiliary_targets<T>::kind::none) continue;
                manual_loss_gradient(ce, model, targets[m], m + 1, B, T(trainer.lookahead_aux_weight(m)), dy_[m + 1].data());
                exact_manual_[m] = true;
            }
            model.backward_input(primary_and_manual_upstream<Model>(dy_));
            // The generated task on x̃, on the scratch model so the activations on b stay.
            Model& gen = trainer.scratch_model();
            gen.parameters() = model.parameters();
            gen.copy_masks_from(model);
            gen.forward(x_tilde_.data(), B, trainer.reuse_masks());
            ce.value_and_gradient(gen.output(generated_head), B, A_, loss::soft_targets<T>{y_tilde_.data()}, nullptr,
                                  dy_[generated_head].data(), T(trainer.lookahead_aux_weight(manual_tasks)));
            std::array<const T*, Model::task_count> gen_up{};
            gen_up[generated_head] = dy_[generated_head].data();
            dx_[0].assign(B * F, T(0));
            gen.backward_input(gen_up, dx_[0].data());  // the input gradient the mixed product differentiates
            exact_batch_ = B;
        } else {
            raise<config_error>("auxl::gen::dtg: exact second-order products need backward_tangent in every layer of the model");
        }
    }

    // H u into out (prepared by prepare_exact_products).
    template <class Trainer>
    void apply_lower_hessian(Trainer& trainer, std::span<const T> u, std::span<T> out) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        if constexpr (Model::has_backward_tangent) {
            const std::size_t B = exact_batch_;
            std::fill(out.begin(), out.end(), T(0));
            set_tangent_direction<Model>(u);
            const auto& ce = trainer.loss();
            const auto targets = trainer.current_targets();
            // The primary and manual losses on b.
            model.tangent(&tangent_direction_);
            ce.gradient_tangent(model.output(0), model.output_tangent(0), B, Model::head_widths[0],
                                loss::hard_targets{exact_primary_}, nullptr, dy_dot_[0].data());
            for (std::size_t m = 0; m < manual_tasks; ++m) {
                if (exact_manual_[m])
                    manual_gradient_tangent(ce, model, targets[m], m + 1, B, T(trainer.lookahead_aux_weight(m)), dy_dot_[m + 1].data());
            }
            model.backward_tangent(primary_and_manual_upstream<Model>(dy_), primary_and_manual_upstream<Model>(dy_dot_), out);
            // The generated task on x̃.
            Model& gen = generated_tangent(trainer);
            gen.backward_tangent_head(generated_head, dy_[generated_head].data(), dy_dot_[generated_head].data(), out);
        }
    }

    // The exact mixed product's upstream (prepared by prepare_exact_products): with θ moving along
    // s (x̃, ỹ fixed), the tangent of ∂(λ L_gen)/∂x̃ (backward_tangent's input-gradient tangent), of
    // the target coefficients λ c(θ) (their tangent along the output tangent) and of each manual
    // loss (its JVP).
    template <class Trainer>
    void apply_exact_mixed_upstream(Trainer& trainer, const train::batch<T>& b, std::span<const T> s, double scale) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        if constexpr (Model::has_backward_tangent) {
            const std::size_t B = exact_batch_;
            if (meta::norm(s) == 0) return;
            set_tangent_direction<Model>(s);
            const auto& ce = trainer.loss();
            const T lambda = T(trainer.lookahead_aux_weight(manual_tasks));
            if constexpr (manual_tasks > 0) {
                model.tangent(&tangent_direction_);
                const auto targets = trainer.current_targets();
                for (std::size_t m = 0; m < manual_tasks; ++m) {
                    if (!(omega_[m] > T(0))) continue;
                    const double d = manual_loss_tangent(ce, model, targets[m], m + 1, b.size);
                    omega_grad_[m] += T(scale * d);
                }
            }
            Model& gen = generated_tangent(trainer);
            auto& dx_dot = dx_[1];
            dx_dot.assign(B * F, T(0));
            gen.backward_tangent_head(generated_head, dy_[generated_head].data(), dy_dot_[generated_head].data(), std::span<T>(),
                                      dx_dot.data());
            auto& c_dot = c_[0];
            c_dot.assign(B * A_, T(0));
            ce.target_coefficients_tangent(gen.output(generated_head), gen.output_tangent(generated_head), B, A_, c_dot.data());
            const T k = T(scale);
            for (std::size_t i = 0; i < B * F; ++i) d_xt_[i] += k * dx_dot[i];
            for (std::size_t i = 0; i < B * A_; ++i) d_yt_[i] += k * lambda * c_dot[i];
        }
    }

    // The model's per-head upstream for the primary head and the manual heads that have targets
    // (from `from`: dy_ or dy_dot_); the generated head's and any further heads' null.
    template <class Model>
    std::array<const T*, Model::task_count> primary_and_manual_upstream(const std::array<std::vector<T>, auxiliary_tasks + 1>& from) const {
        std::array<const T*, Model::task_count> up{};
        up[0] = from[0].data();
        for (std::size_t m = 0; m < manual_tasks; ++m)
            if (exact_manual_[m]) up[m + 1] = from[m + 1].data();
        return up;
    }

    template <class Model>
    void set_tangent_direction(std::span<const T> u) {
        tangent_direction_.ensure_size(Model::parameter_count);
        std::copy(u.begin(), u.end(), tangent_direction_.begin());
    }

    // The generated task's tangent pass along tangent_direction_ on the scratch model (prepared on
    // x̃), and the tangent of its upstream λ ∂L_gen/∂out into dy_dot_.  Returns the scratch model.
    template <class Trainer>
    auto& generated_tangent(Trainer& trainer) {
        auto& gen = trainer.scratch_model();
        gen.tangent(&tangent_direction_);
        trainer.loss().gradient_tangent(gen.output(generated_head), gen.output_tangent(generated_head), exact_batch_, A_,
                                        loss::soft_targets<T>{y_tilde_.data()}, nullptr, dy_dot_[generated_head].data(),
                                        T(trainer.lookahead_aux_weight(manual_tasks)));
        return gen;
    }

    // Backward through G_l and G_f of the upstream gradients d_xt_ (on x̃) and d_yt_ (on ỹ); adds
    // to the φ gradients.  The generators' activations must be those of generate() on b.
    void backward_generators(const train::batch<T>& b) {
        const std::size_t B = b.size;
        du_.assign(B * A_, T(0));
        loss::block_softmax<T>::backward(y_tilde_.data(), d_yt_.data(), B, blocks_, b.primary, du_.data());
        labels_.backward(du_.data(), label_grad_, d_xt_.data());  // adds ∂/∂x̃ through G_l into d_xt_
        features_.backward(d_xt_.data(), feature_grad_);          // x̃ = x + G_f: ∂/∂δ = ∂/∂x̃
    }

    // ∂R/∂x̃ and ∂R/∂ỹ into d_xt_, d_yt_; sets regulariser_.  mean_given: mean_ already holds the
    // batch-mean label to differentiate at (the global one in a data-parallel run).
    void add_regulariser_upstream(const train::batch<T>& b, bool mean_given = false) {
        const std::size_t B = b.size;
        const T k = T(2 * options_.distance_weight / double(B * F));
        double dist = 0;
        for (std::size_t i = 0; i < B * F; ++i) {
            const T d = x_tilde_[i] - b.inputs[i];
            dist += double(d) * double(d);
            d_xt_[i] += k * d;
        }
        double r_ent = 0;
        if (mean_given) {
            for (std::size_t a = 0; a < A_; ++a) r_ent += double(mean_[a] * std::log(mean_[a] + loss::batch_entropy<T>::delta));
        } else {
            r_ent = double(loss::batch_entropy<T>::value(y_tilde_.data(), B, A_, mean_.data()));
        }
        loss::batch_entropy<T>::gradient(mean_.data(), B, A_, d_yt_.data(), T(options_.entropy_weight));
        regulariser_ = options_.distance_weight * dist / double(B * F) + options_.entropy_weight * r_ent;
    }

    template <class Model>
    void resize_upstream(std::size_t B) {
        for (std::size_t k = 0; k <= auxiliary_tasks; ++k) {
            dy_[k].resize(B * Model::head_widths[k]);
            dy_dot_[k].resize(B * Model::head_widths[k]);
        }
    }

    // Manual task m's per-example weights without the learned weight ω_m (∂L_T/∂ω_m is the
    // unweighted loss); null when the task has none.
    const T* unweighted_manual_weights(const train::auxiliary_targets<T>& t, std::size_t head, std::size_t B) {
        if (t.weights.empty()) return nullptr;
        unweighted_.assign(t.weights.begin(), t.weights.begin() + std::ptrdiff_t(B));
        const T om = manual_weight(head - 1);
        for (auto& x : unweighted_) x = om > T(0) ? x / om : T(0);
        return unweighted_.data();
    }

    // The tangent of manual task m's logit gradient (× scale) along the model's last output tangent.
    template <class Loss, class Model>
    void manual_gradient_tangent(const Loss& ce, const Model& model, const train::auxiliary_targets<T>& t, std::size_t head,
                                 std::size_t B, T scale, T* dy_dot) {
        const T* w = t.weights.empty() ? nullptr : t.weights.data();
        if (t.type == train::auxiliary_targets<T>::kind::hard) {
            ce.gradient_tangent(model.output(head), model.output_tangent(head), B, Model::head_widths[head],
                                loss::hard_targets{t.labels.data()}, w, dy_dot, scale);
        } else {
            ce.gradient_tangent(model.output(head), model.output_tangent(head), B, Model::head_widths[head],
                                loss::soft_targets<T>{t.soft.data()}, w, dy_dot, scale);
        }
    }

    // The directional derivative of manual task m's unweighted loss along the model's last output tangent.
    template <class Loss, class Model>
    double manual_loss_tangent(const Loss& ce, const Model& model, const train::auxiliary_targets<T>& t, std::size_t head,
                               std::size_t B) {
        if (t.type == train::auxiliary_targets<T>::kind::none) return 0.0;
        const T* w = unweighted_manual_weights(t, head, B);
        if (t.type == train::auxiliary_targets<T>::kind::hard) {
            return double(ce.tangent(model.output(head), model.output_tangent(head), B, Model::head_widths[head],
                                     loss::hard_targets{t.labels.data()}, w));
        }
        return double(ce.tangent(model.output(head), model.output_tangent(head), B, Model::head_widths[head],
                                 loss::soft_targets<T>{t.soft.data()}, w));
    }

    // Manual task m's loss on the model's last forward; its logit gradient (× scale) into dy.
    // unweighted = true ignores the learned weight (∂L_T/∂ω_m is the unweighted loss).
    template <class Loss, class Model>
    double manual_loss_gradient(const Loss& ce, const Model& model, const train::auxiliary_targets<T>& t, std::size_t head,
                                std::size_t B, T scale, T* dy, bool unweighted = false) {
        const T* w = unweighted ? unweighted_manual_weights(t, head, B) : (t.weights.empty() ? nullptr : t.weights.data());
        if (t.type == train::auxiliary_targets<T>::kind::hard) {
            return double(ce.value_and_gradient(model.output(head), B, Model::head_widths[head], loss::hard_targets{t.labels.data()},
                                                w, dy, scale));
        }
        return double(ce.value_and_gradient(model.output(head), B, Model::head_widths[head], loss::soft_targets<T>{t.soft.data()},
                                            w, dy, scale));
    }

    void record_metrics(const train::batch<T>& b) {
        const std::size_t B = b.size;
        double dist = 0, h = 0;
        for (std::size_t i = 0; i < B; ++i) {
            double d2 = 0;
            for (std::size_t j = 0; j < F; ++j) {
                const double d = double(x_tilde_[i * F + j]) - double(b.inputs[i * F + j]);
                d2 += d * d;
            }
            dist += std::sqrt(d2);
            for (std::size_t a = 0; a < A_; ++a) {
                const double p = double(y_tilde_[i * A_ + a]);
                if (p > 0) h -= p * std::log(p);
            }
        }
        metric_values_[0] = dist / double(B);
        metric_values_[1] = h / double(B);
        metric_values_[2] = -double(loss::batch_entropy<T>::value(y_tilde_.data(), B, A_, mean_.data()));
        for (std::size_t m = 0; m < manual_tasks; ++m) metric_values_[4 + m] = double(manual_weight(m));
        for (std::size_t a = 0; a < A_; ++a) metric_values_[4 + manual_tasks + a] = double(mean_[a]);
    }

    dtg_options options_;
    Manual manual_;
    const data::hierarchy* hierarchy_ = nullptr;
    loss::block_layout blocks_;
    std::size_t A_ = 0, batch_size_ = 0, steps_ = 0, dev_cursor_ = 0;
    feature_network features_;
    label_network labels_;
    arena<T> feature_grad_, label_grad_, omega_, omega_grad_;
    optim::adam<T> feature_opt_, label_opt_, omega_opt_;
    std::vector<T> gin_, x_tilde_, y_tilde_, mean_, unweighted_;
    std::vector<T> d_xt_, d_yt_, du_;          // upstream gradients on x̃, ỹ and the label logits
    std::array<std::vector<T>, 2> dx_, c_;     // mixed product: input gradients and coefficients at θ ± εs
    std::array<std::vector<T>, auxiliary_tasks + 1> dy_;
    std::array<std::vector<T>, auxiliary_tasks + 1> dy_dot_;  // exact products: the upstream gradients' tangents
    arena<T> tangent_direction_;                               // exact products: the direction u or s, as an arena
    // exact products, set by prepare_exact_products: the batch, its primary labels and which
    // manual tasks had targets
    std::size_t exact_batch_ = 0;
    const std::int32_t* exact_primary_ = nullptr;
    std::array<bool, manual_tasks + 1> exact_manual_{};  // (+1: no zero-length array when there are none)
    arena<T> v_, s_, spare_, probe_, saved_;
    arena<T> neumann_work_;  // the Neumann series' running term and its product (2P)
    meta::dev_batch_buffers<T> dev_buffers_;
    double regulariser_ = 0;
    std::vector<std::string> metric_names_;
    std::vector<double> metric_values_;
};

/// The DTG-style generator for Model with one-hidden-layer generators of width Hidden: the
/// manual tasks come from Manual (gen::none, gen::human_hierarchy, gen::random_labels, …).
template <class Model, std::size_t Hidden, std::size_t PrimaryClasses, class Manual = none>
using dtg_for = dtg<nn::sequential<nn::input<Model::input_size + PrimaryClasses>, nn::dense<Hidden>, nn::relu, nn::dense<Model::input_size>>,
                    nn::sequential<nn::input<Model::input_size>, nn::dense<Hidden>, nn::relu, nn::dense<Model::head_widths[Manual::auxiliary_tasks + 1]>>,
                    Manual, typename Model::scalar_type>;

}  // namespace auxl::gen
