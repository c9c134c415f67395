// auxl/meta/hvp.hpp — second-order products without autodiff (ALGORITHMS.md §8.0).
//
//   hessian_vector(params, v, gradient_at, out)   H v ≈ [∇L(w + εv) − ∇L(w − εv)] / 2ε, ε = step/‖v‖
//   neumann(v, apply_J, alpha, terms, out[, work]) s = Σ_{j=0..J} (I − αJ)^j v
//   clip_norm(g, max_norm)                         rescale g to at most max_norm
// gradient_at(out) must compute the gradient at the *current* contents of `params` into out
// (overwriting it) on a fixed batch with fixed dropout masks.  The parameters are restored from a
// saved copy, never by subtracting (exact, bit for bit).  Cost of one HVP: two gradients.
//
// `step` is the norm of the perturbation εv.  0.01 (the default) is DARTS' and MAXL's choice and
// ALGORITHMS.md §8.0's.  On ReLU networks a perturbation that large crosses activation kinks, and
// the difference quotient is then a smoothed Hessian rather than H v: against PyTorch's exact
// double-backward products (tests/python/test_torch_step.py) module-aware's hypergradient came out
// 10-51 % off at 0.01 and within 1e-3 at 1e-4, in float32 too (the rounding error of the quotient,
// about 1e-7/step relative, is still small there).
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"

namespace auxl::meta {

/// How a rule forms its Hessian-vector products.
///   exact               forward-over-reverse through the model's backward_tangent (nn/context.hpp):
///                       H v with the activation pattern held at θ, what autodiff's double
///                       backward computes; about the cost of two gradients, as central differences.
///   central_difference  hessian_vector() below, perturbation norm `hvp_step`.
///   automatic           exact when every layer of the model has backward_tangent, else central
///                       differences.
enum class hvp_method { automatic, exact, central_difference };

/// Whether a rule configured with `method` forms exact products for Model (one whose layers all
/// have backward_tangent exposes Model::has_backward_tangent = true).  `who` names the rule in the
/// error raised when exact products are demanded of a model that cannot give them.
template <class Model>
bool use_exact_products(hvp_method method, const char* who);

inline const char* to_string(hvp_method m) {
    switch (m) {
        case hvp_method::exact: return "exact";
        case hvp_method::central_difference: return "central_difference";
        default: return "automatic";
    }
}

template <class Model>
bool use_exact_products(hvp_method method, const char* who) {
    if (method == hvp_method::central_difference) return false;
    if constexpr (Model::has_backward_tangent) {
        return true;
    } else {
        if (method == hvp_method::exact)
            raise<config_error>(who, ": hvp = exact needs backward_tangent in every layer of the model (nn/context.hpp); "
                                "a layer lacks it: add it, or set hvp = central_difference");
        return false;
    }
}

template <class T>
double norm(std::span<const T> v) {
    double s = 0;
    for (T x : v) s += double(x) * double(x);
    return std::sqrt(s);
}

template <class T>
double dot(std::span<const T> a, std::span<const T> b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
    return s;
}

/// Rescales g so that ‖g‖ ≤ max_norm; returns the norm before clipping.
template <class T>
double clip_norm(std::span<T> g, double max_norm) {
    const double n = norm<T>(g);
    if (max_norm > 0 && n > max_norm) {
        const T s = T(max_norm / n);
        for (auto& x : g) x *= s;
    }
    return n;
}

/// out = H v by central differences of the gradient along v, perturbation norm `step` (out = 0
/// when v = 0).
template <class T, class GradientAt>
void hessian_vector(arena<T>& params, std::span<const T> v, GradientAt&& gradient_at, std::span<T> out,
                    arena<T>& saved, arena<T>& scratch, double step = 0.01) {
    const double n = norm(v);
    if (n == 0) {
        std::fill(out.begin(), out.end(), T(0));
        return;
    }
    const T eps = T(step / n);
    saved = params;
    scratch.ensure_size(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) params[i] = saved[i] + eps * v[i];
    gradient_at(out.data());
    for (std::size_t i = 0; i < params.size(); ++i) params[i] = saved[i] - eps * v[i];
    gradient_at(scratch.data());
    params = saved;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = (out[i] - scratch[i]) / (T(2) * eps);
}

/// s = Σ_{j=0..terms} (I − αJ)^j v, with apply_J(u, out) computing out = J u (all of out).
/// Approximates (αJ)⁻¹ v for a J whose spectrum lies in (0, 2/α).  `work` (at least 2·|v|
/// scalars, which apply_J must not touch) holds the running term and its product, so a caller
/// that keeps it allocates nothing per call.
template <class T, class ApplyJ>
void neumann(std::span<const T> v, ApplyJ&& apply_J, double alpha, std::size_t terms, std::span<T> s, std::span<T> work) {
    const std::size_t n = v.size();
    if (s.size() != n || work.size() < 2 * n)
        raise<shape_error>("auxl::meta::neumann: ", n, " parameters, but s has ", s.size(), " and the workspace ", work.size(),
                           " (needs ", 2 * n, ")");
    const std::span<T> p = work.first(n), jp = work.subspan(n, n);
    std::copy(v.begin(), v.end(), p.begin());
    std::copy(v.begin(), v.end(), s.begin());
    for (std::size_t j = 0; j < terms; ++j) {
        apply_J(std::span<const T>(p), jp);
        for (std::size_t i = 0; i < n; ++i) {
            p[i] -= T(alpha) * jp[i];
            s[i] += p[i];
        }
    }
}

/// The same with its workspace allocated for the call.
template <class T, class ApplyJ>
void neumann(std::span<const T> v, ApplyJ&& apply_J, double alpha, std::size_t terms, std::span<T> s) {
    std::vector<T> work(2 * v.size());
    neumann(v, std::forward<ApplyJ>(apply_J), alpha, terms, s, std::span<T>(work));
}

}  // namespace auxl::meta
