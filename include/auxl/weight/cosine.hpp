// auxl/weight/cosine.hpp — gradient cosine similarity (GCS, Du et al. 2018; ALGORITHMS.md §3).
//
// With G = ∇_shared L_pri and V_k = ∇_shared L_aux,k (gradients of the shared trunk only, the
// cosine taken over the whole flattened trunk), the shared update direction is
//   weighted  (default, the paper's headline rule):  D = G + λ Σ_k max(0, cos(G, V_k)) V_k
//   gated     (the variant AuxiLearn/MAOAL re-implement): D = G + λ Σ_k 1[cos(G, V_k) > 0] V_k
// Each auxiliary is tested independently against the primary gradient.  The primary head gets
// ∇L_pri, auxiliary head k gets λ ∇L_aux,k (its loss cannot affect the primary loss through it).
// Since ⟨G, D⟩ = ‖G‖² + λ Σ c_k ⟨G, V_k⟩ ≥ ‖G‖², D is a descent direction for the primary loss.
// Needs one gradient row per task: cost F + (K+1)·B per step, plus O((K+1)·P) dot products.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/train/types.hpp"

namespace auxl::weight {

enum class cosine_variant { weighted, gated };

template <cosine_variant Variant = cosine_variant::weighted>
class basic_cosine {
public:
    static const char* name() { return Variant == cosine_variant::weighted ? "cosine" : "cosine-gate"; }
    static constexpr bool needs_task_gradients = true;

    basic_cosine() : basic_cosine(1.0) {}
    explicit basic_cosine(double auxiliary_weight) : lambda_(auxiliary_weight) {
        if (!(auxiliary_weight >= 0)) raise<config_error>("auxl::weight::cosine: auxiliary weight must be >= 0, got ", auxiliary_weight);
    }

    void prepare(const train::parameter_ranges&, std::size_t auxiliary_tasks) {
        weights_.assign(auxiliary_tasks, 0.0);
        cosines_.assign(auxiliary_tasks, 0.0);
        names_.clear();
        for (std::size_t k = 0; k < auxiliary_tasks; ++k) names_.push_back("cosine" + std::to_string(k + 1));
    }

    /// cos(a, b) over n values; 0 when either is the zero vector.
    template <class T>
    static double cosine_similarity(const T* a, const T* b, std::size_t n) {
        double ab = 0, aa = 0, bb = 0;
        for (std::size_t i = 0; i < n; ++i) {
            ab += double(a[i]) * double(b[i]);
            aa += double(a[i]) * double(a[i]);
            bb += double(b[i]) * double(b[i]);
        }
        if (aa == 0 || bb == 0) return 0.0;
        return std::clamp(ab / std::sqrt(aa * bb), -1.0, 1.0);
    }

    /// The weight a cosine earns under this variant (before λ).
    static double weight_for(double cosine) {
        if constexpr (Variant == cosine_variant::weighted) {
            return std::max(0.0, cosine);
        } else {
            return cosine > 0 ? 1.0 : 0.0;
        }
    }

    /// rows: K+1 arena-sized gradient rows (row 0 primary).  out (arena-sized) receives the update.
    template <class T>
    void combine(const T* rows, const train::parameter_ranges& ranges, T* out) {
        const std::size_t P = ranges.total;
        std::copy_n(rows, P, out);  // primary: trunk and primary head (zero on auxiliary heads)
        for (std::size_t k = 0; k < weights_.size(); ++k) {
            const T* v = rows + (k + 1) * P;
            cosines_[k] = cosine_similarity(rows, v, ranges.trunk_size);
            weights_[k] = weight_for(cosines_[k]);
            const T trunk_scale = T(lambda_ * weights_[k]);
            if (trunk_scale != T(0)) {
                for (std::size_t i = 0; i < ranges.trunk_size; ++i) out[i] += trunk_scale * v[i];
            }
            const std::size_t h0 = ranges.head_offset[k + 1], h1 = h0 + ranges.head_size[k + 1];
            for (std::size_t i = h0; i < h1; ++i) out[i] += T(lambda_) * v[i];
        }
    }

    double lambda() const { return lambda_; }
    std::span<const double> last_weights() const { return weights_; }
    std::span<const double> last_cosines() const { return cosines_; }
    std::span<const std::string> metric_names() const { return names_; }
    std::span<const double> metric_values() const { return cosines_; }

private:
    double lambda_;
    std::vector<double> weights_;
    std::vector<double> cosines_;
    std::vector<std::string> names_;
};

using cosine = basic_cosine<cosine_variant::weighted>;
using cosine_gate = basic_cosine<cosine_variant::gated>;

}  // namespace auxl::weight
