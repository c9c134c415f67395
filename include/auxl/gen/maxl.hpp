// auxl/gen/maxl.hpp — MAXL: a label-generation network trained by an exact second-order
// meta-gradient (Liu, Davison, Johns, NeurIPS 2019; ALGORITHMS.md §1 and §8.1).
//
// gen::maxl<GeneratorNet> owns a network g(x; φ) (any nn::sequential on the model's input whose
// output width is A = Σ ψ_c) and turns its logits into soft auxiliary targets with the block
// softmax of each example's primary class: t = blocksoftmax_y(g(x; φ)).  The multi-task network
// w trains on L(w, φ) = L_pri(w) + λ L_aux(w, t(φ)) (focal γ = 2 by default, as in MAXL's code).
//
// Meta-update (every step by default, or one meta pass per epoch as in the paper's code):
//   w' = w − α ∇_w L(w, φ)              α = the network's current learning rate unless set
//   v  = ∇_w L_pri(w')
//   ∇_φ J = −α J_tᵀ (D_w c · v) + β ∇_φ R(t)      J(φ) = L_pri(w'(φ)) + β R(t(φ)),  β = 0.2
// where c = ∂L/∂t (the loss is linear in its targets) and R is the batch-entropy regulariser.
// D_w c · v is exact, from one tangent (JVP) pass of the network along v (MetaGradient =
// exact_meta_gradient, the default), or a central difference of c at w ± εv, ε = 0.01/‖v‖
// (finite_difference_meta_gradient).  Then one generator backward and an SGD step on φ
// (lr 1e-3, weight decay 5e-4, as in the code).
//
// Deviations, on purpose: the block softmax is exact (zero outside the block, §0); the meta-step
// runs on the training batch before the network's own update, so the lookahead reuses the
// training gradient (one backward fewer; the paper updates w first and uses a meta batch);
// the lookahead is a plain gradient step along L_pri + λ L_aux whatever the weighting rule.
//
// Cost per step (per-step schedule, exact): the training step + one generator forward, one
// network forward and backward at w' (on the trainer's scratch copy of the network, so the
// activations at w stay for the tangent), one tangent at w, one generator backward.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/data/batcher.hpp"
#include "auxl/data/dataset.hpp"
#include "auxl/dist/local.hpp"
#include "auxl/loss/batch_entropy.hpp"
#include "auxl/loss/block_layout.hpp"
#include "auxl/loss/block_softmax.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/network.hpp"
#include "auxl/optim/sgd.hpp"
#include "auxl/train/concepts.hpp"

namespace auxl::gen {

/// D_w c · v from one forward-mode pass of the network (exact).
struct exact_meta_gradient {
    static constexpr const char* name = "exact";
};
/// D_w c · v ≈ [c(w + εv) − c(w − εv)] / 2ε with ε = 0.01/‖v‖ (two forward passes).
struct finite_difference_meta_gradient {
    static constexpr const char* name = "finite-difference";
};

enum class maxl_schedule {
    per_step,   ///< a meta-update on every training batch (default)
    per_epoch,  ///< after each training epoch, a meta pass over the training set (MAXL's code)
};

struct maxl_options {
    std::size_t psi_per_class = 5;       ///< generated classes per primary class (when psi is empty)
    std::vector<std::size_t> psi;        ///< per-class block sizes; overrides psi_per_class
    double entropy_weight = 0.2;         ///< β of the batch-entropy regulariser
    double generator_lr = 1e-3;
    double generator_weight_decay = 5e-4;
    double generator_momentum = 0.0;
    std::optional<double> inner_lr;      ///< α; default: the network's current learning rate
    maxl_schedule schedule = maxl_schedule::per_step;
    nn::init_scheme init = nn::init_scheme::xavier_normal;  ///< the code's generator init
};

/// The generator network MAXL's code uses: the model's trunk architecture plus a linear layer
/// to the auxiliary head's width.
template <class Model>
using maxl_net_for = typename Model::trunk_spec::template append<nn::dense<Model::head_widths[1]>>;

template <class GeneratorNet, class MetaGradient = exact_meta_gradient, class Scalar = float>
class maxl {
public:
    using T = Scalar;
    using network_type = nn::basic_network<T, GeneratorNet>;
    static const char* name() { return "maxl"; }
    static constexpr std::size_t auxiliary_tasks = 1;
    static constexpr double default_focal_gamma = 2.0;
    static constexpr bool distributed_ready = true;  ///< meta-gradient averaged through trainer.reducer()

