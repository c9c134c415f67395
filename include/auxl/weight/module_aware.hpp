// auxl/weight/module_aware.hpp — MAOAL: one learned importance per (auxiliary task, trunk module)
// (Chen et al., NeurIPS 2022; ALGORITHMS.md §4 and §8.4).
//
// Lower level (every step): module m of the shared trunk moves along
//   ĝ_m = ∇_m L_pri + Σ_k a_{k,m} ∇_m L_aux,k,   a = ReLU(ω), ω initialised to 1;
// heads get their own task's gradient (primary unscaled, auxiliary head k ∇L_aux,k).
// Upper level (every `interval` steps, default 20), on a dev batch:
//   v = ∇_θ L_pri(dev);  s = Σ_{j=0..J} (I − α J)^j v  (J = 3 terms, α = the optimizer's current
//   learning rate unless set), with J u = H_pri u + Σ_k H_k (a_k ⊙_module u) + λ_wd u — each H on
//   the step's training batch, exact by forward-over-reverse (the default, as PyTorch's double
//   backward in MAOAL's code) or by central differences of that task's gradient (`hvp`);
//   ∇_ω_{k,m} = −α · 1[ω_{k,m} > 0] · ⟨s_m, ∇_m L_aux,k⟩   (closed-form mixed term);
//   clip ‖∇_ω‖ to 10; SGD with momentum 0.9, lr 1e-3 on ω.
// The α factor makes ∇_ω the implicit-function-theorem hypergradient in the limit of many terms
// (s → (αJ)⁻¹ v); MAOAL's code uses α = 1 where the two coincide.  Dev data: the trainer's dev
// split (needs_dev_set).  Cost: the lower level's weighted backward (each task's gradient runs
// down the trunk, each trunk module makes one weight-gradient product; or K+1 rows with
// combine_in_backward = false), plus every `interval` steps
// one dev gradient, K+1 task gradients and J·(K+1) Hessian-vector products (2 passes each).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <iomanip>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/meta/dev_gradient.hpp"
#include "auxl/meta/hvp.hpp"
#include "auxl/train/types.hpp"

namespace auxl::weight {

struct module_aware_options {
    std::size_t interval = 20;           ///< lower steps per upper step
    std::size_t neumann_terms = 3;
    std::optional<double> neumann_alpha; ///< default: the optimizer's current learning rate
    double lr = 1e-3;                    ///< SGD on ω
    double momentum = 0.9;
    double clip = 10.0;                  ///< hypergradient norm clip
    double initial = 1.0;                ///< ω at the start
    std::size_t dev_batch = 256;         ///< dev examples per upper step (fewer if the dev set is smaller)
    /// How the Neumann series' Hessian-vector products are formed (meta/hvp.hpp).  automatic:
    /// exact when the model's layers all have backward_tangent (every built-in layer does).
    /// Central differences at 0.01 missed the exact hypergradient by 10-51 % on ReLU networks
    /// (README, *The central differences' step*); the study's module-aware runs up to 2026-12-05
    /// used them.
    meta::hvp_method hvp = meta::hvp_method::automatic;
    /// Norm of the central differences' perturbation (hvp = central_difference, or automatic on a
    /// model without backward_tangent).  0.01 follows ALGORITHMS.md §8.0.
    double hvp_step = 0.01;
    /// The lower step's direction from one weighted backward (nn::multi_task::backward_weighted:
    /// each trunk module makes one weight-gradient product for all tasks) instead of K+1 gradient
    /// rows combined afterwards.  The same direction up to rounding; false keeps the rows (A/Bs,
    /// tests).  A step whose auxiliary head has generated inputs uses the rows either way.
    bool combine_in_backward = true;
};

class module_aware {
public:
    static const char* name() { return "module_aware"; }
    static constexpr bool needs_task_gradients = true;
    static constexpr bool needs_dev_set = true;
    /// Data-parallel: the dev gradient is computed on the same dev rows by every process; the
    /// task gradients and Hessian-vector products on the step's shards are averaged.
    static constexpr bool distributed_ready = true;

