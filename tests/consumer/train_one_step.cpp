// A consumer of the installed auxl: composes a trainer (human labels + the GCS cosine rule), takes
// training steps on generated data and checks that the primary loss went down.  Built by the
// find_package consumer test, the add_subdirectory consumer test and Conan's test_package.
#include <auxl/auxl.hpp>
#include <auxl/version.hpp>

#include <cmath>
#include <cstdio>

using namespace auxl;

using trunk = nn::sequential<nn::input<8>, nn::dense<16>, nn::relu>;
using model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;

int main() {
    // 10 fine classes on a line, primary = parity of the fine class.
    data::dataset<float> d;
    d.name = "consumer";
    d.classes = 10;
    d.example_shape = {8, 1, 1};
    d.inputs = xt::xtensor<float, 2>::from_shape({256, 8});
    rng gen(1, "consumer");
    for (std::size_t i = 0; i < 256; ++i) {
        const auto c = std::int32_t(i % 10);
        d.labels.push_back(c);
        for (std::size_t j = 0; j < 8; ++j) d.inputs(i, j) = float((j == std::size_t(c) % 8 ? 2.0 : 0.0) + gen.normal(0.0, 0.3));
    }
    trainer<model, gen::human_hierarchy, weight::cosine, optim::sgd<float>> t(
        data::hierarchy::fashion_parity2(), gen::human_hierarchy{}, weight::cosine{1.0},
        optim::sgd<float>({.learning_rate = 0.1, .momentum = 0.9}), {.seed = 1, .batch_size = 32});
    const double before = t.evaluate(d).primary_loss();
    t.fit(d, {.epochs = 3});
    const double after = t.evaluate(d).primary_loss();
    std::printf("auxl %s: %s, primary loss %.4f -> %.4f after %zu steps; GEMM: %s\n", AUXL_VERSION_STRING,
                t.method_name().c_str(), before, after, t.steps_done(), gemm_backend().c_str());
    return std::isfinite(after) && after < before ? 0 : 1;
}