    maxl() : maxl(maxl_options{}) {}
    explicit maxl(maxl_options options) : options_(std::move(options)) {
        if (options_.entropy_weight < 0) raise<config_error>("auxl::gen::maxl: entropy weight must be >= 0");
        if (!(options_.generator_lr > 0)) raise<config_error>("auxl::gen::maxl: generator learning rate must be positive");
        if (options_.inner_lr && !(*options_.inner_lr > 0)) raise<config_error>("auxl::gen::maxl: inner learning rate must be positive");
    }

    void prepare(const train::generator_setup& setup) {
        if (!setup.hierarchy) raise<config_error>("auxl::gen::maxl: no hierarchy given");
        blocks_ = options_.psi.empty() ? loss::block_layout::uniform(setup.hierarchy->primary_classes(), options_.psi_per_class)
                                       : loss::block_layout(options_.psi);
        if (blocks_.primary_classes() != setup.hierarchy->primary_classes()) {
            raise<config_error>("auxl::gen::maxl: psi has ", blocks_.primary_classes(), " blocks, the hierarchy has ",
                                setup.hierarchy->primary_classes(), " primary classes");
        }
        const std::size_t A = blocks_.auxiliary_classes();
        if (setup.head_widths.size() < 2 || setup.head_widths[1] != A) {
            raise<config_error>("auxl::gen::maxl: psi gives ", A, " auxiliary classes but the auxiliary head has ",
                                setup.head_widths.size() < 2 ? 0 : setup.head_widths[1], " outputs");
        }
        if (network_type::output_size != A) {
            raise<config_error>("auxl::gen::maxl: the generator network outputs ", network_type::output_size,
                                " values, psi needs ", A);
        }
        if (setup.input_size != network_type::input_size) {
            raise<config_error>("auxl::gen::maxl: the generator network takes ", network_type::input_size,
                                " inputs, the model ", setup.input_size);
        }
        hierarchy_ = setup.hierarchy;
        const std::size_t B = setup.max_batch;
        net_.reserve(B);
        rng init(setup.seed, "maxl-init");
        net_.init(init, options_.init);
        net_grad_ = net_.make_arena();
        optimizer_ = optim::sgd<T>({.learning_rate = options_.generator_lr,
                                     .momentum = options_.generator_momentum,
                                     .weight_decay = options_.generator_weight_decay});
        meta_order_.reseed(setup.seed ^ 0x6d61786c6f726465ull);  // "maxlorde"
        meta_dropout_.reseed(setup.seed ^ 0x6d61786c64726f70ull);
        targets_.assign(B * A, T(0));
        dt_.assign(B * A, T(0));
        du_.assign(B * A, T(0));
        c_.assign(B * A, T(0));
        c_dot_.assign(B * A, T(0));
        mean_.assign(A, T(0));
        for (auto& d : dlogits_) d.clear();
        x_.assign(B * network_type::input_size, T(0));
        fine_.assign(B, 0);
        primary_.assign(B, 0);
        max_batch_ = B;
    }

    const loss::block_layout& blocks() const { return blocks_; }
    network_type& network() { return net_; }
    const maxl_options& options() const { return options_; }

    /// Soft targets for the batch: the block softmax of the generator's logits.
    template <class U>
    void generate(const train::batch<U>& b, std::span<train::auxiliary_targets<U>> targets) {
        static_assert(std::is_same_v<U, T>, "auxl::gen::maxl: the generator's scalar type must be the model's");
        run_generator(b.inputs, b.primary, b.size);
        auto& t = targets[0];
        t.type = train::auxiliary_targets<T>::kind::soft;
        std::copy_n(targets_.data(), b.size * blocks_.auxiliary_classes(), t.soft.data());
    }

    /// Called by the trainer after the training gradient is known and before the update.
    template <class Trainer>
    void before_update(Trainer& trainer, const train::batch<T>& b) {
        record_diagnostics(trainer.model(), b.size);
        if (options_.schedule != maxl_schedule::per_step) return;
        const double alpha = options_.inner_lr ? *options_.inner_lr : trainer.optimizer().learning_rate();
        meta_gradient(trainer.model(), b.inputs, b.primary, b.size, alpha, trainer.lookahead_aux_weight(0), trainer.loss(),
                      trainer.reuse_masks(), trainer.lookahead_gradient().data(), &trainer.scratch_model(), trainer.reducer());
        optimizer_.step(net_.parameters(), net_grad_);
    }

