// auxl/loss/softmax_cross_entropy.hpp — softmax cross-entropy on logits, with hard labels or soft
// targets, optional per-example weights and optional focal γ (ALGORITHMS.md §0).
//
// For logits s (batch x C), p = softmax(s), targets t (one-hot or a distribution) and weights w:
//   ℓ_i = − Σ_c t_ic (1 − p_ic)^γ log p_ic,      L = (1/B) Σ_i w_i ℓ_i
//   ∂ℓ/∂s_k = −r_k + p_k Σ_c r_c,  r_c = t_c [(1 − p_c)^γ − γ (1 − p_c)^(γ−1) p_c log p_c]
// γ = 0 is plain cross-entropy (∂ℓ/∂s = p − t for normalised t).  log p is computed as a
// log-softmax (max-shifted log-sum-exp), so no δ inside the log is needed: this is exact where
// MAXL's code adds 1e-20 (a deliberate, documented deviation — it only matters for p < 1e-20).
//
// The loss is linear in the targets: L = Σ_ic c_ic t_ic with c_ic = −(w_i/B)(1 − p_ic)^γ log p_ic.
// target_coefficients() returns c and target_coefficients_tangent() its JVP along a logit
// direction — the two pieces MAXL's exact meta-gradient is built from (ALGORITHMS.md §8.1).
// Cost: O(B·C) per call; no allocation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "auxl/core/error.hpp"

namespace auxl::loss {

/// Integer class labels, one per row.
struct hard_targets {
    const std::int32_t* labels;
};

/// One target distribution per row (batch x C); need not be normalised.
template <class T>
struct soft_targets {
    const T* values;
};

template <class T>
class softmax_cross_entropy {
public:
    softmax_cross_entropy() = default;
    explicit softmax_cross_entropy(T focal_gamma) : gamma_(focal_gamma) {
        if (!(focal_gamma >= T(0))) raise<config_error>("auxl::loss::softmax_cross_entropy: focal gamma must be >= 0, got ", focal_gamma);
    }

    T gamma() const { return gamma_; }

    /// Mean loss; if dlogits is given it receives scale·∂L/∂s (overwritten); per_example (optional)
    /// receives the unweighted ℓ_i.  weights (optional) are per-example multipliers.
    template <class Targets>
    T value_and_gradient(const T* logits, std::size_t batch, std::size_t classes, const Targets& targets,
                         const T* weights = nullptr, T* dlogits = nullptr, T scale = T(1),
                         T* per_example = nullptr) const {
        check_targets(targets, batch, classes);
        double total = 0;
        const T inv_batch = batch ? T(1) / T(batch) : T(0);
        for (std::size_t i = 0; i < batch; ++i) {
            const T* s = logits + i * classes;
            const T lse = log_sum_exp(s, classes);
            const T w = weights ? weights[i] : T(1);
            T loss_i = 0;
            T r_sum = 0;
            for (std::size_t c = 0; c < classes; ++c) {
                const T t = target(targets, i, c, classes);
                if (t == T(0)) continue;
                const T logp = s[c] - lse;
                loss_i -= t * focal_factor(logp) * logp;
                r_sum += t * r_factor(logp);
            }
            total += double(w) * double(loss_i);
            if (per_example) per_example[i] = loss_i;
            if (dlogits) {
                T* g = dlogits + i * classes;
                const T k = scale * w * inv_batch;
                for (std::size_t c = 0; c < classes; ++c) {
                    const T logp = s[c] - lse;
                    const T p = std::exp(logp);
                    const T t = target(targets, i, c, classes);
                    const T r = t == T(0) ? T(0) : t * r_factor(logp);
                    g[c] = k * (p * r_sum - r);
                }
            }
        }
        return static_cast<T>(total * double(inv_batch));
    }

