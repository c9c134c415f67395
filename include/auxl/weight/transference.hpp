// auxl/weight/transference.hpp — lookahead transference (IT-MTL, Fifty et al. 2020/2021; auxiliary
// form as in ALGORITHMS.md §6 and §8.7).
//
// Each step, with G = ∇L_pri and V_k = ∇L_aux,k on the shared trunk, the candidate update
// directions are: G (primary only), G + Σ_k V_k (all auxiliaries), G + V_k for each k, and
// optionally the GCS direction G + Σ_k max(0, cos(G, V_k)) V_k.  For each candidate the trainer's
// optimizer takes a virtual step of the shared trunk with its own rule (momentum, weight decay,
// Adam moments; state untouched) while the heads stay where they are (as TAG's lookahead:
// ALGORITHMS.md §6), the primary loss is evaluated on the same batch with the same dropout masks,
// and the candidate with the lowest lookahead loss is applied.  Heads always get their own task's
// gradient.  Logged: the transference of each auxiliary onto the primary,
//   Z_k = (1 − L_pri(after a step along V_k alone) / L_pri(now)) / η,
// and which candidate won.  Cost: per-task gradient rows plus one forward per candidate and one
// per auxiliary (for Z), on the trainer's scratch copy of the network.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/meta/lookahead.hpp"
#include "auxl/train/types.hpp"

namespace auxl::weight {

struct transference_options {
    bool include_gcs_candidate = false;  ///< also try the GCS-weighted direction
    bool log_transference = true;        ///< compute Z_k (one extra forward per auxiliary)
};

class transference {
public:
    static const char* name() { return "transference"; }
    static constexpr bool needs_task_gradients = true;
    static constexpr bool needs_trainer_in_combine = true;
    /// Data-parallel: the rows are global; each lookahead loss is averaged over the processes.
    static constexpr bool distributed_ready = true;

    transference() : transference(transference_options{}) {}
    explicit transference(transference_options o) : opts_(o) {}

    void prepare(const train::parameter_ranges&, std::size_t auxiliary_tasks) {
        K_ = auxiliary_tasks;
        candidate_names_ = {"primary"};
        if (K_ > 1) candidate_names_.push_back("all");
        for (std::size_t k = 0; k < K_; ++k) candidate_names_.push_back(numbered("aux", k + 1));
        if (opts_.include_gcs_candidate) candidate_names_.push_back("gcs");
        names_.clear();
        for (std::size_t k = 0; k < K_; ++k) names_.push_back(numbered("Z", k + 1));
        for (const auto& c : candidate_names_) {
            std::string n = "chose_";
            n += c;
            names_.push_back(std::move(n));
        }
        values_.assign(names_.size(), 0.0);
        weights_.assign(K_, 0.0);
        candidate_weights_.assign(candidate_names_.size() * std::max<std::size_t>(K_, 1), 0.0);
    }

    /// rows: K+1 gradient rows at θ; out receives the chosen direction.
    template <class Trainer, class T>
    void combine_with(Trainer& trainer, const T* rows, const train::parameter_ranges& ranges, T* out) {
        const std::size_t P = ranges.total, S = ranges.trunk_size;
        auto& scratch = trainer.scratch_model();
        const auto& b = trainer.last_batch();
        const double now = trainer.last_losses()[0];
        const double eta = trainer.optimizer().learning_rate();
        auto& direction = buffer<T>();
        direction.ensure_size(P);
        // Each candidate is a weight per auxiliary on its trunk gradient.
        std::fill(candidate_weights_.begin(), candidate_weights_.end(), 0.0);
        std::size_t c = 1;  // candidate 0: primary only (all weights 0)
        if (K_ > 1) {
            for (std::size_t k = 0; k < K_; ++k) candidate_weights_[c * K_ + k] = 1.0;
            ++c;
        }
        for (std::size_t k = 0; k < K_; ++k, ++c) candidate_weights_[c * K_ + k] = 1.0;
        if (opts_.include_gcs_candidate) {
            for (std::size_t k = 0; k < K_; ++k) {
                const T* v = rows + (k + 1) * P;
                double gv = 0, gg = 0, vv = 0;
                for (std::size_t i = 0; i < S; ++i) {
                    gv += double(rows[i]) * double(v[i]);
                    gg += double(rows[i]) * double(rows[i]);
                    vv += double(v[i]) * double(v[i]);
                }
                candidate_weights_[c * K_ + k] = gg > 0 && vv > 0 ? std::max(0.0, gv / std::sqrt(gg * vv)) : 0.0;
            }
        }
        // Lookahead primary loss of each candidate.
        double best = std::numeric_limits<double>::infinity();
        std::size_t chosen = 0;
        for (std::size_t cand = 0; cand < candidate_names_.size(); ++cand) {
            build_direction(rows, ranges, std::span<const double>(candidate_weights_.data() + cand * K_, K_), direction.data());
            const double loss = lookahead_primary_loss(trainer, scratch, b, direction);
            if (loss < best) {
                best = loss;
                chosen = cand;
            }
        }
        build_direction(rows, ranges, std::span<const double>(candidate_weights_.data() + chosen * K_, K_), out);
        for (std::size_t k = 0; k < K_; ++k) weights_[k] = candidate_weights_[chosen * K_ + k];
        for (std::size_t i = K_; i < values_.size(); ++i) values_[i] = 0.0;
        values_[K_ + chosen] = 1.0;

        // Transference of each auxiliary: a step along V_k alone on the trunk.
        if (opts_.log_transference) {
            for (std::size_t k = 0; k < K_; ++k) {
                std::fill(direction.begin(), direction.end(), T(0));
                const T* v = rows + (k + 1) * P;
                std::copy_n(v, S, direction.data());
                const double after = lookahead_primary_loss(trainer, scratch, b, direction);
                values_[k] = now > 0 ? (1.0 - after / now) / eta : 0.0;
            }
        }
    }

