// Must not compile: a 7x7 kernel on a 5x5 image without padding.
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/network.hpp"

using bad = auxl::nn::sequential<auxl::nn::input<1, 5, 5>, auxl::nn::conv2d<2, 7>>;

int main() {
    auxl::nn::network<bad> net(4);
    return static_cast<int>(net.parameter_count);
}
