// Must not compile: a weighting rule without the WeightingRule members.
#include "auxl/auxl.hpp"
#include "auxl/gen/human_hierarchy.hpp"
#include "auxl/train/trainer.hpp"

struct not_a_rule {
    double weight = 1.0;
};

using trunk = auxl::nn::sequential<auxl::nn::input<4>, auxl::nn::dense<8>, auxl::nn::relu>;
using model = auxl::nn::multi_task<trunk, auxl::nn::head<auxl::nn::dense<2>>, auxl::nn::head<auxl::nn::dense<4>>>;

int main() {
    auxl::trainer<model, auxl::gen::human_hierarchy, not_a_rule, auxl::optim::sgd<float>> t(
        auxl::data::hierarchy("h", {0, 0, 1, 1}));
    return static_cast<int>(t.steps_done());
}