    /// Mean transference of each auxiliary since the last reset (the analysis tool's affinity).
    std::span<const double> last_transference() const { return std::span<const double>(values_.data(), K_); }

    std::span<const double> last_weights() const { return weights_; }
    std::span<const std::string> metric_names() const { return names_; }
    std::span<const double> metric_values() const { return values_; }
    std::span<const std::string> candidates() const { return candidate_names_; }

private:
    // prefix + number, appended (g++ 12 warns falsely on "literal" + std::string).
    static std::string numbered(const char* prefix, std::size_t k) {
        std::string n = prefix;
        n += std::to_string(k);
        return n;
    }

    // Primary row everywhere, plus w_k · V_k on the trunk and V_k on auxiliary head k.
    template <class T>
    void build_direction(const T* rows, const train::parameter_ranges& ranges, std::span<const double> w, T* out) const {
        const std::size_t P = ranges.total, S = ranges.trunk_size;
        std::copy_n(rows, P, out);
        for (std::size_t k = 0; k < K_; ++k) {
            const T* v = rows + (k + 1) * P;
            if (w[k] != 0.0) {
                for (std::size_t i = 0; i < S; ++i) out[i] += T(w[k]) * v[i];
            }
            const std::size_t h0 = ranges.head_offset[k + 1], h1 = h0 + ranges.head_size[k + 1];
            for (std::size_t i = h0; i < h1; ++i) out[i] += v[i];
        }
    }

    template <class Trainer, class Model, class T>
    double lookahead_primary_loss(Trainer& trainer, Model& scratch, const train::batch<T>& b, const arena<T>& direction) {
        auto& model = trainer.model();
        const std::size_t P = Model::parameter_count;
        meta::lookahead(trainer.optimizer(), std::span<const T>(model.parameters().data(), P),
                        std::span<const T>(direction.data(), P), std::span<T>(scratch.parameters().data(), P));
        // Only the trunk moves: the heads keep θ_j^t, so candidates differ only in what they do
        // to the shared representation (the arena stores the trunk first, then the heads).
        const std::size_t S = Model::trunk_parameter_count;
        std::copy(model.parameters().data() + S, model.parameters().data() + P, scratch.parameters().data() + S);
        scratch.copy_masks_from(model);
        scratch.forward(b.inputs, b.size, trainer.reuse_masks());
        const double local = trainer.loss().value_and_gradient(scratch.output(0), b.size, Model::head_widths[0], loss::hard_targets{b.primary});
        return trainer.reducer().average(local);
    }

    transference_options opts_;
    std::size_t K_ = 0;
    std::vector<std::string> candidate_names_, names_;
    std::vector<double> values_, weights_, candidate_weights_;
    arena<float> direction_float_;
    arena<double> direction_double_;
    template <class T>
    arena<T>& buffer() {
        if constexpr (std::is_same_v<T, float>) return direction_float_;
        else return direction_double_;
    }
};

}  // namespace auxl::weight
