// auxl/optim/sgd.hpp — stochastic gradient descent on a whole arena, with optional momentum,
// Nesterov momentum and (coupled, L2) weight decay.  Same update as torch.optim.SGD with
// dampening 0, so numbers can be compared one to one:
//   g ← ∇ + λ w;   v ← μ v + g;   d = g + μ v (Nesterov) or v (else);   w ← w − η d
// (without momentum d = g and no state is kept).  The velocity is an arena of the parameters'
// layout, sized by the first step (or init()); padding stays zero.  Cost: one pass over P.
// With options::flush_subnormals (the default) the pass runs with subnormal floats flushed to
// zero, as adam.hpp explains: a velocity whose gradient stops (no weight decay, a dead unit)
// decays by μ per step through the range where x86 arithmetic is tens of times slower.
#pragma once

#include <cstddef>
#include <span>

#include "auxl/core/arena.hpp"
#include "auxl/core/denormals.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/parallel.hpp"

namespace auxl::optim {

template <class T = float>
class sgd {
public:
    using scalar_type = T;

    struct options {
        double learning_rate = 0.01;
        double momentum = 0.0;
        double weight_decay = 0.0;
        bool nesterov = false;
        bool flush_subnormals = true;  ///< run the pass with FTZ/DAZ (core/denormals.hpp)
    };

    sgd() : sgd(options{}) {}
    explicit sgd(options o) : opts_(o) {
        if (!(o.learning_rate > 0)) raise<config_error>("auxl::optim::sgd: learning rate must be positive, got ", o.learning_rate);
        if (o.momentum < 0 || o.momentum >= 1) raise<config_error>("auxl::optim::sgd: momentum must be in [0, 1), got ", o.momentum);
        if (o.weight_decay < 0) raise<config_error>("auxl::optim::sgd: weight decay must be >= 0, got ", o.weight_decay);
        if (o.nesterov && o.momentum == 0) raise<config_error>("auxl::optim::sgd: Nesterov momentum needs momentum > 0");
    }

    const options& hyper_parameters() const { return opts_; }
    double learning_rate() const { return opts_.learning_rate; }
    void set_learning_rate(double lr) { opts_.learning_rate = lr; }

    /// Sizes the state for an arena of `size` scalars (zero velocity).
    void init(std::size_t size) {
        if (opts_.momentum > 0) velocity_.resize(size);
    }

    /// Calls visit(name, state) for each piece of state (checkpoints).
    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("velocity", velocity_);
        visit("learning_rate", opts_.learning_rate);
    }

    void step(std::span<T> params, std::span<const T> grad) {
        if (params.size() != grad.size()) raise<shape_error>("auxl::optim::sgd: ", params.size(), " parameters but ", grad.size(), " gradients");
        if (opts_.momentum > 0 && velocity_.size() != params.size()) init(params.size());
        const T lr = T(opts_.learning_rate), mu = T(opts_.momentum), wd = T(opts_.weight_decay);
        T* w = params.data();
        const T* g = grad.data();
        if (opts_.momentum == 0) {
            for_each_chunk(params.size(), [&](std::size_t begin, std::size_t end) {
                const scoped_flush_denormals flush(opts_.flush_subnormals);  // MXCSR is per thread: one per chunk
                for (std::size_t i = begin; i < end; ++i) w[i] -= lr * (g[i] + wd * w[i]);
            });
            return;
        }
        T* v = velocity_.data();
        const bool nesterov = opts_.nesterov;
        for_each_chunk(params.size(), [&](std::size_t begin, std::size_t end) {
            const scoped_flush_denormals flush(opts_.flush_subnormals);
            for (std::size_t i = begin; i < end; ++i) {
                const T gi = g[i] + wd * w[i];
                v[i] = mu * v[i] + gi;
                w[i] -= lr * (nesterov ? gi + mu * v[i] : v[i]);
            }
        });
    }
    void step(arena<T>& params, const arena<T>& grad) { step(params.span(), grad.span()); }

    const arena<T>& velocity() const { return velocity_; }
    arena<T>& velocity() { return velocity_; }

private:
    options opts_;
    arena<T> velocity_;
};

}  // namespace auxl::optim
