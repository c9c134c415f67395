// auxl/nn/network.hpp — a single-chain network that owns its parameter arena.
//
// nn::basic_network<T, Spec> runs an nn::sequential description with scalar T (float or
// double); nn::network<Spec> is the float version.  It owns the parameters (one 64-byte aligned
// arena), the segment table and the activations of the last forward pass.  Gradient and tangent
// arenas are the caller's (make_arena() gives one of the right size), so one network can
// back-propagate into as many gradient rows as a rule needs.  Used for generator and policy
// networks; the multi-task model is nn::basic_multi_task.
//
// Requirements on Spec: an nn::sequential<nn::input<...>, layers...>.
// Guarantees: forward checks width, batch size and finiteness of the data and throws
// auxl::shape_error / auxl::value_error naming expected and found values; backward adds into the
// gradient arena (never overwrites).  Cost: see each layer; no allocation after construction
// except the first tangent pass, which sizes its buffers once.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>

#include "auxl/core/arena.hpp"
#include "auxl/nn/input_check.hpp"
#include "auxl/nn/sequential.hpp"

namespace auxl::nn {

template <class T, class Spec>
class basic_network {
    static_assert(std::is_floating_point_v<T>, "auxl::nn::basic_network: the scalar type must be float or double");

public:
    using scalar_type = T;
    using spec_type = Spec;
    using block_type = typename Spec::template block_type<T>;
    using input_shape = typename block_type::input_shape;
    using output_shape = typename block_type::output_shape;
    static constexpr std::size_t input_size = input_shape::size;
    static constexpr std::size_t output_size = output_shape::size;
    static constexpr std::size_t parameter_count = block_type::parameter_count;
    /// Whether a layer runs on auxl's workers (a convolution): see core/worker_gemm.hpp.
    static constexpr bool runs_on_workers = block_type::runs_on_workers;

    explicit basic_network(std::size_t max_batch = 256) : params_(parameter_count) {
        block_.describe(layout_, "net", 0);
        layout_.set_size(parameter_count);
        reserve(max_batch);
    }

    void reserve(std::size_t max_batch) { block_.reserve(max_batch); }
    std::size_t max_batch() const { return block_.max_batch(); }

    void init(rng& gen, init_scheme scheme = init_scheme::he_uniform) { block_.init(params_.data(), gen, scheme); }

    arena<T>& parameters() { return params_; }
    const arena<T>& parameters() const { return params_; }
    const arena_layout& layout() const { return layout_; }
    arena<T> make_arena() const { return arena<T>(parameter_count); }

    /// x: batch x input_size, row-major; stays referenced until the next forward.
    const T* forward(const T* x, std::size_t batch, const pass_options& options = {}) {
        detail::check_finite(x, batch, input_size, "auxl::nn::network::forward", "input");
        return block_.forward(params_.data(), x, batch, options);
    }

    /// Same, for an xtensor container (or anything with shape() and contiguous row-major data()).
    template <class Container>
    const T* forward(const Container& x, const pass_options& options = {}) {
        const std::size_t batch = detail::checked_batch(x, input_size, "auxl::nn::network::forward");
        return forward(x.data(), batch, options);
    }

    /// dy: batch x output_size.  Adds the parameter gradient into grad and, if dx is given,
    /// the input gradient into dx.
    void backward(const T* dy, arena<T>& grad, T* dx = nullptr) {
        check_arena_size(grad, parameter_count, "gradient arena");
        block_.backward(params_.data(), grad.data(), dy, dx);
    }

    /// Input gradient only (no parameter gradient); adds into dx.
    void backward_input(const T* dy, T* dx) { block_.backward(params_.data(), nullptr, dy, dx); }

    /// JVP at the last forward: output tangent for parameter direction param_tangent (or none)
    /// and input direction x_dot (or none).
    const T* tangent(const arena<T>* param_tangent, const T* x_dot = nullptr) {
        if (param_tangent) check_arena_size(*param_tangent, parameter_count, "tangent arena");
        return block_.tangent(params_.data(), param_tangent ? param_tangent->data() : nullptr, x_dot);
    }

    /// The tangent of backward (exact Hessian-vector products, block.hpp): after a forward, a
    /// tangent(param_tangent, x_dot) and a backward(dy, …) at one point, adds how the parameter
    /// gradient moves along those directions (with dy moving along dy_dot) into grad_dot (null
    /// skips it) and how the input gradient moves into dx_dot (null skips it; the backward must
    /// then have computed dx).  param_tangent and x_dot must still hold the tangent pass's values.
    void backward_tangent(const T* dy, const T* dy_dot, arena<T>* grad_dot, T* dx_dot = nullptr) {
        if (grad_dot) check_arena_size(*grad_dot, parameter_count, "gradient tangent arena");
        block_.backward_tangent(params_.data(), grad_dot ? grad_dot->data() : nullptr, dy, dy_dot, dx_dot);
    }

    const T* output() const { return block_.output(); }
    std::size_t batch() const { return block_.batch(); }

    void summary(std::ostream& out) const { layout_.summary(out); }

private:
    arena<T> params_;
    arena_layout layout_;
    block_type block_;
};

template <class Spec>
using network = basic_network<float, Spec>;

}  // namespace auxl::nn