    /// Directional derivative of L along logit direction s_dot (and, for soft targets, along
    /// target direction t_dot, which may be null).
    template <class Targets>
    T tangent(const T* logits, const T* logits_dot, std::size_t batch, std::size_t classes, const Targets& targets,
              const T* weights = nullptr, const T* targets_dot = nullptr) const {
        check_targets(targets, batch, classes);
        double total = 0;
        for (std::size_t i = 0; i < batch; ++i) {
            const T* s = logits + i * classes;
            const T* sd = logits_dot + i * classes;
            const T lse = log_sum_exp(s, classes);
            const T w = weights ? weights[i] : T(1);
            T r_sum = 0;
            for (std::size_t c = 0; c < classes; ++c) {
                const T t = target(targets, i, c, classes);
                if (t != T(0)) r_sum += t * r_factor(s[c] - lse);
            }
            double row = 0;
            for (std::size_t c = 0; c < classes; ++c) {
                const T logp = s[c] - lse;
                const T t = target(targets, i, c, classes);
                const T r = t == T(0) ? T(0) : t * r_factor(logp);
                row += double(std::exp(logp) * r_sum - r) * double(sd[c]);
                if (targets_dot) row -= double(focal_factor(logp) * logp) * double(targets_dot[i * classes + c]);
            }
            total += double(w) * row;
        }
        return static_cast<T>(batch ? total / double(batch) : 0.0);
    }

    /// The tangent of value_and_gradient's dlogits along a logit direction s_dot, targets and
    /// weights fixed: ġ = D_s(scale·∂L/∂s)·ṡ (batch x C, overwritten) — the upstream tangent of an
    /// exact Hessian-vector product (nn::multi_task::backward_tangent).  With u = log p,
    /// g_c = k(p_c R − r_c), r_c = t_c ρ(u_c), R = Σ r_c:  u̇_c = ṡ_c − ⟨p, ṡ⟩, ṗ_c = p_c u̇_c,
    /// ṙ_c = t_c ρ'(u_c) u̇_c, ġ_c = k(ṗ_c R + p_c Ṙ − ṙ_c)  (γ = 0: ġ = k R (p ⊙ u̇)).
    template <class Targets>
    void gradient_tangent(const T* logits, const T* logits_dot, std::size_t batch, std::size_t classes, const Targets& targets,
                          const T* weights, T* dlogits_dot, T scale = T(1)) const {
        check_targets(targets, batch, classes);
        const T inv_batch = batch ? T(1) / T(batch) : T(0);
        for (std::size_t i = 0; i < batch; ++i) {
            const T* s = logits + i * classes;
            const T* sd = logits_dot + i * classes;
            T* gd = dlogits_dot + i * classes;
            const T lse = log_sum_exp(s, classes);
            const T k = scale * (weights ? weights[i] : T(1)) * inv_batch;
            T mean_dot = 0;
            for (std::size_t c = 0; c < classes; ++c) mean_dot += std::exp(s[c] - lse) * sd[c];
            T r_sum = 0, r_sum_dot = 0;
            for (std::size_t c = 0; c < classes; ++c) {
                const T t = target(targets, i, c, classes);
                if (t == T(0)) continue;
                const T logp = s[c] - lse;
                r_sum += t * r_factor(logp);
                r_sum_dot += t * r_factor_slope(logp) * (sd[c] - mean_dot);
            }
            for (std::size_t c = 0; c < classes; ++c) {
                const T logp = s[c] - lse;
                const T p = std::exp(logp);
                const T u_dot = sd[c] - mean_dot;
                const T t = target(targets, i, c, classes);
                const T r_dot = t == T(0) ? T(0) : t * r_factor_slope(logp) * u_dot;
                gd[c] = k * (p * u_dot * r_sum + p * r_sum_dot - r_dot);
            }
        }
    }

    /// c_ic = ∂L/∂t_ic = −(w_i/B)(1 − p_ic)^γ log p_ic  (batch x C, overwritten).
    void target_coefficients(const T* logits, std::size_t batch, std::size_t classes, T* c,
                             const T* weights = nullptr) const {
        const T inv_batch = batch ? T(1) / T(batch) : T(0);
        for (std::size_t i = 0; i < batch; ++i) {
            const T* s = logits + i * classes;
            const T lse = log_sum_exp(s, classes);
            const T k = (weights ? weights[i] : T(1)) * inv_batch;
            for (std::size_t a = 0; a < classes; ++a) {
                const T logp = s[a] - lse;
                c[i * classes + a] = -k * focal_factor(logp) * logp;
            }
        }
    }

