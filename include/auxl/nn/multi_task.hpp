// auxl/nn/multi_task.hpp — shared trunk + one head per task, in one parameter arena.
//
//   using model = nn::multi_task<trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>>;
//
// nn::basic_multi_task<T, Trunk, Heads...> (nn::multi_task = float) runs the trunk once and every
// head on its features.  Arena order: trunk modules, then head 0, head 1, ... (so "the trunk"
// is the prefix [0, trunk_parameter_count) of every arena — per-task trunk gradients are rows of
// a K x P matrix over that prefix).
//
// Backward takes one upstream gradient per head (null = task not in this backward) and adds
// into a caller-chosen gradient arena: backward_head(k, ...) into task k's own arena gives the
// per-task gradients that cosine / module-aware rules need, and the per-task arenas sum to the
// joint backward exactly (a test checks it).  Requirements: Trunk is an nn::sequential, Heads are
// nn::head<...>.  Cost: one trunk pass plus each head's; the joint backward runs the trunk
// backward once however many heads contribute.
#pragma once

#include <array>
#include <cstddef>
#include <ostream>
#include <span>
#include <string>

#include <boost/hana/at.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/range.hpp>
#include <boost/hana/tuple.hpp>

#include "auxl/core/arena.hpp"
#include "auxl/nn/input_check.hpp"
#include "auxl/nn/sequential.hpp"

namespace auxl::nn {

template <class T, class Trunk, class... Heads>
class basic_multi_task {
    static_assert(std::is_floating_point_v<T>, "auxl::nn::basic_multi_task: the scalar type must be float or double");
    static_assert(sizeof...(Heads) >= 1, "auxl::nn::multi_task needs at least one head");

public:
    using scalar_type = T;
    using trunk_spec = Trunk;
    using trunk_type = typename Trunk::template block_type<T>;
    using input_shape = typename trunk_type::input_shape;
    using feature_shape = typename trunk_type::output_shape;
    static constexpr std::size_t task_count = sizeof...(Heads);
    static constexpr std::size_t input_size = input_shape::size;
    static constexpr std::size_t feature_size = feature_shape::size;
    static constexpr std::size_t trunk_parameter_count = trunk_type::parameter_count;

    /// Output width of each head.
    static constexpr std::array<std::size_t, task_count> head_widths{
        Heads::template block_type<T, feature_shape>::output_size...};
    /// Parameters of each head (padding included).
    static constexpr std::array<std::size_t, task_count> head_sizes{
        Heads::template block_type<T, feature_shape>::parameter_count...};
    /// Arena offset of each head's first parameter.
    static constexpr std::array<std::size_t, task_count> head_offsets = [] {
        std::array<std::size_t, task_count> result{};
        std::size_t running = trunk_parameter_count;
        std::size_t k = 0;
        ((result[k++] = running, running += Heads::template block_type<T, feature_shape>::parameter_count), ...);
        return result;
    }();
    static constexpr std::size_t parameter_count =
        trunk_parameter_count + (std::size_t{0} + ... + Heads::template block_type<T, feature_shape>::parameter_count);

    /// Whether the trunk or a head runs on auxl's workers (a convolution); then every pass keeps
    /// OpenBLAS's pool idle (core/worker_gemm.hpp), and so does a trainer's step.
    static constexpr bool runs_on_workers =
        trunk_type::runs_on_workers || (Heads::template block_type<T, feature_shape>::runs_on_workers || ...);

    explicit basic_multi_task(std::size_t max_batch = 256) : params_(parameter_count) {
        trunk_.describe(layout_, "trunk", 0);
        for_each_head([&](auto k, auto& h) { h.describe(layout_, "head" + std::to_string(k()), head_offsets[k]); });
        layout_.set_size(parameter_count);
        reserve(max_batch);
    }

    void reserve(std::size_t max_batch) {
        trunk_.reserve(max_batch);
        for_each_head([&](auto, auto& h) { h.reserve(max_batch); });
        feature_grad_ = xt::xtensor<T, 2>::from_shape({max_batch, feature_size});
    }
    std::size_t max_batch() const { return trunk_.max_batch(); }

