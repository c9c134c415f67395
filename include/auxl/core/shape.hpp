// auxl/core/shape.hpp — compile-time tensor shapes.
//
// Every activation in auxl is a batch of C x H x W tensors stored row-major (N x C x H x W); a
// flat feature vector is C x 1 x 1.  Shapes are types, so a layer's output shape and parameter
// count are constexpr and a mismatch between two layers is a compile error (principle 2 of
// DESIGN.md).  Only the batch size is a run-time value.
#pragma once

#include <cstddef>
#include <ostream>
#include <type_traits>

namespace auxl {

template <std::size_t C, std::size_t H = 1, std::size_t W = 1>
struct shape {
    static_assert(C > 0 && H > 0 && W > 0, "auxl::shape: every dimension must be positive");
    static constexpr std::size_t channels = C;
    static constexpr std::size_t height = H;
    static constexpr std::size_t width = W;
    static constexpr std::size_t size = C * H * W;
    /// True for a feature vector (C x 1 x 1), which is what dense layers take.
    static constexpr bool is_flat = (H == 1 && W == 1);

    friend std::ostream& operator<<(std::ostream& out, shape) {
        if constexpr (is_flat) {
            return out << C;
        } else {
            return out << C << 'x' << H << 'x' << W;
        }
    }
};

namespace detail {
template <class T>
struct is_shape_impl : std::false_type {};
template <std::size_t C, std::size_t H, std::size_t W>
struct is_shape_impl<shape<C, H, W>> : std::true_type {};
}  // namespace detail

template <class T>
concept Shape = detail::is_shape_impl<T>::value;

}  // namespace auxl
