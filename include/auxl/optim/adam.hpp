// auxl/optim/adam.hpp — Adam and AdamW on a whole arena (torch.optim.Adam / AdamW semantics).
//   t ← t + 1;  g ← ∇ + λ w (Adam)  or  w ← w − η λ w (AdamW, decoupled)
//   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²
//   w ← w − η (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
// Moments are arenas of the parameters' layout; padding stays zero.  Cost: one pass over P.
//
// One difference from torch.optim.Adam, on by default (options::flush_subnormals): the pass runs
// with subnormal floats flushed to zero (core/denormals.hpp).  A weight whose gradient stops
// (a dead ReLU unit's, say) has a first moment that decays by β1 per step through the subnormal
// range, where x86 arithmetic is tens of times slower; flushing makes it exactly 0 instead.  A
// flushed first moment would have moved its weight by less than η·FLT_MIN/((1 − β1^t)·ε) (at
// most 1.2e-32 at η = 1e-3, ε = 1e-8); a flushed g² term changes √v̂ by less than 1e-19·√c2,
// next to ε.  Gradients themselves are not changed (DAZ reads a subnormal one as 0 in here only).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "auxl/core/arena.hpp"
#include "auxl/core/denormals.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/parallel.hpp"

namespace auxl::optim {

template <class T = float>
class adam {
public:
    using scalar_type = T;

    struct options {
        double learning_rate = 1e-3;
        double beta1 = 0.9;
        double beta2 = 0.999;
        double epsilon = 1e-8;
        double weight_decay = 0.0;
        bool decoupled_weight_decay = false;  ///< true = AdamW
        bool flush_subnormals = true;         ///< run the pass with FTZ/DAZ (see the file comment)
    };

    adam() : adam(options{}) {}
    explicit adam(options o) : opts_(o) {
        if (!(o.learning_rate > 0)) raise<config_error>("auxl::optim::adam: learning rate must be positive, got ", o.learning_rate);
        if (o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1)
            raise<config_error>("auxl::optim::adam: betas must be in [0, 1), got ", o.beta1, " and ", o.beta2);
        if (!(o.epsilon > 0)) raise<config_error>("auxl::optim::adam: epsilon must be positive, got ", o.epsilon);
        if (o.weight_decay < 0) raise<config_error>("auxl::optim::adam: weight decay must be >= 0, got ", o.weight_decay);
    }

    const options& hyper_parameters() const { return opts_; }
    double learning_rate() const { return opts_.learning_rate; }
    void set_learning_rate(double lr) { opts_.learning_rate = lr; }
    std::uint64_t steps_taken() const { return t_; }

    void init(std::size_t size) {
        m_.resize(size);
        v_.resize(size);
        t_ = 0;
    }

    /// Calls visit(name, state) for each piece of state (checkpoints).
    template <class Visitor>
    void visit_state(Visitor&& visit) {
        visit("first_moment", m_);
        visit("second_moment", v_);
        visit("steps", t_);
        visit("learning_rate", opts_.learning_rate);
    }

    void step(std::span<T> params, std::span<const T> grad) {
        if (params.size() != grad.size()) raise<shape_error>("auxl::optim::adam: ", params.size(), " parameters but ", grad.size(), " gradients");
        if (m_.size() != params.size()) init(params.size());
        ++t_;
        const T lr = T(opts_.learning_rate), b1 = T(opts_.beta1), b2 = T(opts_.beta2), eps = T(opts_.epsilon);
        const T wd = T(opts_.weight_decay);
        const T c1 = T(1) / T(1 - std::pow(opts_.beta1, double(t_)));
        const T c2 = T(1) / T(1 - std::pow(opts_.beta2, double(t_)));
        T* w = params.data();
        const T* g = grad.data();
        T* m = m_.data();
        T* v = v_.data();
        const bool decoupled = opts_.decoupled_weight_decay;
        for_each_chunk(params.size(), [&](std::size_t begin, std::size_t end) {
            const scoped_flush_denormals flush(opts_.flush_subnormals);  // MXCSR is per thread: one per chunk
            for (std::size_t i = begin; i < end; ++i) {
                T gi = g[i];
                if (decoupled) {
                    w[i] -= lr * wd * w[i];
                } else {
                    gi += wd * w[i];
                }
                m[i] = b1 * m[i] + (T(1) - b1) * gi;
                v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
                w[i] -= lr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
            }
        });
    }
    void step(arena<T>& params, const arena<T>& grad) { step(params.span(), grad.span()); }

    const arena<T>& first_moment() const { return m_; }
    const arena<T>& second_moment() const { return v_; }

private:
    options opts_;
    arena<T> m_;
    arena<T> v_;
    std::uint64_t t_ = 0;
};

/// AdamW: Adam with decoupled weight decay (default λ = 0.01, as torch.optim.AdamW).
template <class T = float>
adam<T> adamw(double learning_rate = 1e-3, double weight_decay = 0.01) {
    typename adam<T>::options o;
    o.learning_rate = learning_rate;
    o.weight_decay = weight_decay;
    o.decoupled_weight_decay = true;
    return adam<T>(o);
}

}  // namespace auxl::optim
