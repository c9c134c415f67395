// auxl/optim/schedule.hpp — learning-rate schedules: lr(t) from the base rate and a counter t
// (epochs or steps, the caller's choice).  Small value types; apply with
// optimizer.set_learning_rate(schedule(base, t)).
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "auxl/core/error.hpp"

namespace auxl::optim {

/// lr(t) = base.
struct constant_lr {
    double operator()(double base, std::size_t) const { return base; }
};

/// lr(t) = base · gamma^floor(t / every)  (MAXL halves every 50 epochs: every = 50, gamma = 0.5).
struct step_lr {
    std::size_t every = 50;
    double gamma = 0.5;
    double operator()(double base, std::size_t t) const {
        if (every == 0) raise<config_error>("auxl::optim::step_lr: 'every' must be positive");
        return base * std::pow(gamma, double(t / every));
    }
};

/// Cosine annealing from base to min_lr over `total` units, then min_lr:
/// lr(t) = min + (base − min)(1 + cos(π t / total)) / 2.
struct cosine_lr {
    std::size_t total = 100;
    double min_lr = 0.0;
    double operator()(double base, std::size_t t) const {
        if (total == 0) raise<config_error>("auxl::optim::cosine_lr: 'total' must be positive");
        if (t >= total) return min_lr;
        return min_lr + (base - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * double(t) / double(total)));
    }
};

}  // namespace auxl::optim
