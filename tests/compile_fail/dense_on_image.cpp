// Must not compile: a dense layer directly on a convolution's C x H x W output.
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/network.hpp"

using bad = auxl::nn::sequential<auxl::nn::input<1, 8, 8>, auxl::nn::conv2d<4, 3>, auxl::nn::dense<10>>;

int main() {
    auxl::nn::network<bad> net(4);
    return static_cast<int>(net.parameter_count);
}
