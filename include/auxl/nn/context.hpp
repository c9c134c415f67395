// auxl/nn/context.hpp — what a layer receives on each call, and the Layer contract.
//
// Layers own no parameter memory and keep no pointers into arenas (DESIGN.md principle 3): each
// call gets its spans through a layer_context.  The same layer code therefore runs on the
// network's parameters, on a perturbed copy, accumulates into the joint gradient or into task
// k's gradient row, and reads a parameter tangent for forward-mode (JVP) passes.
//
// Protocol of a bound layer L (L = Spec::template layer<Scalar, InputShape>):
//   input_shape, output_shape            compile-time shapes
//   parameter_count                      scalars it owns in the arena, padding included
//   segments()                           its tensors, offsets relative to its first scalar
//   reserve(max_batch)                   sizes its private workspaces (the only allocation)
//   init(params, rng, scheme)            fills its parameters (biases zero)
//   forward(ctx, x, y)                   y = f(x)                          (writes y)
//   backward(ctx, x, y, dy, dx)          ctx.grad += dL/dparams, dx += dL/dx (dx may be null)
//   assigns_input_gradient (optional)    a static constexpr bool; when true, backward honours
//                                        ctx.assign_dx: it then writes dx = dL/dx and must not
//                                        read dx's old contents.  A block asks for that on the
//                                        buffers between its layers, which saves zeroing them
//                                        first (a whole-batch memset, 4-5 % of a CNN step in
//                                        perf); layers without the flag get zeroed buffers.
//   runs_on_workers (optional)           a static constexpr bool; true when its passes run on auxl's
//                                        workers (run_workers(): conv2d's samples).  A network
//                                        with such a layer runs its other products on the same
//                                        workers (core/worker_gemm.hpp).
//   tangent(ctx, x, x_dot, y, y_dot)     y_dot = Jx x_dot + Jp ctx.param_tangent (writes y_dot;
//                                        x_dot or param_tangent may be null for "zero")
//   backward_tangent(ctx, x, x_dot, y, y_dot, dy, dy_dot, dx_dot)   (optional; needed for exact
//                                        Hessian-vector products, meta/exact_hvp.hpp) the tangent
//                                        of backward: how its results move when the parameters move
//                                        along ctx.param_tangent (null = zero), the input along x_dot
//                                        (null = zero; y_dot is the matching output tangent of
//                                        tangent()) and the upstream gradient dy along dy_dot.
//                                        Adds into ctx.grad (the parameter gradient's tangent; null
//                                        skips it) and into dx_dot (null skips it); never assigns.
//                                        Activation patterns (ReLU signs, pooling maxima, dropout
//                                        masks) stay those of the forward pass, as in autodiff.
// backward and tangent must follow a forward on the same input (they read its cached state);
// backward_tangent follows a forward, a tangent and a backward (with this dy) at one point.
#pragma once

#include <concepts>
#include <cstddef>
#include <vector>

#include "auxl/core/arena.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/core/shape.hpp"
#include "auxl/nn/init.hpp"

namespace auxl::nn {

template <class T>
struct layer_context {
    const T* params = nullptr;         ///< this layer's first parameter
    T* grad = nullptr;                 ///< gradient span at this layer's offset; null = no parameter gradient
    const T* param_tangent = nullptr;  ///< tangent span at this layer's offset; null = zero tangent
    std::size_t batch = 0;             ///< rows in this call
    bool training = false;             ///< dropout active
    rng* dropout = nullptr;            ///< stream for dropout masks
    bool reuse_masks = false;          ///< keep the masks of the previous forward (perturbed passes)
    bool assign_dx = false;            ///< backward writes dx (=) instead of adding to it (+=); set
                                       ///< only for layers with assigns_input_gradient
};

/// Whether layer L's backward can write its input gradient instead of adding to it.
template <class L>
inline constexpr bool assigns_input_gradient = [] {
    if constexpr (requires { L::assigns_input_gradient; }) return bool(L::assigns_input_gradient);
    else return false;
}();

/// Whether layer L's passes run on auxl's workers (then its network keeps OpenBLAS's pool idle).
template <class L>
inline constexpr bool layer_runs_on_workers = [] {
    if constexpr (requires { L::runs_on_workers; }) return bool(L::runs_on_workers);
    else return false;
}();

/// Whether layer L provides backward_tangent (the exact second-order pass).
template <class L>
inline constexpr bool has_backward_tangent =
    requires(L& layer, const layer_context<typename L::scalar_type>& ctx, const typename L::scalar_type* x,
             typename L::scalar_type* y) { layer.backward_tangent(ctx, x, x, x, x, x, x, y); };

/// The contract every bound layer satisfies (checked when a network is assembled).
template <class L>
concept Layer = requires(L& layer, const L& const_layer, const layer_context<typename L::scalar_type>& ctx,
                         const typename L::scalar_type* x, typename L::scalar_type* y, rng& gen,
                         std::size_t batch) {
    typename L::scalar_type;
    typename L::input_shape;
    typename L::output_shape;
    requires Shape<typename L::input_shape>;
    requires Shape<typename L::output_shape>;
    { L::parameter_count } -> std::convertible_to<std::size_t>;
    { L::segments() } -> std::same_as<std::vector<segment>>;
    { L::name() } -> std::convertible_to<const char*>;
    layer.reserve(batch);
    layer.init(y, gen, init_scheme::he_uniform);
    layer.forward(ctx, x, y);
    layer.backward(ctx, x, x, x, y);
    layer.tangent(ctx, x, x, x, y);
};

namespace detail {
/// A segment description with an offset relative to the layer.
inline segment make_segment(const char* name, std::initializer_list<std::size_t> dims, std::size_t offset) {
    segment s;
    s.name = name;
    s.dims = {1, 1, 1, 1};
    s.rank = dims.size();
    std::size_t size = 1;
    std::size_t d = 0;
    for (auto v : dims) {
        s.dims[d++] = v;
        size *= v;
    }
    s.size = size;
    s.offset = offset;
    return s;
}
}  // namespace detail

}  // namespace auxl::nn
