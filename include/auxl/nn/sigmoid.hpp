// auxl/nn/sigmoid.hpp — logistic function 1/(1+e^−x), evaluated without overflow for either
// sign of x; the derivative y(1 − y) reuses the forward output.
#pragma once

#include <cmath>

#include "auxl/nn/elementwise.hpp"

namespace auxl::nn {

struct sigmoid {
    static const char* name() { return "sigmoid"; }
    template <class T>
    static T value(T x) {
        if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
        const T e = std::exp(x);
        return e / (T(1) + e);
    }
    template <class T>
    static T slope(T, T y) { return y * (T(1) - y); }
    template <class T>
    static T output_slope(T y) { return y * (T(1) - y); }

    template <class T>
    static T curvature_ratio(T y) { return T(1) - T(2) * y; }  // f''/f' = 1 − 2σ(x)

    template <class T, class In>
    using layer = detail::elementwise_layer<T, In, sigmoid>;
};

}  // namespace auxl::nn