    module_aware() : module_aware(module_aware_options{}) {}
    explicit module_aware(module_aware_options o) : opts_(std::move(o)) {
        if (opts_.interval == 0) raise<config_error>("auxl::weight::module_aware: interval must be positive");
        if (!(opts_.hvp_step > 0)) raise<config_error>("auxl::weight::module_aware: hvp_step must be positive");
    }

    void prepare(const train::parameter_ranges& ranges, std::size_t auxiliary_tasks) {
        K_ = auxiliary_tasks;
        M_ = ranges.trunk_module_offset.size();
        if (M_ == 0) raise<config_error>("auxl::weight::module_aware: the trunk has no module with parameters");
        omega_.assign(K_ * M_, opts_.initial);
        velocity_.assign(K_ * M_, 0.0);
        weights_.assign(K_, 0.0);
        module_names_ = ranges.trunk_module_name;
        names_.clear();
        for (std::size_t k = 0; k < K_; ++k) {
            for (std::size_t m = 0; m < M_; ++m) {
                std::string n = "a";  // built by appending: g++ 12 warns falsely on "a" + std::string
                n += std::to_string(k + 1);
                n += '_';
                n += module_names_[m];
                names_.push_back(std::move(n));
            }
        }
        values_.assign(K_ * M_, 0.0);
        refresh_reports();
    }

    /// a_{k,m} = ReLU(ω_{k,m}).
    double importance(std::size_t k, std::size_t m) const { return std::max(0.0, omega_[k * M_ + m]); }
    std::span<const double> omega() const { return omega_; }

    /// Whether the trainer may form the lower direction in one weighted backward (see the option).
    bool combine_in_backward() const { return opts_.combine_in_backward; }

    /// The lower direction's coefficients for the weighted backward: (K+1) x M, row k the weights
    /// of task k's gradient on trunk module m (task 0, the primary, 1 everywhere).
    template <class T>
    void module_coefficients(std::span<T> out) const {
        if (out.size() != (K_ + 1) * M_) {
            raise<shape_error>("auxl::weight::module_aware: ", out.size(), " coefficients asked for, the rule has ", K_ + 1,
                               " tasks x ", M_, " trunk modules");
        }
        std::fill_n(out.data(), M_, T(1));
        for (std::size_t k = 0; k < K_; ++k)
            for (std::size_t m = 0; m < M_; ++m) out[(k + 1) * M_ + m] = T(importance(k, m));
    }

    template <class T>
    void combine(const T* rows, const train::parameter_ranges& ranges, T* out) {
        const std::size_t P = ranges.total;
        std::copy_n(rows, P, out);
        for (std::size_t k = 0; k < K_; ++k) {
            const T* g = rows + (k + 1) * P;
            for (std::size_t m = 0; m < M_; ++m) {
                const T a = T(importance(k, m));
                if (a == T(0)) continue;
                const std::size_t o = ranges.trunk_module_offset[m], e = o + ranges.trunk_module_size[m];
                for (std::size_t i = o; i < e; ++i) out[i] += a * g[i];
            }
            const std::size_t h0 = ranges.head_offset[k + 1], h1 = h0 + ranges.head_size[k + 1];
            for (std::size_t i = h0; i < h1; ++i) out[i] += g[i];
        }
    }

    /// Upper level, every `interval` steps.
    template <class Trainer, class T>
    void after_update(Trainer& trainer, const train::batch<T>& b) {
        if (++steps_ % opts_.interval != 0) return;
        upper_step(trainer, b);
    }

    /// ∇_ω of the last upper step (K x M, row-major), for tests and logs.
    std::span<const double> last_hypergradient() const { return hypergradient_; }

