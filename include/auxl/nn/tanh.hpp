// auxl/nn/tanh.hpp — hyperbolic tangent; the derivative 1 − y² reuses the forward output.
#pragma once

#include <cmath>

#include "auxl/nn/elementwise.hpp"

namespace auxl::nn {

struct tanh {
    static const char* name() { return "tanh"; }
    template <class T>
    static T value(T x) { return std::tanh(x); }
    template <class T>
    static T slope(T, T y) { return T(1) - y * y; }
    template <class T>
    static T output_slope(T y) { return T(1) - y * y; }

    template <class T>
    static T curvature_ratio(T y) { return T(-2) * y; }  // f''/f' = −2 tanh(x)

    template <class T, class In>
    using layer = detail::elementwise_layer<T, In, tanh>;
};

}  // namespace auxl::nn
