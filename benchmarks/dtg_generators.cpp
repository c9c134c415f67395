// dtg_generators — what auxl's DTG generators do during a study run: live hidden units, and how
// much the generated labels say beyond the primary class.  auxl's counterpart of
// benchmarks/dtg_dead_units.py (which counts the units in the PyTorch reference).
//
//   dtg_generators [--hierarchy half2] [--model mlp|cnn] [--train-size 1000] [--seed 1]
//                  [--epochs 20] [--checks 0,50,100,200,446,892] [--probe 2000] [--threads 1]
//                  [--generator-lr 1e-3] [--entropy-weight 0.2] [--data DIR]
//
// Trains DTG exactly as examples/fashion_hierarchy does for one seed (same subset, dev split,
// initialisation, batch order, cosine schedule; the generator options can be changed), and at each
// step count in --checks prints, on --probe training examples:
//   - feature / label units: hidden ReLU units of each generator positive on at least one example
//     (a unit silent on every one of them gets no gradient: the generator works without it);
//   - label entropy: mean per-example entropy of the generated label, over its maximum log ψ;
//   - label information: I(example; generated label | primary class) in nats, the entropy of the
//     primary class's mean generated label minus the mean per-example entropy (0 when every
//     example of a class gets the same label distribution; at most log ψ), and as a share of log ψ;
//   - distance: mean ‖x̃ − x‖ of the generated examples.
// The run stops at the last check.  Why: the study's DTG runs end with generated labels within
// 0.1 % of uniform inside each block (README, "DTG-style joint data-task generation"); this shows
// when, and whether the label generator's units or its objective make it so.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/data/fashion_mnist.hpp"
#include "auxl/data/subset.hpp"
#include "reference_models.hpp"

using namespace auxl;

namespace {

struct args {
    std::string hierarchy = "half2", model = "mlp";
    std::size_t train_size = 1000, epochs = 20, probe = 2000;
    std::uint64_t seed = 1;
    std::vector<std::size_t> checks = {0, 50, 100, 200, 446, 892};
    int threads = 1;
    double generator_lr = 1e-3, entropy_weight = 0.2;
    std::filesystem::path data_dir;
};

args parse(int argc, char** argv) {
    args a;
    auto number = [&](int i) {
        char* end = nullptr;
        const double v = std::strtod(argv[i], &end);
        if (end == argv[i] || *end) raise<config_error>("dtg_generators: ", argv[i - 1], " needs a number, got '", argv[i], "'");
        return v;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--help") {
            std::cout << "usage: dtg_generators [--hierarchy half2|parity2|super5] [--model mlp|cnn] [--train-size N] [--seed S]\n"
                         "       [--epochs E] [--checks 0,50,...] [--probe N] [--threads T] [--generator-lr R]\n"
                         "       [--entropy-weight L] [--data DIR]\n";
            std::exit(0);
        }
        if (i + 1 >= argc) raise<config_error>("dtg_generators: ", k, " needs a value");
        ++i;
        if (k == "--hierarchy") a.hierarchy = argv[i];
        else if (k == "--model") a.model = argv[i];
        else if (k == "--train-size") a.train_size = std::size_t(number(i));
        else if (k == "--seed") a.seed = std::uint64_t(number(i));
        else if (k == "--epochs") a.epochs = std::size_t(number(i));
        else if (k == "--probe") a.probe = std::size_t(number(i));
        else if (k == "--threads") a.threads = int(number(i));
        else if (k == "--generator-lr") a.generator_lr = number(i);
        else if (k == "--entropy-weight") a.entropy_weight = number(i);
        else if (k == "--data") a.data_dir = argv[i];
        else if (k == "--checks") {
            std::set<std::size_t> s;
            std::stringstream in(argv[i]);
            for (std::string part; std::getline(in, part, ',');) {
                char* end = nullptr;
                const long v = std::strtol(part.c_str(), &end, 10);
                if (part.empty() || *end || v < 0) raise<config_error>("dtg_generators: --checks takes step counts >= 0, got '", argv[i], "'");
                s.insert(std::size_t(v));
            }
            a.checks.assign(s.begin(), s.end());
        } else {
            raise<config_error>("dtg_generators: unknown flag '", k, "' (try --help)");
        }
    }
    if (a.model != "mlp" && a.model != "cnn") raise<config_error>("dtg_generators: --model must be mlp or cnn");
    if (a.checks.empty() || a.probe == 0 || a.train_size == 0 || a.epochs == 0)
        raise<config_error>("dtg_generators: --checks, --probe, --train-size and --epochs must be non-empty / positive");
    return a;
}

