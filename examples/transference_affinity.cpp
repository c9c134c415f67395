// transference_affinity — how much each auxiliary task helps the primary one, epoch by epoch
// (TAG-style inter-task affinity), for any built-in composition on Fashion-MNIST.
//
// Trains `--method` (default human+equal) on a stratified subset and writes the per-epoch mean
// lookahead transference Z of the auxiliary task onto the primary task to a CSV; plot it with
// scripts/plot_affinity.py (matplotlib; scripts/setup.sh --plots installs it).
//
// Usage: transference_affinity [--method NAME] [--hierarchy half2|parity2|super5] [--epochs N]
//                              [--train-size N] [--seed S] [--out FILE.csv] [--plain-step 1]
// --plain-step 1 measures a plain gradient step θ − η∇L_aux instead of the optimizer's own step
// (which includes momentum, as in TAG, and therefore swings with the trajectory).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "auxl/auxl.hpp"
#include "auxl/train/transference_probe.hpp"

using namespace auxl;

int main(int argc, char** argv) {
    std::string method = "human+equal", hierarchy_name = "half2", out = "affinity.csv";
    std::size_t epochs = 20, train_size = 1000;
    std::uint64_t seed = 1;
    bool plain_step = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--method") method = value;
        else if (flag == "--hierarchy") hierarchy_name = value;
        else if (flag == "--epochs") epochs = std::stoul(value);
        else if (flag == "--train-size") train_size = std::stoul(value);
        else if (flag == "--seed") seed = std::stoull(value);
        else if (flag == "--out") out = value;
        else if (flag == "--plain-step") plain_step = value == "1";
        else {
            std::cerr << "transference_affinity: unknown flag " << flag << "\n";
            return 2;
        }
    }
    try {
        if (!data::fashion_mnist_available()) {
            std::cerr << "transference_affinity: Fashion-MNIST not found (scripts/setup.sh installs it)\n";
            return 77;
        }
        const auto h = data::hierarchy::by_name(hierarchy_name);
        if (h.primary_classes() != 2) raise<config_error>("transference_affinity: use a two-class hierarchy (half2, parity2)");
        auto fm = data::load_fashion_mnist();
        rng pick(seed, "subset");
        auto train_set = data::stratified_subset(fm.train, train_size, pick);
        using trunk = nn::sequential<nn::input<1, 28, 28>, nn::flatten, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
        using model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
        trainer_options o;
        o.seed = seed;
        o.schedule = optim::cosine_lr{epochs, 0.0};
        o.init = nn::init_scheme::pytorch_default;
        o.focal_gamma = 0.0;
        auto t = train::make_trainer<model>(method, h, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 5e-4}), o);
        train::transference_probe probe(out, 1, plain_step);
        std::visit(
            [&](auto& tr) {
                tr.fit(train_set, {.epochs = epochs}, probe, train::progress{});
                std::printf("%s: primary test accuracy %.4f\n", tr.method_name().c_str(), tr.evaluate(fm.test).primary_accuracy());
            },
            *t);
        std::printf("epoch  Z(aux -> primary)\n");
        for (const auto& row : probe.table()) std::printf("%5.0f  %+.4f\n", row[0], row[1]);
        std::printf("written to %s\n", out.c_str());
        return 0;
    } catch (const auxl::error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
}