    void init(rng& gen, init_scheme scheme = init_scheme::he_uniform) {
        trunk_.init(params_.data(), gen, scheme);
        for_each_head([&](auto k, auto& h) { h.init(params_.data() + head_offsets[k], gen, scheme); });
    }

    arena<T>& parameters() { return params_; }
    const arena<T>& parameters() const { return params_; }
    const arena_layout& layout() const { return layout_; }
    arena<T> make_arena() const { return arena<T>(parameter_count); }

    /// Trunk then every head on x (batch x input_size, row-major; referenced until the next forward).
    void forward(const T* x, std::size_t batch, const pass_options& options = {}) {
        detail::check_finite(x, batch, input_size, "auxl::nn::multi_task::forward", "input");
        const products_on_workers_scope scope(runs_on_workers);
        const T* z = trunk_.forward(params_.data(), x, batch, options);
        for_each_head([&](auto k, auto& h) {
            outputs_[k] = h.forward(params_.data() + head_offsets[k], z, batch, options);
        });
    }

    template <class Container>
    void forward(const Container& x, const pass_options& options = {}) {
        const std::size_t batch = detail::checked_batch(x, input_size, "auxl::nn::multi_task::forward");
        forward(x.data(), batch, options);
    }

    std::size_t batch() const { return trunk_.batch(); }
    /// Head k's output of the last forward, batch x head_widths[k].
    const T* output(std::size_t k) const { return outputs_.at(k); }
    /// Trunk features of the last forward, batch x feature_size.
    const T* features() const { return trunk_.output(); }

    /// Joint backward: dy[k] is head k's upstream gradient (batch x head_widths[k]) or null.
    /// Adds parameter gradients into grad and, if dx is given, the input gradient into dx.
    void backward(const std::array<const T*, task_count>& dy, arena<T>& grad, T* dx = nullptr) {
        backward(dy, grad.span(), dx);
    }

    /// Same, into any arena-shaped span (e.g. one row of a K x P gradient matrix).
    void backward(const std::array<const T*, task_count>& dy, std::span<T> grad, T* dx = nullptr) {
        if (grad.size() != parameter_count) {
            raise<shape_error>("auxl::nn::multi_task: gradient span has ", grad.size(), " elements, the arena has ", parameter_count);
        }
        backward_impl(dy, grad.data(), dx);
    }

    /// Task k alone (its head and the trunk) into grad — e.g. task k's gradient row.
    void backward_head(std::size_t k, const T* dy, arena<T>& grad, T* dx = nullptr) { backward_head(k, dy, grad.span(), dx); }

    void backward_head(std::size_t k, const T* dy, std::span<T> grad, T* dx = nullptr) {
        if (k >= task_count) raise<shape_error>("auxl::nn::multi_task: task ", k, " requested, the model has ", task_count);
        std::array<const T*, task_count> only{};
        only[k] = dy;
        backward(only, grad, dx);
    }

    /// Trunk modules (layers with parameters), in layer order: the columns of backward_weighted's
    /// coefficients and the trunk entries of layout().modules().
    static constexpr std::size_t trunk_module_count = trunk_type::module_count;