/// Hidden ReLU units of a one-hidden-layer generator (dense, relu, dense) that are positive on
/// at least one of the rows: its first layer is copied into a network of that layer alone.
template <class Generator, std::size_t Inputs, std::size_t Hidden>
std::size_t live_units(const Generator& g, const std::vector<float>& rows, std::size_t n) {
    nn::network<nn::sequential<nn::input<Inputs>, nn::dense<Hidden>>> first(256);
    const auto& module = g.layout().modules().at(0);
    if (module.extent != first.parameters().size())
        raise<shape_error>("dtg_generators: the generator's first layer has ", module.extent, " parameters, expected ",
                           first.parameters().size());
    std::copy_n(g.parameters().data() + module.offset, module.extent, first.parameters().data());
    std::vector<char> alive(Hidden, 0);
    for (std::size_t start = 0; start < n; start += 256) {
        const std::size_t m = std::min<std::size_t>(256, n - start);
        const float* z = first.forward(rows.data() + start * Inputs, m);
        for (std::size_t i = 0; i < m * Hidden; ++i)
            if (z[i] > 0) alive[i % Hidden] = 1;
    }
    return std::size_t(std::count(alive.begin(), alive.end(), 1));
}

/// fit() callback: calls show(step) at each step count in checks (sorted), stops at the last.
struct at_checks {
    using wants_trainer = void;
    const std::vector<std::size_t>& checks;
    std::function<void(std::size_t)> show;
    template <class Trainer>
    bool on_step_end(const train::step_report&, Trainer& t) {
        const std::size_t s = t.steps_done();
        if (std::binary_search(checks.begin(), checks.end(), s)) show(s);
        return s >= checks.back();
    }
};

