// Must not compile: an exact second-order pass through a network with a layer that has no
// backward_tangent (it is written to the basic Layer contract only).
#include "auxl/nn/dense.hpp"
#include "auxl/nn/network.hpp"
#include "../plain_layer.hpp"

using spec = auxl::nn::sequential<auxl::nn::input<4>, auxl::nn::dense<3>, auxl::testing::scale_by_two>;

int main() {
    auxl::nn::network<spec> net(2);
    float dy[6] = {}, dy_dot[6] = {};
    net.backward_tangent(dy, dy_dot, nullptr);
    return 0;
}
