// auxl/nn/block.hpp — a chain of bound layers that runs forward, backward and tangent passes on
// spans of an arena it does not own.
//
// detail::block<T, In, Specs...> binds each layer spec to the output shape of the one before it
// (a compile-time fold), so every shape, parameter count and arena offset is constexpr and a
// mismatch stops compilation inside the offending layer with a sentence saying what to fix.  The
// bound layers live in a Hana tuple; the block owns their workspaces and the activations of the
// last forward pass (needed by backward and tangent), sized once by reserve(max_batch).
// Networks (nn::basic_network, nn::basic_multi_task) own the arenas and place blocks in them.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <boost/hana/for_each.hpp>
#include <boost/hana/range.hpp>
#include <boost/hana/reverse.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/at.hpp>

#include "auxl/core/error.hpp"
#include "auxl/core/worker_gemm.hpp"
#include "auxl/core/xtensor.hpp"
#include "auxl/nn/context.hpp"

namespace auxl::nn {

/// Run-time switches of one pass through a network.
struct pass_options {
    bool training = false;     ///< dropout active
    rng* dropout = nullptr;    ///< dropout mask stream (required when training with dropout)
    bool reuse_masks = false;  ///< reuse the previous masks (perturbed passes must see the same ones)
};

namespace detail {

template <class... Ts>
struct type_list {};

/// Binds Specs... one after another: layer i's input shape is layer i−1's output shape.
template <class T, class In, class List, class... Specs>
struct bind_chain;

template <class T, class In, class... Bound>
struct bind_chain<T, In, type_list<Bound...>> {
    using layers = type_list<Bound...>;
    using output_shape = In;
};

template <class T, class In, class... Bound, class Spec, class... Rest>
struct bind_chain<T, In, type_list<Bound...>, Spec, Rest...> {
    using bound = typename Spec::template layer<T, In>;
    using next = bind_chain<T, typename bound::output_shape, type_list<Bound..., bound>, Rest...>;
    using layers = typename next::layers;
    using output_shape = typename next::output_shape;
};

template <class T, class In, class LayerList>
class block_impl;

template <class T, class In, class... L>
class block_impl<T, In, type_list<L...>> {
    static_assert(sizeof...(L) > 0, "auxl::nn: a network or head needs at least one layer");
    static_assert((Layer<L> && ...), "auxl::nn: a layer type does not satisfy the Layer contract (nn/context.hpp)");

public:
    using scalar_type = T;
    using input_shape = In;
    using output_shape = typename std::tuple_element_t<sizeof...(L) - 1, std::tuple<L...>>::output_shape;
    static constexpr std::size_t layer_count = sizeof...(L);
    static constexpr std::size_t input_size = In::size;
    static constexpr std::size_t output_size = output_shape::size;

    /// Offset of each layer's first parameter, relative to the block (compile time).
    static constexpr std::array<std::size_t, layer_count> offsets = [] {
        std::array<std::size_t, layer_count> result{};
        std::size_t running = 0;
        std::size_t i = 0;
        ((result[i++] = running, running += L::parameter_count), ...);
        return result;
    }();
    static constexpr std::size_t parameter_count = (std::size_t{0} + ... + L::parameter_count);
    /// Whether a layer runs on auxl's workers; then every pass keeps OpenBLAS's pool idle
    /// (core/worker_gemm.hpp).
    static constexpr bool runs_on_workers = (layer_runs_on_workers<L> || ...);

    /// Whether layer i or one before it has parameters.  A backward needs no input gradient of a
    /// layer when none do and the caller asked for no dx: an MLP's leading flatten would otherwise
    /// make its first dense layer run a dx GEMM as large as its weight-gradient GEMM, for nothing.
    static constexpr std::array<bool, layer_count> parameters_up_to = [] {
        std::array<bool, layer_count> result{};
        bool any = false;
        std::size_t i = 0;
        ((any = any || L::parameter_count > 0, result[i++] = any), ...);
        return result;
    }();

    block_impl() = default;

