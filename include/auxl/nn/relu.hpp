// auxl/nn/relu.hpp — rectified linear unit, y = max(x, 0).
// The derivative at exactly 0 is taken as 0 (as in PyTorch).
#pragma once

#include "auxl/nn/elementwise.hpp"

namespace auxl::nn {

struct relu {
    static const char* name() { return "relu"; }
    template <class T>
    static T value(T x) { return x > T(0) ? x : T(0); }
    template <class T>
    static T slope(T x, T) { return x > T(0) ? T(1) : T(0); }
    template <class T>
    static T output_slope(T y) { return y > T(0) ? T(1) : T(0); }  // y > 0 exactly when x > 0 (fusion)

    static constexpr bool piecewise_linear = true;  // f'' = 0: no curvature term in second-order passes

    template <class T, class In>
    using layer = detail::elementwise_layer<T, In, relu>;
};

}  // namespace auxl::nn
