// auxl/train/concepts.hpp — the contracts of the trainer's policies.
//
// A trainer<Model, Generator, Weighting, Optimizer> checks each argument against the concept
// below with a static_assert whose message names the concept and what it needs, so a wrong
// policy fails with one readable sentence rather than pages of template errors.
//
// Model          nn::basic_multi_task-like: task 0 is the primary head, tasks 1..K auxiliary.
// LabelGenerator name(), auxiliary_tasks (how many auxiliary heads it feeds), prepare(setup),
//                generate(batch, targets).  Optional: visit_state(visitor) for checkpoints,
//                after_step(...) meta-updates (MAXL, RL-AUX, DTG).
// WeightingRule  name(), needs_task_gradients; prepare(ranges, K); then either
//                auxiliary_weight(k) (one joint backward) or combine(rows, ranges, out) (one
//                gradient row per task); last_weights(); metric_names()/metric_values().
// Optimizer      step(params, grad), learning_rate(), set_learning_rate(lr), visit_state(visitor).
// Callback       at least one of on_fit_begin(plan), on_step_end(report), on_epoch_end(report),
//                on_fit_end(report) — each may also take the trainer as a second argument, and
//                may return bool (true = stop training).
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string>

#include "auxl/core/arena.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/data/hierarchy.hpp"
#include "auxl/nn/block.hpp"
#include "auxl/train/types.hpp"

namespace auxl::train {

/// What a generator learns about its surroundings before training.
struct generator_setup {
    const data::hierarchy* hierarchy = nullptr;
    std::size_t max_batch = 0;
    std::span<const std::size_t> head_widths;  ///< width of every head; [0] is the primary
    std::uint64_t seed = 0;
    std::size_t input_size = 0;                ///< values per example the model takes
};

template <class M>
concept Model = requires(M& m, const M& cm, const typename M::scalar_type* x, std::size_t n, rng& gen,
                         arena<typename M::scalar_type>& a) {
    typename M::scalar_type;
    { M::task_count } -> std::convertible_to<std::size_t>;
    { M::input_size } -> std::convertible_to<std::size_t>;
    { M::parameter_count } -> std::convertible_to<std::size_t>;
    { M::trunk_parameter_count } -> std::convertible_to<std::size_t>;
    M::head_widths;
    M::head_offsets;
    m.init(gen);
    m.reserve(n);
    m.forward(x, n, nn::pass_options{});
    { cm.output(n) } -> std::convertible_to<const typename M::scalar_type*>;
    m.backward_head(n, x, a);
    m.parameters();
    cm.layout();
};

template <class G>
concept LabelGenerator = requires(G& g, const G& cg, const generator_setup& setup, const batch<float>& b,
                                  std::span<auxiliary_targets<float>> targets) {
    { cg.name() } -> std::convertible_to<std::string>;
    { G::auxiliary_tasks } -> std::convertible_to<std::size_t>;
    g.prepare(setup);
    g.generate(b, targets);
};

template <class W>
concept WeightingRule = requires(W& w, const W& cw, const parameter_ranges& ranges, std::size_t k) {
    { W::name() } -> std::convertible_to<std::string>;
    { W::needs_task_gradients } -> std::convertible_to<bool>;
    w.prepare(ranges, k);
    { cw.last_weights() } -> std::convertible_to<std::span<const double>>;
    { cw.metric_names() } -> std::convertible_to<std::span<const std::string>>;
    { cw.metric_values() } -> std::convertible_to<std::span<const double>>;
} && (W::needs_task_gradients ? (requires { W::needs_trainer_in_combine; } ||
                                 requires(W& w, const float* rows, const parameter_ranges& ranges, float* out) {
                                     w.combine(rows, ranges, out);
                                 })
                              : requires(const W& cw, std::size_t k) {
    { cw.auxiliary_weight(k) } -> std::convertible_to<double>;
});

template <class O>
concept Optimizer = requires(O& o, const O& co, arena<typename O::scalar_type>& p, const arena<typename O::scalar_type>& g,
                             double lr) {
    typename O::scalar_type;
    o.step(p, g);
    { co.learning_rate() } -> std::convertible_to<double>;
    o.set_learning_rate(lr);
};

namespace detail {
template <class C>
concept has_fit_begin = requires(C& c, const fit_plan& p) { c.on_fit_begin(p); };
template <class C>
concept has_step_end = requires(C& c, const step_report& r) { c.on_step_end(r); };
template <class C>
concept has_epoch_end = requires(C& c, const epoch_report& r) { c.on_epoch_end(r); };
template <class C>
concept has_fit_end = requires(C& c, const epoch_report& r) { c.on_fit_end(r); };
template <class C>
concept has_trainer_hook = requires { typename C::wants_trainer; };
}  // namespace detail

/// At least one recognised hook, so a misspelt hook is an error rather than silence.
template <class C>
concept Callback = detail::has_fit_begin<C> || detail::has_step_end<C> || detail::has_epoch_end<C> ||
                   detail::has_fit_end<C> || detail::has_trainer_hook<C>;

}  // namespace auxl::train