    /// Sizes activations and every layer's workspace for batches of up to max_batch rows.
    void reserve(std::size_t max_batch) {
        max_batch_ = max_batch;
        for_each_layer([&](auto i, auto& layer) {
            layer.reserve(max_batch);
            using bound = std::remove_reference_t<decltype(layer)>;
            activations_[i] = xt::xtensor<T, 2>::from_shape({max_batch, bound::output_shape::size});
            gradients_[i] = xt::xtensor<T, 2>::from_shape({max_batch, bound::output_shape::size});
        });
        for (auto& t : tangents_) t = xt::xtensor<T, 2>();
        for (auto& t : gradient_tangents_) t = xt::xtensor<T, 2>();
    }
    std::size_t max_batch() const { return max_batch_; }

    /// Records this block's modules in `layout`; `prefix` names them, `base` is the block's offset.
    void describe(arena_layout& layout, const std::string& prefix, std::size_t base) const {
        for_each_layer([&](auto i, auto& layer) {
            using bound = std::remove_reference_t<decltype(layer)>;
            if constexpr (bound::parameter_count > 0) {
                layout.add_module(prefix + "." + std::to_string(decltype(i)::value) + "." + bound::name(), base + offsets[i],
                                  bound::parameter_count, bound::segments());
            }
        });
    }

    void init(T* params, rng& gen, init_scheme scheme) {
        for_each_layer([&](auto i, auto& layer) { layer.init(params + offsets[i], gen, scheme); });
    }

    /// Runs the layers on x (batch x input_size) and returns the output (batch x output_size).
    /// x must stay valid until the matching backward/tangent calls.
    const T* forward(const T* params, const T* x, std::size_t batch, const pass_options& options) {
        if (batch > max_batch_) {
            raise<shape_error>("auxl::nn: batch of ", batch, " rows exceeds the workspace reserved for ", max_batch_,
                               " rows; call reserve(", batch, ") first");
        }
        input_ = x;
        batch_ = batch;
        const products_on_workers_scope scope(runs_on_workers);
        const T* current = x;
        for_each_layer([&](auto i, auto& layer) {
            layer_context<T> ctx = context(options);
            ctx.params = params + offsets[i];
            T* out = activations_[i].data();
            layer.forward(ctx, current, out);
            current = out;
        });
        options_ = options;
        return current;
    }

    /// Back-propagates dy (batch x output_size): adds parameter gradients into grad (block-relative
    /// span; null skips them) and the input gradient into dx (null skips it).  With dx null, the
    /// layers up to the first one with parameters are not run, and that layer does no
    /// input-gradient GEMM.
    void backward(const T* params, T* grad, const T* dy, T* dx) {
        require_forward("backward");
        backward_had_dx_ = dx != nullptr;
        const products_on_workers_scope scope(runs_on_workers);
        auto reversed = boost::hana::reverse(boost::hana::to_tuple(boost::hana::make_range(
            boost::hana::size_c<0>, boost::hana::size_c<layer_count>)));
        boost::hana::for_each(reversed, [&](auto i) {
            constexpr std::size_t index = decltype(i)::value;
            if (!dx && !parameters_up_to[index]) return;  // nothing at or below this layer wants a gradient
            auto& layer = boost::hana::at(layers_, i);
            layer_context<T> ctx = context(options_);
            ctx.params = params + offsets[i];
            ctx.grad = grad ? grad + offsets[i] : nullptr;
            const T* layer_in = input_of(i);
            const T* layer_dy = (index == layer_count - 1) ? dy : gradients_[index].data();
            T* layer_dx = dx;
            if constexpr (index > 0) {  // the buffer between two layers: written, or zeroed and added to
                if (dx || parameters_up_to[index - 1]) {
                    layer_dx = gradients_[index - 1].data();
                    using bound = std::remove_reference_t<decltype(layer)>;
                    if constexpr (assigns_input_gradient<bound>) ctx.assign_dx = true;
                    else std::fill_n(layer_dx, batch_ * layer_output_size<index - 1>(), T(0));
                }
            }
            layer.backward(ctx, layer_in, activations_[i].data(), layer_dy, layer_dx);
        });
    }

    /// Number of layers with parameters (the "modules" of arena_layout, in layer order).
    static constexpr std::size_t module_count = (std::size_t{0} + ... + (L::parameter_count > 0 ? 1 : 0));
    /// Module number of each layer with parameters (its rank among them); unused for the others.
    static constexpr std::array<std::size_t, layer_count> module_of = [] {
        std::array<std::size_t, layer_count> result{};
        std::size_t running = 0;
        std::size_t i = 0;
        ((result[i++] = running, running += L::parameter_count > 0 ? 1 : 0), ...);
        return result;
    }();

