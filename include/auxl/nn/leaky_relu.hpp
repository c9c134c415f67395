// auxl/nn/leaky_relu.hpp — y = x for x > 0, slope·x otherwise.
// The slope is the ratio Num/Den (default 1/100, PyTorch's default), a compile-time constant
// because floating-point template arguments are not portable to clang 14.
#pragma once

#include <cstddef>

#include "auxl/nn/elementwise.hpp"

namespace auxl::nn {

template <std::size_t Num = 1, std::size_t Den = 100>
struct leaky_relu {
    static_assert(Den > 0, "auxl::nn::leaky_relu<Num, Den>: Den must be positive");
    static const char* name() { return "leaky_relu"; }
    template <class T>
    static constexpr T negative_slope = T(Num) / T(Den);
    template <class T>
    static T value(T x) { return x > T(0) ? x : negative_slope<T> * x; }
    template <class T>
    static T slope(T x, T) { return x > T(0) ? T(1) : negative_slope<T>; }
    template <class T>
    static T output_slope(T y) { return y > T(0) ? T(1) : negative_slope<T>; }  // slope ≥ 0: y > 0 exactly when x > 0

    static constexpr bool piecewise_linear = true;  // f'' = 0: no curvature term in second-order passes

    template <class T, class In>
    using layer = detail::elementwise_layer<T, In, leaky_relu>;
};

}  // namespace auxl::nn