    /// Runs one upper step on batch b now: the hypergradient, then the update of ω.
    template <class Trainer, class T>
    void upper_step(Trainer& trainer, const train::batch<T>& b) {
        compute_hypergradient(trainer, b);
        for (std::size_t i = 0; i < omega_.size(); ++i) {
            velocity_[i] = opts_.momentum * velocity_[i] + hypergradient_[i];
            omega_[i] -= opts_.lr * velocity_[i];
        }
        refresh_reports();
    }

    /// Sets ω_{k,m} (tests, warm starts).
    void set_omega(std::size_t k, std::size_t m, double value) {
        omega_.at(k * M_ + m) = value;
        refresh_reports();
    }

    /// ∇_ω into last_hypergradient(), clipped, without changing ω.  b must be the batch of the
    /// trainer's last step (its targets are the trainer's current ones).
    template <class Trainer, class T>
    void compute_hypergradient(Trainer& trainer, const train::batch<T>& b) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        const std::size_t P = Model::parameter_count;
        const auto& ranges = trainer.ranges();
        const auto& opt = trainer.optimizer().hyper_parameters();
        const double alpha = opts_.neumann_alpha ? *opts_.neumann_alpha : trainer.optimizer().learning_rate();
        const double wd = opt.weight_decay;
        resize<T>(P);

        // v = ∇ L_pri on a dev batch (evaluation mode).
        dev_gradient(trainer, *buffers<T>().v);
        // Per-task gradients at θ on the training batch (needed for the mixed term and by J).
        auto task_gradient = [&](std::size_t task, T* out) {
            model.forward(b.inputs, b.size, trainer.reuse_masks());
            task_upstream(trainer, b, task);
            std::fill_n(out, P, T(0));
            model.backward_head(task, buffers<T>().dy.data(), std::span<T>(out, P));
        };
        auto& aux_grads = *buffers<T>().aux;
        for (std::size_t k = 0; k < K_; ++k) task_gradient(k + 1, aux_grads.data() + k * P);
        trainer.reducer().average(std::span<T>(aux_grads.data(), K_ * P));

        // J u = H_pri u + Σ_k H_k (a_k ⊙ u) + wd u.
        const bool exact = meta::use_exact_products<Model>(opts_.hvp, "auxl::weight::module_aware");
        // Exact products run on one forward at θ on the batch (their tangent and backward passes
        // leave its activations as they are); central differences run their own.
        if (exact) model.forward(b.inputs, b.size, trainer.reuse_masks());
        auto apply_J = [&](std::span<const T> u, std::span<T> out) {
            auto& scaled = *buffers<T>().scaled;
            auto& hv = *buffers<T>().hv;
            for (std::size_t i = 0; i < P; ++i) out[i] = T(wd) * u[i];
            for (std::size_t task = 0; task <= K_; ++task) {
                if (task == 0) std::copy(u.begin(), u.end(), scaled.begin());
                else scale_for_task(task - 1, ranges, u, scaled);
                if (exact) {
                    exact_task_hvp(trainer, b, task, scaled, std::span<T>(hv.data(), P));
                } else {
                    meta::hessian_vector(model.parameters(), std::span<const T>(scaled.data(), P),
                                         [&](T* g) { task_gradient(task, g); }, std::span<T>(hv.data(), P), *buffers<T>().saved,
                                         *buffers<T>().spare, opts_.hvp_step);
                }
                for (std::size_t i = 0; i < P; ++i) out[i] += hv[i];
            }
            trainer.reducer().average(out);
        };
        auto& s = *buffers<T>().s;
        meta::neumann(std::span<const T>(buffers<T>().v->data(), P), apply_J, alpha, opts_.neumann_terms, std::span<T>(s.data(), P),
                      buffers<T>().neumann_work->span());