    /// Several backward passes at once whose parameter gradients are wanted only as one weighted
    /// sum: streams s = 0..S−1 start from dy[s] (null = absent) and run down the block separately,
    /// but each layer with parameters (module j) makes one weight-gradient product, from
    /// Σ_s coefficients[s·module_count + j] · dy_s at its output, added into grad.  Equal to S
    /// backward calls into separate arenas combined afterwards (backward is linear in dy), with
    /// one weight-gradient product per module where those make S.  No input gradient; afterwards
    /// the between-layer buffers hold stream 0's (as after backward on dy[0] alone).
    void backward_weighted(const T* params, T* grad, std::span<const T* const> dy, std::span<const T> coefficients) {
        require_forward("backward_weighted");
        const std::size_t S = dy.size();
        if (coefficients.size() != S * module_count) {
            raise<shape_error>("auxl::nn: backward_weighted got ", coefficients.size(), " coefficients for ", S,
                               " streams and ", module_count, " modules");
        }
        backward_had_dx_ = false;
        if (stream_gradients_.size() + 1 < S) stream_gradients_.resize(S - 1);
        for (auto& buffers : stream_gradients_) {
            for_each_layer([&](auto i, auto&) {
                constexpr std::size_t n = layer_output_size<decltype(i)::value>();
                if (buffers[i].size() < max_batch_ * n) buffers[i] = xt::xtensor<T, 2>::from_shape({max_batch_, n});
            });
        }
        const products_on_workers_scope scope(runs_on_workers);
        auto reversed = boost::hana::reverse(boost::hana::to_tuple(boost::hana::make_range(
            boost::hana::size_c<0>, boost::hana::size_c<layer_count>)));
        boost::hana::for_each(reversed, [&](auto i) {
            constexpr std::size_t index = decltype(i)::value;
            if constexpr (parameters_up_to[index]) {
                auto& layer = boost::hana::at(layers_, i);
                using bound = std::remove_reference_t<decltype(layer)>;
                constexpr std::size_t out_size = layer_output_size<index>();
                const std::size_t n = batch_ * out_size;
                auto upstream = [&](std::size_t s) -> const T* {
                    if (!dy[s]) return nullptr;
                    if (index == layer_count - 1) return dy[s];
                    return s == 0 ? gradients_[index].data() : stream_gradients_[s - 1][index].data();
                };
                const T* in = input_of(i);
                if constexpr (bound::parameter_count > 0) {
                    // The weighted upstream of this module: one weight-gradient product for all streams.
                    const T* weighted = nullptr;
                    std::size_t terms = 0;
                    for (std::size_t s = 0; s < S; ++s) {
                        const T c = coefficients[s * module_count + module_of[index]];
                        const T* u = upstream(s);
                        if (!u || c == T(0)) continue;
                        if (terms == 0 && c == T(1)) {
                            weighted = u;  // a lone unit-weight stream needs no copy
                        } else {
                            if (combined_.size() < n) combined_.resize(n);
                            if (terms == 0) {
                                for (std::size_t e = 0; e < n; ++e) combined_[e] = c * u[e];
                            } else {
                                if (weighted != combined_.data()) std::copy_n(weighted, n, combined_.data());
                                for (std::size_t e = 0; e < n; ++e) combined_[e] += c * u[e];
                            }
                            weighted = combined_.data();
                        }
                        ++terms;
                    }
                    if (weighted && grad) {
                        layer_context<T> ctx = context(options_);
                        ctx.params = params + offsets[i];
                        ctx.grad = grad + offsets[i];
                        layer.backward(ctx, in, activations_[i].data(), weighted, nullptr);
                    }
                }
                if constexpr (index > 0) {
                    if constexpr (parameters_up_to[index - 1]) {  // each stream's input gradient, for the layers below
                        constexpr std::size_t below = layer_output_size<index - 1>();
                        for (std::size_t s = 0; s < S; ++s) {
                            const T* u = upstream(s);
                            if (!u) continue;
                            T* dx = s == 0 ? gradients_[index - 1].data() : stream_gradients_[s - 1][index - 1].data();
                            layer_context<T> ctx = context(options_);
                            ctx.params = params + offsets[i];
                            if constexpr (assigns_input_gradient<bound>) ctx.assign_dx = true;
                            else std::fill_n(dx, batch_ * below, T(0));
                            layer.backward(ctx, in, activations_[i].data(), u, dx);
                        }
                    }
                }
                (void)n;
            }
        });
    }