    /// Per-epoch schedule: one meta pass over the training set with the network fixed.  In a
    /// data-parallel run every rank makes the same pass (same order, same parameters), so the
    /// label networks stay equal without communication.
    template <class Trainer>
    void after_epoch(Trainer& trainer, const data::dataset<T>& d) {
        if (options_.schedule != maxl_schedule::per_epoch) return;
        data::batcher order(d.size(), max_batch_);
        order.start_epoch(meta_order_);
        const std::size_t F = network_type::input_size;
        const double alpha = options_.inner_lr ? *options_.inner_lr : trainer.optimizer().learning_rate();
        while (!order.epoch_done()) {
            const auto rows = order.next();
            for (std::size_t r = 0; r < rows.size(); ++r) {
                std::copy_n(d.inputs.data() + std::size_t(rows[r]) * F, F, x_.data() + r * F);
                fine_[r] = d.labels[rows[r]];
            }
            trainer.hierarchy().map_to_primary(fine_.data(), rows.size(), primary_.data());
            run_generator(x_.data(), primary_.data(), rows.size());
            trainer.model().forward(x_.data(), rows.size(), nn::pass_options{true, &meta_dropout_, false});
            meta_gradient(trainer.model(), x_.data(), primary_.data(), rows.size(), alpha, trainer.lookahead_aux_weight(0),
                          trainer.loss(), nn::pass_options{true, &meta_dropout_, true}, nullptr, &trainer.scratch_model());
            optimizer_.step(net_.parameters(), net_grad_);
        }
    }

