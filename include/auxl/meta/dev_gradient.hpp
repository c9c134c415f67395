// auxl/meta/dev_gradient.hpp — v = ∇_θ L_pri on a dev batch: the upper-level signal of the
// implicit (bi-level) methods, module-aware weighting and the DTG-style generator.
//
// Rows are taken cyclically from the trainer's dev set starting at a cursor the caller keeps (so
// successive upper steps see successive dev batches, and a checkpoint restores the position).
// Evaluation mode (no dropout); chunks of the model's batch capacity, each weighted by its share,
// so v is the mean gradient over the n rows.  Cost: n/B forward and backward passes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"

namespace auxl::meta {

/// Scratch buffers of dev_primary_gradient (reused between calls; no allocation after the first).
template <class T>
struct dev_batch_buffers {
    std::vector<T> x, dy;
    std::vector<std::int32_t> y;
};

/// v = mean ∇_θ L_pri over n dev rows from `cursor` (cyclic); returns the cursor after them.
/// `who` names the caller in the error raised when the trainer has no dev set.
template <class Trainer, class T>
std::size_t dev_primary_gradient(Trainer& trainer, std::size_t n, std::size_t cursor, arena<T>& v, dev_batch_buffers<T>& buf,
                                 const char* who) {
    auto& model = trainer.model();
    using Model = std::remove_reference_t<decltype(model)>;
    const auto* dev = trainer.dev_set();
    if (!dev || dev->size() == 0) raise<config_error>(who, ": no dev set for the upper level");
    n = std::min(n, dev->size());
    const std::size_t F = Model::input_size, chunk = model.max_batch();
    buf.x.resize(chunk * F);
    buf.y.resize(chunk);
    v.zero();
    const auto& ce = trainer.loss();
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t m = std::min(chunk, n - start);
        for (std::size_t r = 0; r < m; ++r) {
            const std::size_t row = (cursor + start + r) % dev->size();
            std::copy_n(dev->inputs.data() + row * F, F, buf.x.data() + r * F);
            buf.y[r] = trainer.hierarchy().primary_of(dev->labels[row]);
        }
        model.forward(buf.x.data(), m);
        buf.dy.resize(m * Model::head_widths[0]);
        ce.value_and_gradient(model.output(0), m, Model::head_widths[0], loss::hard_targets{buf.y.data()}, nullptr, buf.dy.data(),
                              T(double(m) / double(n)));
        model.backward_head(0, buf.dy.data(), v);
    }
    return (cursor + n) % dev->size();
}

}  // namespace auxl::meta