    /// Σ_k backward_head(k, dy[k]) with trunk module j of task k's gradient scaled by
    /// coefficients[k·trunk_module_count + j] (heads unscaled), added into grad — the lower-level
    /// direction of a module-wise weighting rule (weight::module_aware) in one pass: each task's
    /// gradient still runs down the trunk on its own, but every trunk module makes one
    /// weight-gradient product from the tasks' weighted sum, where separate rows make one per task
    /// (and the first layer of an MLP, which needs no input gradient, only that one).
    void backward_weighted(const std::array<const T*, task_count>& dy, std::span<const T> coefficients, std::span<T> grad) {
        if (grad.size() != parameter_count) {
            raise<shape_error>("auxl::nn::multi_task: gradient span has ", grad.size(), " elements, the arena has ", parameter_count);
        }
        if (coefficients.size() != task_count * trunk_module_count) {
            raise<shape_error>("auxl::nn::multi_task::backward_weighted: ", coefficients.size(), " coefficients, expected ",
                               task_count, " tasks x ", trunk_module_count, " trunk modules");
        }
        const std::size_t batch = trunk_.batch();
        const products_on_workers_scope scope(runs_on_workers);
        std::array<const T*, task_count> streams{};
        for_each_head([&](auto k, auto& h) {
            if (!dy[k]) return;
            constexpr std::size_t task = decltype(k)::value;
            if (task != 0 && feature_streams_[task].size() != feature_grad_.size())
                feature_streams_[task] = xt::xtensor<T, 2>::from_shape(feature_grad_.shape());
            T* features = task == 0 ? feature_grad_.data() : feature_streams_[task].data();
            std::fill_n(features, batch * feature_size, T(0));
            h.backward(params_.data() + head_offsets[k], grad.data() + head_offsets[k], dy[k], features);
            streams[k] = features;
        });
        trunk_.backward_weighted(params_.data(), grad.data(), std::span<const T* const>(streams.data(), task_count), coefficients);
    }

    /// Backward without a parameter gradient: only the upstream gradients between layers (which
    /// backward_tangent reads) and, if dx is given, the input gradient.  Cheaper than backward when
    /// only second-order products are wanted (no weight-gradient products).
    void backward_input(const std::array<const T*, task_count>& dy, T* dx = nullptr) { backward_impl(dy, nullptr, dx); }

    /// JVP at the last forward.  param_tangent (or null) is an arena-shaped direction, x_dot (or
    /// null) an input direction.  Afterwards output_tangent(k) holds each head's output tangent.
    void tangent(const arena<T>* param_tangent, const T* x_dot = nullptr) {
        if (param_tangent) check_arena_size(*param_tangent, parameter_count, "tangent arena");
        const T* pt = param_tangent ? param_tangent->data() : nullptr;
        const products_on_workers_scope scope(runs_on_workers);
        const T* z_dot = trunk_.tangent(params_.data(), pt, x_dot);
        for_each_head([&](auto k, auto& h) {
            output_tangents_[k] = h.tangent(params_.data() + head_offsets[k], pt ? pt + head_offsets[k] : nullptr, z_dot);
        });
    }
    const T* output_tangent(std::size_t k) const { return output_tangents_.at(k); }

    /// Whether every layer of the trunk and heads has the exact second-order pass (block.hpp).
    static constexpr bool has_backward_tangent =
        trunk_type::has_backward_tangent && (Heads::template block_type<T, feature_shape>::has_backward_tangent && ...);

    /// The tangent of backward (forward-over-reverse; exact Hessian-vector products without finite
    /// differences).  Call after forward, tangent(param_tangent, x_dot) and backward(dy, …) at one
    /// point, with the same dy (null = task not in that backward) and dy_dot[k], the tangent of
    /// dy[k] (typically the loss's gradient_tangent of head k's output tangent).  Adds the
    /// parameter gradient's tangent into grad_dot and, if dx_dot is given, the input gradient's
    /// tangent (the backward must have computed dx).  param_tangent and x_dot must still hold the
    /// tangent pass's values.  An empty grad_dot skips the parameter part.  H v for a task's loss: tangent(&v), backward_head(k, dy, ·),
    /// backward_tangent_head(k, dy, dy_dot, Hv) with dy_dot = ∂(∇_out L)/∂out · output_tangent(k).
    void backward_tangent(const std::array<const T*, task_count>& dy, const std::array<const T*, task_count>& dy_dot,
                          std::span<T> grad_dot, T* dx_dot = nullptr) {
        if (!grad_dot.empty() && grad_dot.size() != parameter_count) {
            raise<shape_error>("auxl::nn::multi_task: gradient tangent span has ", grad_dot.size(), " elements, the arena has ",
                               parameter_count);
        }
        T* gd = grad_dot.empty() ? nullptr : grad_dot.data();
        const std::size_t batch = trunk_.batch();
        const products_on_workers_scope scope(runs_on_workers);
        if (feature_grad_dot_.size() != feature_grad_.size()) feature_grad_dot_ = xt::xtensor<T, 2>::from_shape(feature_grad_.shape());
        std::fill_n(feature_grad_dot_.data(), batch * feature_size, T(0));
        bool any = false;
        for_each_head([&](auto k, auto& h) {
            if (!dy[k]) return;
            if (!dy_dot[k]) raise<value_error>("auxl::nn::multi_task::backward_tangent: head ", k(), " has dy but no dy_dot");
            any = true;
            h.backward_tangent(params_.data() + head_offsets[k], gd ? gd + head_offsets[k] : nullptr, dy[k], dy_dot[k],
                               feature_grad_dot_.data());
        });
        if (any) trunk_.backward_tangent(params_.data(), gd, feature_grad_.data(), feature_grad_dot_.data(), dx_dot);
    }