    /// Forward-mode pass: how the output moves when the parameters move along param_tangent
    /// (block-relative span; null = zero) and the input along x_dot (null = zero).
    /// Returns batch x output_size.  Uses the activations of the last forward.  A layer whose
    /// input tangent is known to be zero (no x_dot, and no parameter tangent below it) gets null,
    /// so it skips the product with a zero matrix.
    const T* tangent(const T* params, const T* param_tangent, const T* x_dot) {
        require_forward("tangent");
        const products_on_workers_scope scope(runs_on_workers);
        if (tangents_[0].size() == 0) {  // first tangent pass: size the buffers once
            for_each_layer([&](auto i, auto&) {
                using bound = std::tuple_element_t<decltype(i)::value, std::tuple<L...>>;
                tangents_[i] = xt::xtensor<T, 2>::from_shape({max_batch_, bound::output_shape::size});
            });
        }
        tangent_params_ = param_tangent;
        tangent_input_ = x_dot;
        for_each_layer([&](auto i, auto& layer) {
            layer_context<T> ctx = context(options_);
            ctx.params = params + offsets[i];
            ctx.param_tangent = param_tangent ? param_tangent + offsets[i] : nullptr;
            layer.tangent(ctx, input_of(i), input_tangent_of(i), activations_[i].data(), tangents_[i].data());
        });
        return tangents_[layer_count - 1].data();
    }

    /// Whether every layer provides backward_tangent (nn/context.hpp).
    static constexpr bool has_backward_tangent = (nn::has_backward_tangent<L> && ...);

    /// The tangent of backward (forward-over-reverse: exact Hessian-vector products without
    /// finite differences).  Follows a forward, a tangent(params, param_tangent, x_dot) and a
    /// backward(params, ·, dy, ·) at one point; the parameter and input directions are the tangent
    /// pass's (their buffers must still hold them).  dy is that backward's upstream gradient and
    /// dy_dot its tangent.  Adds d/dε ∂L/∂params into grad_dot (block-relative; null skips it)
    /// and d/dε ∂L/∂x into dx_dot (null skips it; then backward may have skipped dx too).
    void backward_tangent(const T* params, T* grad_dot, const T* dy, const T* dy_dot, T* dx_dot) {
        static_assert(has_backward_tangent,
                      "auxl::nn: a layer of this network has no backward_tangent (nn/context.hpp), which exact "
                      "Hessian-vector products need; use the central-difference products instead");
        require_forward("backward_tangent");
        if (tangents_[0].size() == 0) raise<error>("auxl::nn: backward_tangent called before any tangent pass");
        if (dx_dot && !backward_had_dx_)
            raise<error>("auxl::nn: backward_tangent asked for an input-gradient tangent, but the last backward "
                         "computed no input gradient (its dx was null)");
        const products_on_workers_scope scope(runs_on_workers);
        if (gradient_tangents_[0].size() == 0) {
            for_each_layer([&](auto i, auto&) {
                gradient_tangents_[i] = xt::xtensor<T, 2>::from_shape({max_batch_, layer_output_size<decltype(i)::value>()});
            });
        }
        auto reversed = boost::hana::reverse(boost::hana::to_tuple(boost::hana::make_range(
            boost::hana::size_c<0>, boost::hana::size_c<layer_count>)));
        boost::hana::for_each(reversed, [&](auto i) {
            constexpr std::size_t index = decltype(i)::value;
            if (!dx_dot && !parameters_up_to[index]) return;
            auto& layer = boost::hana::at(layers_, i);
            layer_context<T> ctx = context(options_);
            ctx.params = params + offsets[i];
            ctx.grad = grad_dot ? grad_dot + offsets[i] : nullptr;
            ctx.param_tangent = tangent_params_ ? tangent_params_ + offsets[i] : nullptr;
            const bool last = index == layer_count - 1;
            const T* layer_dy = last ? dy : gradients_[index].data();
            const T* layer_dy_dot = last ? dy_dot : gradient_tangents_[index].data();
            T* layer_dx_dot = dx_dot;
            if constexpr (index > 0) {
                layer_dx_dot = nullptr;
                if (dx_dot || parameters_up_to[index - 1]) {
                    layer_dx_dot = gradient_tangents_[index - 1].data();
                    std::fill_n(layer_dx_dot, batch_ * layer_output_size<index - 1>(), T(0));
                }
            }
            layer.backward_tangent(ctx, input_of(i), input_tangent_of(i), activations_[i].data(), tangents_[i].data(),
                                   layer_dy, layer_dy_dot, layer_dx_dot);
        });
    }