    /// ċ = D_s c · s_dot: how the target coefficients move along a logit direction (overwritten).
    /// With u = log p: u̇_a = ṡ_a − Σ_b p_b ṡ_b, ṗ_a = p_a u̇_a, and
    /// ċ_a = −(w/B)[(1 − p_a)^γ u̇_a − γ (1 − p_a)^(γ−1) ṗ_a log p_a].
    void target_coefficients_tangent(const T* logits, const T* logits_dot, std::size_t batch, std::size_t classes,
                                     T* c_dot, const T* weights = nullptr) const {
        const T inv_batch = batch ? T(1) / T(batch) : T(0);
        for (std::size_t i = 0; i < batch; ++i) {
            const T* s = logits + i * classes;
            const T* sd = logits_dot + i * classes;
            const T lse = log_sum_exp(s, classes);
            const T k = (weights ? weights[i] : T(1)) * inv_batch;
            T mean_dot = 0;
            for (std::size_t b = 0; b < classes; ++b) mean_dot += std::exp(s[b] - lse) * sd[b];
            for (std::size_t a = 0; a < classes; ++a) {
                const T logp = s[a] - lse;
                const T u_dot = sd[a] - mean_dot;
                // d[(1−p)^γ log p] = (1−p)^γ u̇ − γ(1−p)^(γ−1) p u̇ log p = r_factor(log p) · u̇
                c_dot[i * classes + a] = -k * r_factor(logp) * u_dot;
            }
        }
    }

private:
    static T log_sum_exp(const T* s, std::size_t n) {
        T m = s[0];
        for (std::size_t c = 1; c < n; ++c) m = std::max(m, s[c]);
        T sum = 0;
        for (std::size_t c = 0; c < n; ++c) sum += std::exp(s[c] - m);
        return m + std::log(sum);
    }

    // (1 − p)^γ, computed from log p; 1 − p = −expm1(log p) keeps precision when p → 1.
    T focal_factor(T logp) const {
        if (gamma_ == T(0)) return T(1);
        return std::pow(-std::expm1(logp), gamma_);
    }

    // d/du [(1 − p)^γ u] with u = log p, p = e^u:  (1 − p)^γ − γ (1 − p)^(γ−1) p u.
    T r_factor(T logp) const {
        if (gamma_ == T(0)) return T(1);
        const T q = -std::expm1(logp);  // 1 − p
        const T p = std::exp(logp);
        const T second = q > T(0) ? gamma_ * std::pow(q, gamma_ - T(1)) * p * logp : T(0);
        return std::pow(q, gamma_) - second;
    }

    // ρ'(u) = dρ/du for ρ = r_factor, q = 1 − p:  −2γ p q^(γ−1) − γ p u q^(γ−1) + γ(γ−1) p² u q^(γ−2)
    // (0 for plain cross-entropy; at p = 1 the terms are dropped, as in r_factor).
    T r_factor_slope(T logp) const {
        if (gamma_ == T(0)) return T(0);
        const T q = -std::expm1(logp);
        if (!(q > T(0))) return T(0);
        const T p = std::exp(logp);
        const T q1 = std::pow(q, gamma_ - T(1));
        return -T(2) * gamma_ * p * q1 - gamma_ * p * logp * q1 + gamma_ * (gamma_ - T(1)) * p * p * logp * q1 / q;
    }

    static T target(const hard_targets& t, std::size_t i, std::size_t c, std::size_t) {
        return static_cast<std::size_t>(t.labels[i]) == c ? T(1) : T(0);
    }
    static T target(const soft_targets<T>& t, std::size_t i, std::size_t c, std::size_t classes) {
        return t.values[i * classes + c];
    }

    static void check_targets(const hard_targets& t, std::size_t batch, std::size_t classes) {
        for (std::size_t i = 0; i < batch; ++i) {
            if (t.labels[i] < 0 || static_cast<std::size_t>(t.labels[i]) >= classes) {
                raise<value_error>("auxl::loss::softmax_cross_entropy: label ", t.labels[i], " in row ", i,
                                   " is outside [0, ", classes, ")");
            }
        }
    }
    static void check_targets(const soft_targets<T>&, std::size_t, std::size_t) {}

    T gamma_ = T(0);
};

}  // namespace auxl::loss