    /// ∇_φ J into gradient() for the batch (x, primary labels), at the model's current parameters.
    /// Requires: the model's last forward ran on x with `options` (masks to reuse), and the
    /// generator's last forward (run_generator / generate) on the same batch.  `joint_grad`, if
    /// given, is ∇_w [L_pri + λ L_aux] at w (else computed here with one backward).  With a
    /// `scratch` model of the same type the perturbed passes run there and the model's
    /// activations at w are reused (one forward fewer); without, the model's parameters are
    /// perturbed and restored bit for bit from a copy.  In a data-parallel run (x, primary) is
    /// this process's shard, `joint_grad` the global gradient, and `reducer` averages v, the
    /// batch-mean label of the entropy term and ∇_φ J over the processes.
    template <class Model, class Reducer = dist::local>
    void meta_gradient(Model& model, const T* x, const std::int32_t* primary, std::size_t B, double alpha, double lambda,
                       const loss::softmax_cross_entropy<T>& ce, const nn::pass_options& options, const T* joint_grad,
                       Model* scratch = nullptr, Reducer&& reducer = Reducer{}) {
        const std::size_t A = blocks_.auxiliary_classes();
        const std::size_t P = Model::parameter_count;
        auto& params = model.parameters();
        size_workspaces<Model>(B);
        if (!scratch) saved_ = params;
        // Runs `model` at parameters `w` (from `fill`) on x with the same masks; returns the model used.
        auto evaluate_at = [&](auto fill) -> Model& {
            Model& m = scratch ? *scratch : model;
            fill(m.parameters().data());
            if (scratch) scratch->copy_masks_from(model);
            m.forward(x, B, options);
            return m;
        };

        // 1. g = ∇_w L(w, φ) (reuse the caller's when given).
        if (!joint_grad) {
            ce.value_and_gradient(model.output(0), B, Model::head_widths[0], loss::hard_targets{primary}, nullptr,
                                  dlogits_[0].data());
            ce.value_and_gradient(model.output(1), B, A, loss::soft_targets<T>{targets_.data()}, nullptr, dlogits_[1].data(),
                                  T(lambda));
            lookahead_grad_.ensure_size(P);
            lookahead_grad_.zero();
            model.backward({dlogits_[0].data(), dlogits_[1].data()}, lookahead_grad_);
            reducer.average(std::span<T>(lookahead_grad_.data(), P));
            joint_grad = lookahead_grad_.data();
        }
        const T* w = scratch ? params.data() : saved_.data();
        // 2. w' = w − α g;  v = ∇ L_pri(w').
        Model& ahead = evaluate_at([&](T* out) {
            for (std::size_t i = 0; i < P; ++i) out[i] = w[i] - T(alpha) * joint_grad[i];
        });
        ce.value_and_gradient(ahead.output(0), B, Model::head_widths[0], loss::hard_targets{primary}, nullptr,
                              dlogits_[0].data());
        v_.ensure_size(P);
        v_.zero();
        ahead.backward_head(0, dlogits_[0].data(), v_);
        reducer.average(std::span<T>(v_.data(), P));
        if (!scratch) params = saved_;

        // 3. ċ = D_w c · v, with c = λ ∂L_aux/∂t.
        if constexpr (std::is_same_v<MetaGradient, exact_meta_gradient>) {
            if (!scratch) model.forward(x, B, options);  // activations at w again
            model.tangent(&v_, nullptr);
            ce.target_coefficients_tangent(model.output(1), model.output_tangent(1), B, A, c_dot_.data());
            for (std::size_t i = 0; i < B * A; ++i) c_dot_[i] *= T(lambda);
        } else {
            double norm = 0;
            for (std::size_t i = 0; i < P; ++i) norm += double(v_[i]) * double(v_[i]);
            norm = std::sqrt(norm);
            if (norm == 0) {
                std::fill_n(c_dot_.data(), B * A, T(0));
            } else {
                const T eps = T(0.01 / norm);
                Model& plus = evaluate_at([&](T* out) {
                    for (std::size_t i = 0; i < P; ++i) out[i] = w[i] + eps * v_[i];
                });
                ce.target_coefficients(plus.output(1), B, A, c_dot_.data());
                Model& minus = evaluate_at([&](T* out) {
                    for (std::size_t i = 0; i < P; ++i) out[i] = w[i] - eps * v_[i];
                });
                ce.target_coefficients(minus.output(1), B, A, c_.data());
                for (std::size_t i = 0; i < B * A; ++i) c_dot_[i] = T(lambda) * (c_dot_[i] - c_[i]) / (T(2) * eps);
                if (!scratch) params = saved_;
            }
        }

        // 4. dJ/dt = −α ċ + β ∂R/∂t, through the block softmax and the generator.
        for (std::size_t i = 0; i < B * A; ++i) dt_[i] = T(-alpha) * c_dot_[i];
        loss::batch_entropy<T>::value(targets_.data(), B, A, mean_.data());
        reducer.average(std::span<T>(mean_.data(), A));  // the entropy is of the global batch's mean label
        loss::batch_entropy<T>::gradient(mean_.data(), B, A, dt_.data(), T(options_.entropy_weight));
        std::fill_n(du_.data(), B * A, T(0));
        loss::block_softmax<T>::backward(targets_.data(), dt_.data(), B, blocks_, primary, du_.data());
        net_grad_.zero();
        net_.backward(du_.data(), net_grad_);
        reducer.average(std::span<T>(net_grad_.data(), net_grad_.size()));
    }

    /// J(φ) = L_pri(w − α ∇_w L(w, φ)) + β R(t(φ)) for the batch — the objective the
    /// meta-gradient differentiates (used by tests).  Leaves the model's parameters unchanged.
    template <class Model>
    double unrolled_objective(Model& model, const T* x, const std::int32_t* primary, std::size_t B, double alpha,
                              double lambda, const loss::softmax_cross_entropy<T>& ce, const nn::pass_options& options) {
        const std::size_t A = blocks_.auxiliary_classes();
        const std::size_t P = Model::parameter_count;
        size_workspaces<Model>(B);
        run_generator(x, primary, B);
        auto& params = model.parameters();
        saved_ = params;
        model.forward(x, B, options);
        ce.value_and_gradient(model.output(0), B, Model::head_widths[0], loss::hard_targets{primary}, nullptr, dlogits_[0].data());
        ce.value_and_gradient(model.output(1), B, A, loss::soft_targets<T>{targets_.data()}, nullptr, dlogits_[1].data(),
                              T(lambda));
        lookahead_grad_.ensure_size(P);
        lookahead_grad_.zero();
        model.backward({dlogits_[0].data(), dlogits_[1].data()}, lookahead_grad_);
        for (std::size_t i = 0; i < P; ++i) params[i] = saved_[i] - T(alpha) * lookahead_grad_[i];
        model.forward(x, B, options);
        const double primary_after = ce.value_and_gradient(model.output(0), B, Model::head_widths[0], loss::hard_targets{primary});
        params = saved_;
        return primary_after + options_.entropy_weight * double(loss::batch_entropy<T>::value(targets_.data(), B, A, mean_.data()));
    }