    std::size_t batch() const { return batch_; }
    const T* output() const { return activations_[layer_count - 1].data(); }

    /// Copies the random state of the last forward (dropout masks) from another block of the same
    /// type, so a forward here with reuse_masks replays that pass at other parameters.
    void copy_masks_from(const block_impl& other) {
        if (other.max_batch_ > max_batch_) raise<shape_error>("auxl::nn: cannot copy masks from a larger workspace");
        boost::hana::for_each(boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<layer_count>), [&](auto i) {
            auto& mine = boost::hana::at(layers_, i);
            if constexpr (requires { mine.copy_masks_from(boost::hana::at(other.layers_, i)); }) {
                mine.copy_masks_from(boost::hana::at(other.layers_, i));
            }
        });
        options_ = other.options_;
    }

private:
    template <class F>
    void for_each_layer(F&& f) {
        boost::hana::for_each(boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<layer_count>),
                              [&](auto i) { f(i, boost::hana::at(layers_, i)); });
    }
    template <class F>
    void for_each_layer(F&& f) const {
        boost::hana::for_each(boost::hana::make_range(boost::hana::size_c<0>, boost::hana::size_c<layer_count>),
                              [&](auto i) { f(i, boost::hana::at(layers_, i)); });
    }

    template <class I>
    const T* input_of(I) const {
        if constexpr (I::value == 0) {
            return input_;
        } else {
            return activations_[I::value - 1].data();
        }
    }

    // The input tangent layer i saw in the last tangent pass; null where it is known to be zero (no
    // input tangent, and no parameter tangent below layer i), so the layer skips a product with zero.
    template <class I>
    const T* input_tangent_of(I) const {
        if constexpr (I::value == 0) {
            return tangent_input_;
        } else {
            if (!tangent_input_ && (!tangent_params_ || !parameters_up_to[I::value - 1])) return nullptr;
            return tangents_[I::value - 1].data();
        }
    }

    template <std::size_t Index>
    static constexpr std::size_t layer_output_size() {
        return std::tuple_element_t<Index, std::tuple<L...>>::output_shape::size;
    }

    layer_context<T> context(const pass_options& options) const {
        layer_context<T> ctx;
        ctx.batch = batch_;
        ctx.training = options.training;
        ctx.dropout = options.dropout;
        ctx.reuse_masks = options.reuse_masks;
        return ctx;
    }

    void require_forward(const char* what) const {
        if (!input_) raise<error>("auxl::nn: ", what, " called before any forward pass");
    }

    boost::hana::tuple<L...> layers_;
    std::array<xt::xtensor<T, 2>, layer_count> activations_;
    std::array<xt::xtensor<T, 2>, layer_count> gradients_;  // dL/d(output of layer i), i < last
    std::array<xt::xtensor<T, 2>, layer_count> tangents_;
    std::array<xt::xtensor<T, 2>, layer_count> gradient_tangents_;  // tangent of gradients_ (backward_tangent)
    std::vector<std::array<xt::xtensor<T, 2>, layer_count>> stream_gradients_;  // backward_weighted: streams 1..S−1
    std::vector<T> combined_;  // backward_weighted: one module's weighted upstream
    const T* tangent_params_ = nullptr;  // the last tangent pass's directions (backward_tangent reuses them)
    const T* tangent_input_ = nullptr;
    bool backward_had_dx_ = false;
    const T* input_ = nullptr;
    std::size_t batch_ = 0;
    std::size_t max_batch_ = 0;
    pass_options options_;
};

}  // namespace detail

/// The block type for scalar T and input shape In running Specs... .
template <class T, class In, class... Specs>
using block = detail::block_impl<T, In, typename detail::bind_chain<T, In, detail::type_list<>, Specs...>::layers>;

}  // namespace auxl::nn
