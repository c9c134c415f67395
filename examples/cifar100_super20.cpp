// cifar100_super20 — the auxiliary-learning papers' main setting, for users who have the data:
// CIFAR-100 with the 20 superclasses as the primary task and the 100 fine classes as the human
// auxiliary task (MAXL, RL-AUX, AuxiLearn).  Not run by our tests or CI: CIFAR is not packaged in
// Debian, and a VGG-style network on a CPU takes hours per run.
//
//   build/examples/cifar100_super20 --data <dir with train.bin, test.bin> [--method maxl+equal]
//                                   [--epochs 200] [--seed 1] [--train-size N] [--threads N]
//
// Network: a VGG-style stack (as in the papers, smaller than VGG-16): 2 × conv64, pool,
// 2 × conv128, pool, 2 × conv256, pool, dense 512; heads 20 (primary) and 100 (auxiliary: the fine
// class for the human task; ψ = 5 generated labels per superclass for MAXL and RL-AUX, as in the
// papers).  SGD lr 0.01, momentum 0.9, weight decay 5e-4, step schedule ×0.5 every 50 epochs,
// batch 100 (MAXL's and RL-AUX's recipe).  Any name of train::method_names() works.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <variant>

#include "auxl/auxl.hpp"
#include "auxl/data/cifar.hpp"
#include "auxl/train/runtime_select.hpp"


using namespace auxl;

namespace {
// Each convolution applies its ReLU, and every second one its pooling, to one sample at a time
// (nn/fused_activation.hpp, nn/fused_pool.hpp): the numbers of separate layers, less memory traffic.
using vgg_trunk = nn::sequential<nn::input<3, 32, 32>,
                                 nn::conv2d<64, 3, 1, 1, nn::relu>, nn::conv2d<64, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                                 nn::conv2d<128, 3, 1, 1, nn::relu>, nn::conv2d<128, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                                 nn::conv2d<256, 3, 1, 1, nn::relu>, nn::conv2d<256, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                                 nn::flatten, nn::dense<512>, nn::relu>;
using model = nn::multi_task<vgg_trunk, nn::head<nn::dense<20>>, nn::head<nn::dense<100>>>;
}  // namespace

int main(int argc, char** argv) {
    std::string dir, method = "human+equal";
    std::size_t epochs = 200, train_size = 0;
    std::uint64_t seed = 1;
    int threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--data") dir = v;
        else if (k == "--method") method = v;
        else if (k == "--epochs") epochs = std::size_t(std::atol(v.c_str()));
        else if (k == "--train-size") train_size = std::size_t(std::atol(v.c_str()));
        else if (k == "--seed") seed = std::uint64_t(std::atoll(v.c_str()));
        else if (k == "--threads") threads = std::atoi(v.c_str());
        else {
            std::cerr << "cifar100_super20: unknown flag " << k << "\n";
            return 2;
        }
    }
    if (dir.empty()) {
        std::cerr << "cifar100_super20: --data <directory with CIFAR-100's train.bin and test.bin> is required\n";
        return 2;
    }
    try {
        if (threads > 0) set_gemm_threads(threads);
        auto c = data::load_cifar100(dir);
        if (train_size > 0 && train_size < c.train.size()) {
            rng pick(seed, "subset");
            c.train = data::stratified_subset(c.train, train_size, pick);
        }
        const auto h = data::hierarchy::cifar100_super20();
        trainer_options o;
        o.seed = seed;
        o.batch_size = 100;
        o.schedule = optim::step_lr{50, 0.5};
        const optim::sgd<float> sgd({.learning_rate = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
        auto t = train::make_trainer<model>(method, h, sgd, o);
        std::visit(
            [&](auto& tr) {
                typename std::remove_reference_t<decltype(tr)>::fit_options fit;
                fit.epochs = epochs;
                fit.validation = &c.test;
                tr.fit(c.train, fit, train::progress{}, train::csv_log{"cifar100_super20_" + method + ".csv", method});
                std::printf("%s: test accuracy on the 20 superclasses %.2f%%\n", method.c_str(),
                            100 * tr.evaluate(c.test).primary_accuracy());
            },
            *t);
        return 0;
    } catch (const auxl::error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
}
