// two_head_synthetic — auxiliary learning with the core alone, on generated data.
//
// A hierarchical toy problem: 20 fine classes are Gaussian blobs in 32 dimensions; the primary
// task is to tell 4 coarse classes apart (fine / 5), the auxiliary task predicts the fine class.
// With only a few labelled examples per fine class the auxiliary head shapes the shared trunk;
// the program trains a single-task network (primary loss only) and a two-head network (primary +
// auxiliary, weight 1) from the same seed and prints their primary test accuracy.
//
// Usage: two_head_synthetic [seed]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "auxl/auxl.hpp"

using namespace auxl;

namespace {
constexpr std::size_t dim = 32, fine = 20, coarse = 4;

struct dataset {
    std::vector<float> x;
    std::vector<std::int32_t> primary, auxiliary;
    std::size_t size() const { return primary.size(); }
};

dataset make_data(std::size_t n, std::uint64_t seed, std::uint64_t sample_seed) {
    rng centres(seed, "centres");
    std::vector<float> mu(fine * dim);
    for (auto& v : mu) v = float(centres.normal(0.0, 1.0));
    rng gen(sample_seed, "samples");
    dataset d;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = std::int32_t(gen.below(fine));
        for (std::size_t j = 0; j < dim; ++j) d.x.push_back(mu[std::size_t(c) * dim + j] + float(gen.normal(0.0, 1.1)));
        d.auxiliary.push_back(c);
        d.primary.push_back(c / std::int32_t(fine / coarse));
    }
    return d;
}

using trunk = nn::sequential<nn::input<dim>, nn::dense<64>, nn::relu, nn::dense<64>, nn::relu>;
using model_type = nn::multi_task<trunk, nn::head<nn::dense<coarse>>, nn::head<nn::dense<fine>>>;

double primary_accuracy(model_type& model, const dataset& d) {
    model.forward(d.x.data(), d.size());
    std::size_t correct = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const float* row = model.output(0) + i * coarse;
        correct += std::size_t(std::max_element(row, row + coarse) - row) == std::size_t(d.primary[i]);
    }
    return double(correct) / double(d.size());
}

double train_model(bool with_auxiliary, const dataset& train_set, const dataset& test_set, std::uint64_t seed) {
    model_type model(std::max(train_set.size(), test_set.size()));
    rng init(seed, "init"), order(seed, "order");
    model.init(init);
    optim::sgd<float> opt({.learning_rate = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
    loss::softmax_cross_entropy<float> ce;
    auto grad = model.make_arena();
    const std::size_t batch = 16, epochs = 60;
    std::vector<std::size_t> idx(train_set.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::vector<float> xb(batch * dim), d0(batch * coarse), d1(batch * fine);
    std::vector<std::int32_t> y0(batch), y1(batch);
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        shuffle(idx.begin(), idx.end(), order);
        for (std::size_t start = 0; start + batch <= idx.size(); start += batch) {
            for (std::size_t b = 0; b < batch; ++b) {
                const std::size_t i = idx[start + b];
                std::memcpy(&xb[b * dim], &train_set.x[i * dim], dim * sizeof(float));
                y0[b] = train_set.primary[i];
                y1[b] = train_set.auxiliary[i];
            }
            model.forward(xb.data(), batch);
            ce.value_and_gradient(model.output(0), batch, coarse, loss::hard_targets{y0.data()}, nullptr, d0.data());
            if (with_auxiliary) {
                ce.value_and_gradient(model.output(1), batch, fine, loss::hard_targets{y1.data()}, nullptr, d1.data());
            }
            grad.zero();
            model.backward({d0.data(), with_auxiliary ? d1.data() : nullptr}, grad);
            opt.step(model.parameters(), grad);
        }
    }
    return primary_accuracy(model, test_set);
}
}  // namespace

int main(int argc, char** argv) {
    const std::uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
    const std::size_t seeds = 3;
    std::printf("two_head_synthetic: %zu coarse (primary) / %zu fine (auxiliary) classes, %zu-D blobs\n", coarse, fine, dim);
    std::printf("%-28s %10s %10s\n", "run", "STL acc", "2-head acc");
    double stl_sum = 0, aux_sum = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t s = 0; s < seeds; ++s) {
        const auto train_set = make_data(320, seed + s, 2 * (seed + s));
        const auto test_set = make_data(4000, seed + s, 2 * (seed + s) + 1);
        const double stl = train_model(false, train_set, test_set, seed + s);
        const double two_head = train_model(true, train_set, test_set, seed + s);
        stl_sum += stl;
        aux_sum += two_head;
        std::printf("seed %-23llu %10.4f %10.4f\n", static_cast<unsigned long long>(seed + s), stl, two_head);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-28s %10.4f %10.4f\n", "mean", stl_sum / seeds, aux_sum / seeds);
    std::printf("primary test accuracy (chance %.2f); %.1f s in all\n", 1.0 / coarse, secs);
    return 0;
}