        // Closed-form mixed term, clip, momentum SGD on ω.
        hypergradient_.assign(K_ * M_, 0.0);
        for (std::size_t k = 0; k < K_; ++k) {
            for (std::size_t m = 0; m < M_; ++m) {
                if (omega_[k * M_ + m] <= 0) continue;
                const std::size_t o = ranges.trunk_module_offset[m], e = o + ranges.trunk_module_size[m];
                double d = 0;
                for (std::size_t i = o; i < e; ++i) d += double(s[i]) * double(aux_grads[k * P + i]);
                hypergradient_[k * M_ + m] = -alpha * d;
            }
        }
        meta::clip_norm(std::span<double>(hypergradient_), opts_.clip);
    }

    /// The K x M importance matrix as a table (rows: auxiliary tasks, columns: trunk modules).
    void print_importances(std::ostream& out) const {
        out << std::left << std::setw(8) << "aux";
        for (const auto& n : module_names_) out << std::setw(18) << n;
        out << '\n';
        for (std::size_t k = 0; k < K_; ++k) {
            out << std::setw(8) << (k + 1);
            for (std::size_t m = 0; m < M_; ++m) out << std::setw(18) << std::setprecision(4) << importance(k, m);
            out << '\n';
        }
    }

    std::span<const double> last_weights() const { return weights_; }
    std::span<const std::string> metric_names() const { return names_; }
    std::span<const double> metric_values() const { return values_; }

    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("omega", omega_);
        visit("velocity", velocity_);
        visit("steps", steps_);
        visit("dev_cursor", dev_cursor_);  // the next upper step's dev rows: needed for a bit-exact resume
        refresh_reports();
    }

