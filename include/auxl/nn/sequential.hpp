// auxl/nn/sequential.hpp — architecture descriptions written top-down.
//
//   using trunk = nn::sequential<nn::input<1, 28, 28>,
//                                nn::conv2d<32, 5>, nn::relu, nn::max_pool2d<2>,
//                                nn::flatten, nn::dense<128>, nn::relu>;
//   using head  = nn::head<nn::dense<5>>;          // input shape comes from the trunk
//
// Both are empty types: they describe a network and are turned into running code by
// nn::basic_network (one chain) or nn::basic_multi_task (trunk + heads), which choose the scalar
// type.  Shapes, parameter counts and arena offsets are compile-time facts of the description.
#pragma once

#include <cstddef>

#include "auxl/core/shape.hpp"
#include "auxl/nn/block.hpp"

namespace auxl::nn {

/// The input of a network: C x H x W (a flat vector of C features when H = W = 1).
template <std::size_t C, std::size_t H = 1, std::size_t W = 1>
struct input {
    using shape_type = shape<C, H, W>;
};

namespace detail {
template <class T>
struct is_input : std::false_type {};
template <std::size_t C, std::size_t H, std::size_t W>
struct is_input<input<C, H, W>> : std::true_type {};
}  // namespace detail

/// A chain of layers from a declared input.
template <class Input, class... Layers>
struct sequential {
    static_assert(detail::is_input<Input>::value,
                  "auxl::nn::sequential: the first argument must be nn::input<C, H, W>, e.g. nn::input<784>");
    static_assert(sizeof...(Layers) > 0, "auxl::nn::sequential needs at least one layer after its input");
    using input_shape = typename Input::shape_type;

    template <class T>
    using block_type = block<T, input_shape, Layers...>;
    using output_shape = typename block_type<double>::output_shape;

    /// The same chain with more layers at the end (e.g. a trunk plus a classifier layer).
    template <class... More>
    using append = sequential<Input, Layers..., More...>;
};

/// A chain of layers whose input is whatever feeds it (a head on a trunk's features).
template <class... Layers>
struct head {
    static_assert(sizeof...(Layers) > 0, "auxl::nn::head needs at least one layer");
    template <class T, class In>
    using block_type = block<T, In, Layers...>;
};

}  // namespace auxl::nn