    /// Runs the generator on a batch: targets() then holds the block-softmax labels.
    void run_generator(const T* x, const std::int32_t* primary, std::size_t B) {
        const T* u = net_.forward(x, B);
        loss::block_softmax<T>::forward(u, B, blocks_, primary, targets_.data());
    }
    const T* targets() const { return targets_.data(); }
    const arena<T>& gradient() const { return net_grad_; }
    optim::sgd<T>& optimizer() { return optimizer_; }

    // Diagnostics of the last step (averaged per epoch by the trainer's CSV log):
    //   gen_block_entropy  mean per-example entropy of t / log ψ_y (1 = uniform inside the block)
    //   gen_batch_entropy  entropy of the batch-mean label / log A (1 = all classes used equally)
    //   aux_agreement      share of examples whose auxiliary-head argmax is the generated argmax
    std::span<const std::string> metric_names() const { return metric_names_; }
    std::span<const double> metric_values() const { return metric_values_; }

    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("parameters", net_.parameters());
        optimizer_.visit_state([&](const std::string& n, auto& value) { visit("optimizer/" + n, value); });
        order_words_ = rng_state_words(meta_order_);
        dropout_words_ = rng_state_words(meta_dropout_);
        visit("rng/meta_order", order_words_);
        visit("rng/meta_dropout", dropout_words_);
        restore_rng_words(meta_order_, order_words_);
        restore_rng_words(meta_dropout_, dropout_words_);
    }

private:
    template <class Model>
    void size_workspaces(std::size_t B) {
        if (dlogits_[0].size() < B * Model::head_widths[0]) dlogits_[0].assign(B * Model::head_widths[0], T(0));
        if (dlogits_[1].size() < B * Model::head_widths[1]) dlogits_[1].assign(B * Model::head_widths[1], T(0));
    }

    template <class Model>
    void record_diagnostics(const Model& model, std::size_t B) {
        const std::size_t A = blocks_.auxiliary_classes();
        double block_entropy = 0, agree = 0;
        const auto* labels = targets_.data();
        for (std::size_t i = 0; i < B; ++i) {
            const T* t = labels + i * A;
            double h = 0;
            std::size_t nonzero = 0;
            for (std::size_t a = 0; a < A; ++a) {
                if (t[a] > T(0)) {
                    h -= double(t[a]) * std::log(double(t[a]));
                    ++nonzero;
                }
            }
            block_entropy += nonzero > 1 ? h / std::log(double(nonzero)) : 0.0;
            const T* q = model.output(1) + i * A;
            agree += std::max_element(q, q + A) - q == std::max_element(t, t + A) - t;
        }
        loss::batch_entropy<T>::value(labels, B, A, mean_.data());
        double batch_h = 0;
        for (std::size_t a = 0; a < A; ++a)
            if (mean_[a] > T(0)) batch_h -= double(mean_[a]) * std::log(double(mean_[a]));
        metric_values_ = {block_entropy / double(B), batch_h / std::log(double(A)), agree / double(B)};
    }


    maxl_options options_;
    const data::hierarchy* hierarchy_ = nullptr;
    loss::block_layout blocks_;
    network_type net_{1};
    arena<T> net_grad_;
    optim::sgd<T> optimizer_;
    rng meta_order_{0}, meta_dropout_{0};
    std::size_t max_batch_ = 0;

    std::vector<T> targets_, dt_, du_, c_, c_dot_, mean_, x_;
    std::vector<std::int32_t> fine_, primary_;
    std::array<std::vector<T>, 2> dlogits_;
    arena<T> saved_, v_, lookahead_grad_;
    std::vector<std::string> metric_names_ = {"gen_block_entropy", "gen_batch_entropy", "aux_agreement"};
    std::vector<double> metric_values_ = {0.0, 0.0, 0.0};
    std::vector<std::uint64_t> order_words_, dropout_words_;
};

}  // namespace auxl::gen