private:
    template <class T>
    struct workspace {
        arena<T>* v = nullptr;
        arena<T>* s = nullptr;
        arena<T>* aux = nullptr;
        arena<T>* scaled = nullptr;
        arena<T>* hv = nullptr;
        arena<T>* saved = nullptr;
        arena<T>* spare = nullptr;
        arena<T>* neumann_work = nullptr;  // the Neumann series' running term and its product (2P)
        std::vector<T> dy, dy_dot;
        meta::dev_batch_buffers<T> dev;
    };
    template <class T>
    struct storage {
        arena<T> v, s, aux, scaled, hv, saved, spare, neumann_work;
        workspace<T> w;
    };
    template <class T>
    storage<T>& store() {
        if constexpr (std::is_same_v<T, float>) return float_store_;
        else return double_store_;
    }
    template <class T>
    workspace<T>& buffers() { return store<T>().w; }
    template <class T>
    void resize(std::size_t P) {
        auto& st = store<T>();
        for (auto* a : {&st.v, &st.s, &st.scaled, &st.hv, &st.spare})
            a->ensure_size(P);
        st.aux.ensure_size(K_ * P);
        st.neumann_work.ensure_size(2 * P);
        st.w = workspace<T>{&st.v,     &st.s,     &st.aux,          &st.scaled,         &st.hv,
                            &st.saved, &st.spare, &st.neumann_work, std::move(st.w.dy), std::move(st.w.dy_dot),
                            std::move(st.w.dev)};
    }

    // out = H_task u on the step's batch, exactly: tangent along u, the loss's gradient and its
    // tangent, backward (upstream buffers only), backward_tangent.  Needs the model's last forward
    // to be on b at θ (compute_hypergradient runs it once for all products).
    template <class Trainer, class T>
    void exact_task_hvp(Trainer& trainer, const train::batch<T>& b, std::size_t task, const arena<T>& u, std::span<T> out) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        if constexpr (Model::has_backward_tangent) {
            model.tangent(&u);
            task_upstream(trainer, b, task);
            task_upstream_tangent(trainer, b, task);
            std::array<const T*, Model::task_count> only{};
            only[task] = buffers<T>().dy.data();
            model.backward_input(only);
            std::fill(out.begin(), out.end(), T(0));
            model.backward_tangent_head(task, buffers<T>().dy.data(), buffers<T>().dy_dot.data(), out);
        }
    }

    // out = u with trunk module m scaled by a_{k,m}, the auxiliary head k kept, everything else zero.
    template <class T>
    void scale_for_task(std::size_t k, const train::parameter_ranges& ranges, std::span<const T> u, arena<T>& out) const {
        std::fill(out.begin(), out.end(), T(0));
        for (std::size_t m = 0; m < M_; ++m) {
            const T a = T(importance(k, m));
            const std::size_t o = ranges.trunk_module_offset[m], e = o + ranges.trunk_module_size[m];
            for (std::size_t i = o; i < e; ++i) out[i] = u[i] * a;
        }
        const std::size_t h0 = ranges.head_offset[k + 1], h1 = h0 + ranges.head_size[k + 1];
        std::copy(u.begin() + std::ptrdiff_t(h0), u.begin() + std::ptrdiff_t(h1), out.begin() + h0);
    }

    // Calls f(targets, weights) with task `task`'s targets on the step's batch; returns false for
    // an auxiliary task without targets (its loss is zero).
    template <class Trainer, class T, class F>
    bool with_task_targets(Trainer& trainer, const train::batch<T>& b, std::size_t task, F&& f) {
        if (task == 0) {
            f(loss::hard_targets{b.primary}, static_cast<const T*>(nullptr));
            return true;
        }
        const auto& t = trainer.current_targets()[task - 1];
        const T* w = t.weights.empty() ? nullptr : t.weights.data();
        if (t.type == train::auxiliary_targets<T>::kind::hard) f(loss::hard_targets{t.labels.data()}, w);
        else if (t.type == train::auxiliary_targets<T>::kind::soft) f(loss::soft_targets<T>{t.soft.data()}, w);
        else return false;
        return true;
    }

    // Upstream gradient of task `task`'s loss on the step's batch (the model's outputs are fresh).
    template <class Trainer, class T>
    void task_upstream(Trainer& trainer, const train::batch<T>& b, std::size_t task) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        auto& dy = buffers<T>().dy;
        dy.resize(b.size * Model::head_widths[task]);
        const bool any = with_task_targets(trainer, b, task, [&](const auto& targets, const T* w) {
            trainer.loss().value_and_gradient(model.output(task), b.size, Model::head_widths[task], targets, w, dy.data());
        });
        if (!any) std::fill(dy.begin(), dy.end(), T(0));
    }

    // Its tangent along the model's last output tangent (targets fixed), into dy_dot.
    template <class Trainer, class T>
    void task_upstream_tangent(Trainer& trainer, const train::batch<T>& b, std::size_t task) {
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        auto& dy_dot = buffers<T>().dy_dot;
        dy_dot.resize(b.size * Model::head_widths[task]);
        const bool any = with_task_targets(trainer, b, task, [&](const auto& targets, const T* w) {
            trainer.loss().gradient_tangent(model.output(task), model.output_tangent(task), b.size, Model::head_widths[task],
                                            targets, w, dy_dot.data());
        });
        if (!any) std::fill(dy_dot.begin(), dy_dot.end(), T(0));
    }

    template <class Trainer, class T>
    void dev_gradient(Trainer& trainer, arena<T>& v) {
        dev_cursor_ = meta::dev_primary_gradient(trainer, opts_.dev_batch, dev_cursor_, v, buffers<T>().dev,
                                                 "auxl::weight::module_aware");
    }

    void refresh_reports() {
        for (std::size_t k = 0; k < K_; ++k) {
            double sum = 0;
            for (std::size_t m = 0; m < M_; ++m) {
                values_[k * M_ + m] = importance(k, m);
                sum += importance(k, m);
            }
            weights_[k] = M_ ? sum / double(M_) : 0.0;
        }
    }

    module_aware_options opts_;
    std::size_t K_ = 0, M_ = 0, steps_ = 0, dev_cursor_ = 0;
    std::vector<double> omega_, velocity_, weights_, values_, hypergradient_;
    std::vector<std::string> names_, module_names_;
    storage<float> float_store_;
    storage<double> double_store_;
};

}  // namespace auxl::weight