    /// Task k alone: the tangent of backward_head(k, dy, ·).
    void backward_tangent_head(std::size_t k, const T* dy, const T* dy_dot, std::span<T> grad_dot, T* dx_dot = nullptr) {
        if (k >= task_count) raise<shape_error>("auxl::nn::multi_task: task ", k, " requested, the model has ", task_count);
        std::array<const T*, task_count> only{}, only_dot{};
        only[k] = dy;
        only_dot[k] = dy_dot;
        backward_tangent(only, only_dot, grad_dot, dx_dot);
    }

    /// Takes the dropout masks of another model's last forward (see block::copy_masks_from).
    void copy_masks_from(const basic_multi_task& other) {
        trunk_.copy_masks_from(other.trunk_);
        boost::hana::for_each(boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<task_count>), [&](auto k) {
            boost::hana::at(heads_, k).copy_masks_from(boost::hana::at(other.heads_, k));
        });
    }

    void summary(std::ostream& out) const {
        out << "multi_task: input " << input_shape{} << ", features " << feature_shape{} << ", heads";
        for (auto w : head_widths) out << ' ' << w;
        out << '\n';
        layout_.summary(out);
    }

private:
    using heads_tuple = boost::hana::tuple<typename Heads::template block_type<T, feature_shape>...>;

    template <class F>
    void for_each_head(F&& f) {
        boost::hana::for_each(boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<task_count>),
                              [&](auto k) { f(k, boost::hana::at(heads_, k)); });
    }

    void backward_impl(const std::array<const T*, task_count>& dy, T* grad, T* dx) {
        const std::size_t batch = trunk_.batch();
        const products_on_workers_scope scope(runs_on_workers);
        std::fill_n(feature_grad_.data(), batch * feature_size, T(0));
        bool any = false;
        for_each_head([&](auto k, auto& h) {
            if (!dy[k]) return;
            any = true;
            h.backward(params_.data() + head_offsets[k], grad ? grad + head_offsets[k] : nullptr, dy[k],
                       feature_grad_.data());
        });
        if (any) trunk_.backward(params_.data(), grad, feature_grad_.data(), dx);
    }

    arena<T> params_;
    arena_layout layout_;
    trunk_type trunk_;
    heads_tuple heads_;
    xt::xtensor<T, 2> feature_grad_;      // dL/d(features) of the last backward (backward_tangent reads it)
    xt::xtensor<T, 2> feature_grad_dot_;  // its tangent (sized at the first backward_tangent)
    std::array<xt::xtensor<T, 2>, task_count> feature_streams_;  // backward_weighted: tasks 1.. (0 uses feature_grad_)
    std::array<const T*, task_count> outputs_{};
    std::array<const T*, task_count> output_tangents_{};
};

template <class Trunk, class... Heads>
using multi_task = basic_multi_task<float, Trunk, Heads...>;

}  // namespace auxl::nn
