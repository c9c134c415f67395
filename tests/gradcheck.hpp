// Finite-difference helpers shared by the derivative tests (double precision throughout).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <vector>

#include "auxl/core/rng.hpp"

namespace auxl::testing {

/// ‖a − b‖ / max(‖a‖, ‖b‖, floor): the error measure of every derivative test.
inline double relative_error(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-8) {
    double diff = 0, na = 0, nb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff += (a[i] - b[i]) * (a[i] - b[i]);
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    return std::sqrt(diff) / std::max({std::sqrt(na), std::sqrt(nb), floor});
}

inline std::vector<double> random_vector(std::size_t n, rng& gen, double scale = 1.0) {
    std::vector<double> v(n);
    for (auto& x : v) x = gen.normal(0.0, scale);
    return v;
}

/// Central-difference gradient of f at x (every coordinate).
inline std::vector<double> numeric_gradient(const std::function<double()>& f, double* x, std::size_t n,
                                            double h = 1e-6) {
    std::vector<double> g(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double saved = x[i];
        x[i] = saved + h;
        const double up = f();
        x[i] = saved - h;
        const double down = f();
        x[i] = saved;
        g[i] = (up - down) / (2 * h);
    }
    return g;
}

/// Central-difference directional derivative of a vector function: [F(x + h d) − F(x − h d)] / 2h,
/// where `move(t)` sets the point to x + t·d and `eval()` returns F there.
inline std::vector<double> numeric_directional(const std::function<void(double)>& move,
                                               const std::function<std::vector<double>()>& eval, double h = 1e-6) {
    move(h);
    const auto up = eval();
    move(-h);
    const auto down = eval();
    move(0);
    std::vector<double> d(up.size());
    for (std::size_t i = 0; i < up.size(); ++i) d[i] = (up[i] - down[i]) / (2 * h);
    return d;
}

}  // namespace auxl::testing
