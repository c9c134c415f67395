// auxl/meta/implicit.hpp — the implicit (IFT) hypergradient of a bi-level problem, as AuxiLearn
// computes it (ALGORITHMS.md §7) and the DTG-style generator uses it (§5, §8.6):
//
//   dL_up/dφ ≈ −α · M(s),   s = Σ_{j=0..J} (I − αH)^j v  ≈ (αH)⁻¹ v,
//   v = ∇_θ L_up(θ),  H = ∇²_θ L_low(θ, φ),  M(s) = ∇_φ ⟨s, ∇_θ L_low(θ, φ)⟩  (mixed product).
//
// With the leading α the result is the IFT gradient −M(H⁻¹ v) for J → ∞ (AuxiLearn's code drops α
// and lets the meta learning rate absorb 1/α; we keep it so the scale does not depend on the
// inner learning rate).  The series converges when H's spectrum lies in (0, 2/α).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "auxl/meta/hvp.hpp"

namespace auxl::meta {

/// s receives the Neumann vector; add_mixed(s, scale) must add scale·M(s) to the caller's
/// φ-gradient; apply_H(u, out) computes out = H u.  `work`: neumann()'s workspace (2·|v| scalars).
template <class T, class ApplyH, class AddMixed>
void implicit_hypergradient(std::span<const T> v, ApplyH&& apply_H, AddMixed&& add_mixed, double alpha, std::size_t terms,
                            std::span<T> s, std::span<T> work) {
    neumann(v, apply_H, alpha, terms, s, work);
    add_mixed(std::span<const T>(s.data(), s.size()), -alpha);
}

/// The same with the workspace allocated for the call.
template <class T, class ApplyH, class AddMixed>
void implicit_hypergradient(std::span<const T> v, ApplyH&& apply_H, AddMixed&& add_mixed, double alpha, std::size_t terms,
                            std::span<T> s) {
    std::vector<T> work(2 * v.size());
    implicit_hypergradient(v, apply_H, add_mixed, alpha, terms, s, std::span<T>(work));
}

}  // namespace auxl::meta
