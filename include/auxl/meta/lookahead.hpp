// auxl/meta/lookahead.hpp — a virtual optimizer step: where the parameters would go along a
// direction under the optimizer's own rule (momentum, weight decay, Adam moments), without
// changing the optimizer's state.  IT-MTL's candidate steps and MAXL-style lookaheads use it.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "auxl/core/denormals.hpp"
#include "auxl/optim/adam.hpp"
#include "auxl/optim/sgd.hpp"

namespace auxl::meta {

/// out = the parameters after sgd would step along g (state untouched).
template <class T>
void lookahead(const optim::sgd<T>& opt, std::span<const T> w, std::span<const T> g, std::span<T> out) {
    const auto& o = opt.hyper_parameters();
    const T lr = T(o.learning_rate), mu = T(o.momentum), wd = T(o.weight_decay);
    const bool has_velocity = o.momentum > 0 && opt.velocity().size() == w.size();
    const scoped_flush_denormals flush(o.flush_subnormals);  // the same arithmetic as step()
    for (std::size_t i = 0; i < w.size(); ++i) {
        const T gi = g[i] + wd * w[i];
        if (o.momentum == 0) {
            out[i] = w[i] - lr * gi;
            continue;
        }
        const T v = mu * (has_velocity ? opt.velocity()[i] : T(0)) + gi;
        out[i] = w[i] - lr * (o.nesterov ? gi + mu * v : v);
    }
}

/// out = the parameters after adam would step along g (moments and step count untouched).
template <class T>
void lookahead(const optim::adam<T>& opt, std::span<const T> w, std::span<const T> g, std::span<T> out) {
    const auto& o = opt.hyper_parameters();
    const bool has_state = opt.first_moment().size() == w.size();
    const double t = double(opt.steps_taken() + 1);
    const T c1 = T(1 / (1 - std::pow(o.beta1, t))), c2 = T(1 / (1 - std::pow(o.beta2, t)));
    const T lr = T(o.learning_rate), b1 = T(o.beta1), b2 = T(o.beta2), eps = T(o.epsilon), wd = T(o.weight_decay);
    const scoped_flush_denormals flush(o.flush_subnormals);  // the same arithmetic as step()
    for (std::size_t i = 0; i < w.size(); ++i) {
        T wi = w[i], gi = g[i];
        if (o.decoupled_weight_decay) {
            wi -= lr * wd * wi;
        } else {
            gi += wd * wi;
        }
        const T m = b1 * (has_state ? opt.first_moment()[i] : T(0)) + (T(1) - b1) * gi;
        const T v = b2 * (has_state ? opt.second_moment()[i] : T(0)) + (T(1) - b2) * gi * gi;
        out[i] = wi - lr * (m * c1) / (std::sqrt(v * c2) + eps);
    }
}

}  // namespace auxl::meta