template <class Trunk, std::size_t Primary>
int run(const args& a, const data::hierarchy& h, const data::fashion_mnist& fm) {
    using model_type = reference::dtg_model<Trunk, Primary>;
    constexpr std::size_t F = model_type::input_size, A = 10, hidden = 128;
    rng subset_stream(a.seed, "subset");
    const auto train_set = data::stratified_subset(fm.train, a.train_size, subset_stream);
    trainer_options options;  // as examples/fashion_hierarchy
    options.seed = a.seed;
    options.batch_size = 128;
    options.schedule = optim::cosine_lr{a.epochs, 0.0};
    options.init = nn::init_scheme::pytorch_default;
    options.focal_gamma = 0.0;
    const optim::sgd<float> sgd({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
    gen::dtg_options dtg;
    dtg.generator_lr = a.generator_lr;
    dtg.entropy_weight = a.entropy_weight;
    dtg.psi_per_class = A / Primary;
    using G = train::dtg_default_for<model_type, gen::human_hierarchy>;
    trainer<model_type, G, weight::equal, optim::sgd<float>> t(h, G{dtg}, weight::equal{1.0}, sgd, options);

    // The probe: --probe rows of the training subset drawn at random (a stratified subset lists its
    // rows class by class, so its first rows would cover few classes); dev rows may be among them,
    // only the generators see them here.
    const std::size_t n = std::min(a.probe, train_set.size());
    std::vector<std::size_t> rows(train_set.size());
    std::iota(rows.begin(), rows.end(), std::size_t(0));
    rng probe_stream(a.seed, "probe");
    shuffle(rows.begin(), rows.end(), probe_stream);
    const std::size_t psi = A / Primary;
    std::vector<float> gin(n * (F + Primary), 0.f), x(n * F), x_tilde(n * F), y_tilde(n * A);
    std::vector<std::int32_t> primary(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t r = rows[i];
        std::copy_n(train_set.inputs.data() + r * F, F, x.begin() + std::ptrdiff_t(i * F));
        std::copy_n(train_set.inputs.data() + r * F, F, gin.begin() + std::ptrdiff_t(i * (F + Primary)));
        primary[i] = h.primary_of(train_set.labels[r]);
        gin[i * (F + Primary) + F + std::size_t(primary[i])] = 1.f;
    }
    loss::block_layout blocks(std::vector<std::size_t>(Primary, psi));

    std::printf("DTG generators, auxl: %s, %s, %zu training examples, seed %llu, %zu epochs; generator Adam %.3g, entropy weight %.3g; "
                "probe %zu training examples\n",
                a.hierarchy.c_str(), a.model.c_str(), a.train_size, static_cast<unsigned long long>(a.seed), a.epochs, a.generator_lr,
                a.entropy_weight, n);
    std::printf("%8s %14s %12s %14s %22s %10s\n", "step", "feature units", "label units", "label entropy", "label information",
                "distance");
    auto report = [&](std::size_t step) {
        auto& g = t.generator();
        auto& fg = g.feature_generator();
        auto& lg = g.label_generator();
        double dist = 0, entropy = 0;
        const std::size_t chunk = std::min(fg.max_batch(), lg.max_batch());  // the training batch
        for (std::size_t start = 0; start < n; start += chunk) {
            const std::size_t m = std::min(chunk, n - start);
            const float* delta = fg.forward(gin.data() + start * (F + Primary), m);
            for (std::size_t i = 0; i < m; ++i) {
                double d2 = 0;
                for (std::size_t j = 0; j < F; ++j) {
                    const float v = x[(start + i) * F + j] + delta[i * F + j];
                    x_tilde[(start + i) * F + j] = v;
                    d2 += double(delta[i * F + j]) * double(delta[i * F + j]);
                }
                dist += std::sqrt(d2);
            }
            loss::block_softmax<float>::forward(lg.forward(x_tilde.data() + start * F, m), m, blocks, primary.data() + start,
                                                y_tilde.data() + start * A);
        }
        // Per-example entropy, and the entropy of each primary class's mean label.
        std::vector<double> mean(Primary * A, 0.0), count(Primary, 0.0);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t p = std::size_t(primary[i]);
            count[p] += 1;
            for (std::size_t c = 0; c < A; ++c) {
                const double q = y_tilde[i * A + c];
                mean[p * A + c] += q;
                if (q > 0) entropy -= q * std::log(q);
            }
        }
        double class_entropy = 0;  // Σ_p share_p H(mean label of p)
        for (std::size_t p = 0; p < Primary; ++p) {
            if (count[p] == 0) continue;
            double hp = 0;
            for (std::size_t c = 0; c < A; ++c) {
                const double q = mean[p * A + c] / count[p];
                if (q > 0) hp -= q * std::log(q);
            }
            class_entropy += count[p] / double(n) * hp;
        }
        entropy /= double(n);
        const double log_psi = std::log(double(psi)), information = class_entropy - entropy;
        std::printf("%8zu %14zu %12zu %14.5f %13.5f (%5.2f%%) %10.4f\n", step, live_units<std::remove_reference_t<decltype(fg)>, F + Primary, hidden>(fg, gin, n),
                    live_units<std::remove_reference_t<decltype(lg)>, F, hidden>(lg, x_tilde, n), entropy / log_psi, information,
                    100 * information / log_psi, dist / double(n));
        std::fflush(stdout);
    };
    // The generators are initialised with the trainer; step 0 is before any training.
    if (a.checks.front() == 0) report(0);
    if (a.checks.back() > 0) {
        typename decltype(t)::fit_options fit;
        fit.epochs = a.epochs;
        t.fit(train_set, fit, at_checks{a.checks, report});
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const args a = parse(argc, argv);
        set_gemm_threads(a.threads);
        if (!data::fashion_mnist_available(a.data_dir)) {
            std::cerr << "dtg_generators: Fashion-MNIST not found in " << data::fashion_mnist_dir(a.data_dir).string()
                      << " (install the Debian package dataset-fashion-mnist: scripts/setup.sh does)\n";
            return std::getenv("AUXL_REQUIRE_DATA") ? 1 : 77;  // 77: skipped (CTest), as the demo
        }
        const auto h = data::hierarchy::by_name(a.hierarchy);
        const auto fm = data::load_fashion_mnist(a.data_dir);
        const bool two = h.primary_classes() == 2;
        if (!two && h.primary_classes() != 5) raise<config_error>("dtg_generators: hierarchy ", a.hierarchy, " has neither 2 nor 5 primary classes");
        if (a.model == "mlp") return two ? run<reference::mlp_trunk, 2>(a, h, fm) : run<reference::mlp_trunk, 5>(a, h, fm);
        return two ? run<reference::cnn_trunk, 2>(a, h, fm) : run<reference::cnn_trunk, 5>(a, h, fm);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
