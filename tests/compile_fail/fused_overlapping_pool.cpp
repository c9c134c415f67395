// Must not compile: a fused max pooling whose windows overlap (3 x 3 with stride 2).
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/max_pool2d.hpp"
#include "auxl/nn/network.hpp"
#include "auxl/nn/relu.hpp"

using bad = auxl::nn::sequential<auxl::nn::input<1, 9, 9>, auxl::nn::conv2d<2, 3, 1, 1, auxl::nn::relu, auxl::nn::max_pool2d<3, 2>>>;

int main() {
    auxl::nn::network<bad> net(4);
    return static_cast<int>(net.parameter_count);
}
