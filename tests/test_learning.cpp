// End-to-end learning with the core alone: a two-head MLP on a generated hierarchical problem,
// and bitwise reproducibility from a seed.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/dropout.hpp"
#include "auxl/nn/multi_task.hpp"
#include "auxl/nn/relu.hpp"
#include "auxl/optim/sgd.hpp"

using namespace auxl;

namespace {
// 10 fine classes as Gaussian blobs in 20-D; primary task = fine / 2 (5 classes), auxiliary = fine.
struct blobs {
    static constexpr std::size_t dim = 20, fine = 10;
    std::vector<float> x;
    std::vector<std::int32_t> primary, auxiliary;

    blobs(std::size_t n, std::uint64_t seed) {
        rng centres(1234, "centres");  // the same problem for train and test
        std::vector<float> mu(fine * dim);
        for (auto& v : mu) v = float(centres.normal(0.0, 1.0));
        rng gen(seed, "samples");
        for (std::size_t i = 0; i < n; ++i) {
            const auto c = std::int32_t(gen.below(fine));
            for (std::size_t d = 0; d < dim; ++d) x.push_back(mu[std::size_t(c) * dim + d] + float(gen.normal(0.0, 0.7)));
            auxiliary.push_back(c);
            primary.push_back(c / 2);
        }
    }
};

using trunk = nn::sequential<nn::input<20>, nn::dense<32>, nn::relu, nn::dropout<1, 10>, nn::dense<32>, nn::relu>;
using model_type = nn::multi_task<trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>>;

/// Trains with SGD + momentum on primary + auxiliary loss and returns the final parameters.
std::vector<float> train(model_type& model, const blobs& data, std::uint64_t seed, std::size_t epochs) {
    rng init(seed, "init"), dropout(seed, "dropout"), order(seed, "order");
    model.init(init);
    optim::sgd<float> opt({.learning_rate = 0.05, .momentum = 0.9});
    loss::softmax_cross_entropy<float> ce;
    auto grad = model.make_arena();
    const std::size_t batch = 32, n = data.primary.size();
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    std::vector<float> xb(batch * blobs::dim), d0(batch * 5), d1(batch * 10);
    std::vector<std::int32_t> y0(batch), y1(batch);
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        shuffle(idx.begin(), idx.end(), order);
        for (std::size_t start = 0; start + batch <= n; start += batch) {
            for (std::size_t b = 0; b < batch; ++b) {
                const std::size_t i = idx[start + b];
                std::memcpy(&xb[b * blobs::dim], &data.x[i * blobs::dim], blobs::dim * sizeof(float));
                y0[b] = data.primary[i];
                y1[b] = data.auxiliary[i];
            }
            model.forward(xb.data(), batch, {true, &dropout, false});
            ce.value_and_gradient(model.output(0), batch, 5, loss::hard_targets{y0.data()}, nullptr, d0.data());
            ce.value_and_gradient(model.output(1), batch, 10, loss::hard_targets{y1.data()}, nullptr, d1.data());
            grad.zero();
            model.backward({d0.data(), d1.data()}, grad);
            opt.step(model.parameters(), grad);
        }
    }
    return {model.parameters().begin(), model.parameters().end()};
}

double accuracy(model_type& model, const blobs& data) {
    model.reserve(data.primary.size());
    model.forward(data.x.data(), data.primary.size());
    std::size_t correct = 0;
    for (std::size_t i = 0; i < data.primary.size(); ++i) {
        const float* row = model.output(0) + i * 5;
        correct += std::size_t(std::max_element(row, row + 5) - row) == std::size_t(data.primary[i]);
    }
    return double(correct) / double(data.primary.size());
}
}  // namespace

TEST_CASE("a two-head MLP learns a generated problem well above chance") {
    const blobs train_set(1024, 1), test_set(512, 2);
    model_type model(64);
    rng init(3, "init");
    model.init(init);
    const double before = accuracy(model, test_set);
    model.reserve(64);
    train(model, train_set, 3, 10);
    const double after = accuracy(model, test_set);
    MESSAGE("primary accuracy before " << before << ", after " << after << " (chance 0.2)");
    CHECK(after > 0.85);
    CHECK(after > before + 0.4);
}

TEST_CASE("the same seed gives bitwise the same parameters and another seed does not") {
    const blobs data(256, 4);
    model_type a(32), b(32), c(32);
    const auto pa = train(a, data, 11, 2);
    const auto pb = train(b, data, 11, 2);
    const auto pc = train(c, data, 12, 2);
    CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);
    CHECK(pa != pc);
}
