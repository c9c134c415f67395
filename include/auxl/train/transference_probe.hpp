// auxl/train/transference_probe.hpp — TAG-style affinity of each auxiliary task onto the primary
// task, measured during training with any composition.
//
// Every `every` steps, on the step's batch and at the parameters after the update:
//   Z_k = (1 − L_pri(after a virtual step along ∇_trunk L_aux,k) / L_pri(now)) / η
// (by default the step uses the trainer's optimizer rule with its state untouched — momentum
// included, as TAG's CelebA code does — on a scratch copy of the network, the heads kept where
// they are; with plain_step the step is θ − η ∇L_aux,k, which isolates the task's gradient from
// the optimizer's momentum).  Z_k > 0: a step on auxiliary k alone lowers the primary loss.
// Per-epoch means are
// kept in `table()` and, if a path is given, written as CSV (epoch, Z1..ZK) after every epoch.
// Cost per probe: one forward and K+1 backward passes, plus one forward per auxiliary.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/io/atomic_write.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/meta/lookahead.hpp"
#include "auxl/train/types.hpp"

namespace auxl::train {

class transference_probe {
public:
    using wants_trainer = void;

    explicit transference_probe(std::filesystem::path csv = {}, std::size_t every = 1, bool plain_step = false)
        : csv_(std::move(csv)), every_(every ? every : 1), plain_step_(plain_step) {}

    template <class Trainer>
    void on_step_end(const step_report& r, Trainer& trainer) {
        if (r.step % every_ != 0) return;
        auto& model = trainer.model();
        using Model = std::remove_reference_t<decltype(model)>;
        using T = typename Model::scalar_type;
        constexpr std::size_t K = Model::task_count - 1;
        const std::size_t P = Model::parameter_count, S = Model::trunk_parameter_count;
        const auto& b = trainer.last_batch();
        const auto targets = trainer.current_targets();
        const auto& ce = trainer.loss();
        if (sums_.size() != K) sums_.assign(K, 0.0), counts_.assign(K, 0.0);
        std::vector<T> dy;
        model.forward(b.inputs, b.size, trainer.reuse_masks());
        dy.resize(b.size * Model::head_widths[0]);
        const double now = ce.value_and_gradient(model.output(0), b.size, Model::head_widths[0], loss::hard_targets{b.primary});
        arena<T> grad(P);
        auto& scratch = trainer.scratch_model();
        for (std::size_t k = 0; k < K; ++k) {
            const auto& t = targets[k];
            if (t.type == auxiliary_targets<T>::kind::none) continue;
            model.forward(b.inputs, b.size, trainer.reuse_masks());
            dy.assign(b.size * Model::head_widths[k + 1], T(0));
            const T* w = t.weights.empty() ? nullptr : t.weights.data();
            if (t.type == auxiliary_targets<T>::kind::hard) {
                ce.value_and_gradient(model.output(k + 1), b.size, Model::head_widths[k + 1], loss::hard_targets{t.labels.data()}, w,
                                      dy.data());
            } else {
                ce.value_and_gradient(model.output(k + 1), b.size, Model::head_widths[k + 1], loss::soft_targets<T>{t.soft.data()}, w,
                                      dy.data());
            }
            grad.zero();
            model.backward_head(k + 1, dy.data(), grad);
            for (std::size_t i = S; i < P; ++i) grad[i] = T(0);  // the shared trunk only
            if (plain_step_) {
                const T eta = T(trainer.optimizer().learning_rate());
                for (std::size_t i = 0; i < P; ++i) scratch.parameters()[i] = model.parameters()[i] - eta * grad[i];
            } else {
                meta::lookahead(trainer.optimizer(), std::span<const T>(model.parameters().data(), P),
                                std::span<const T>(grad.data(), P), std::span<T>(scratch.parameters().data(), P));
                // momentum and weight decay would move the heads too: TAG keeps them at θ_j^t
                std::copy(model.parameters().data() + S, model.parameters().data() + P, scratch.parameters().data() + S);
            }
            scratch.copy_masks_from(model);
            scratch.forward(b.inputs, b.size, trainer.reuse_masks());
            const double after = ce.value_and_gradient(scratch.output(0), b.size, Model::head_widths[0], loss::hard_targets{b.primary});
            if (now > 0) {
                sums_[k] += (1.0 - after / now) / trainer.optimizer().learning_rate();
                counts_[k] += 1;
            }
        }
    }

    void on_epoch_end(const epoch_report& r) {
        std::vector<double> row{double(r.epoch)};
        for (std::size_t k = 0; k < sums_.size(); ++k) row.push_back(counts_[k] > 0 ? sums_[k] / counts_[k] : 0.0);
        table_.push_back(row);
        std::fill(sums_.begin(), sums_.end(), 0.0);
        std::fill(counts_.begin(), counts_.end(), 0.0);
        if (csv_.empty()) return;
        std::ostringstream out;
        out << "epoch";
        for (std::size_t k = 1; k < row.size(); ++k) out << ",Z" << k;
        out << '\n';
        for (const auto& rr : table_) {
            for (std::size_t i = 0; i < rr.size(); ++i) out << (i ? "," : "") << rr[i];
            out << '\n';
        }
        io::write_atomically(csv_, [&](std::ostream& f) { f << out.str(); });
    }

    /// Per epoch: {epoch, mean Z_1, ..., mean Z_K}.
    const std::vector<std::vector<double>>& table() const { return table_; }

private:
    std::filesystem::path csv_;
    std::size_t every_;
    bool plain_step_;
    std::vector<double> sums_, counts_;
    std::vector<std::vector<double>> table_;
};

}  // namespace auxl::train
