// side_by_side_auxl — auxl's half of benchmarks/side_by_side.py: times training steps of one
// composition and prints one JSON line, the same fields as benchmarks/torch_reference.py.
//
//   side_by_side_auxl --method maxl+equal --model mlp --threads 1 --steps 30 --warmup 5
//
// Model: MLP 784-256-128 or the CNN c32-p-c64-p-d128, heads 5 (primary, super5) and 10
// (auxiliary; DTG: 10 and 10, manual and generated), float, batch 128, SGD lr 0.01 momentum
// 0.9, cross-entropy; one fixed random batch (timing only).  The runner starts a fresh process per measurement so the two libraries
// alternate on the machine (A B A B ...); peak_rss_mb is the process's peak resident memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/train/runtime_select.hpp"
#include "reference_models.hpp"
#include "reporting.hpp"

using namespace auxl;

namespace {

using reference::cnn_trunk;
using reference::mlp_trunk;

struct args {
    std::string method = "stl", model = "mlp";
    int threads = 1;
    std::size_t steps = 30, warmup = 5, batch = 128;
};

args parse(int argc, char** argv) {
    args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--method") a.method = v;
        else if (k == "--model") a.model = v;
        else if (k == "--threads") a.threads = std::atoi(v.c_str());
        else if (k == "--steps") a.steps = std::size_t(std::atol(v.c_str()));
        else if (k == "--warmup") a.warmup = std::size_t(std::atol(v.c_str()));
        else if (k == "--batch") a.batch = std::size_t(std::atol(v.c_str()));
        else raise<config_error>("side_by_side_auxl: unknown flag ", k);
    }
    if (a.model != "mlp" && a.model != "cnn") raise<config_error>("side_by_side_auxl: --model must be mlp or cnn");
    return a;
}

template <class AnyTrainer>
double time_trainer(const args& a, const data::hierarchy& h, AnyTrainer& t);

template <class Trunk>
double time_steps(const args& a) {
    using model = reference::model<Trunk>;
    using dtg_model = reference::dtg_model<Trunk>;  // DTG's methods need a third head
    const auto h = data::hierarchy::fashion_super5();
    trainer_options o;
    o.seed = 1;
    o.batch_size = a.batch;
    o.focal_gamma = 0.0;
    const optim::sgd<float> sgd({.learning_rate = 0.01, .momentum = 0.9});
    const auto dtg_names = train::dtg_method_names();
    if (std::find(dtg_names.begin(), dtg_names.end(), a.method) != dtg_names.end()) {
        return time_trainer(a, h, *train::make_dtg_trainer<dtg_model>(a.method, h, sgd, o));
    }
    return time_trainer(a, h, *train::make_trainer<model>(a.method, h, sgd, o));
}

template <class AnyTrainer>
double time_trainer(const args& a, const data::hierarchy& h, AnyTrainer& t) {
    rng gen(2, "side-by-side");
    std::vector<float> x(a.batch * 784);
    for (auto& v : x) v = float(gen.uniform());
    std::vector<std::int32_t> fine(a.batch), primary(a.batch);
    std::vector<std::uint32_t> rows(a.batch);
    for (std::size_t i = 0; i < a.batch; ++i) {
        fine[i] = std::int32_t(gen.below(10));
        primary[i] = h.primary_of(fine[i]);
        rows[i] = std::uint32_t(i);
    }
    const train::batch<float> b{x.data(), a.batch, primary.data(), fine.data(), std::span<const std::uint32_t>(rows)};
    // Module-aware's upper level (every 20 steps), RL-AUX's reward and DTG's upper level read a
    // dev set: one epoch over the timing batch installs it (PyTorch's reference uses its first
    // batch likewise).  The trainer keeps a pointer to it, so it lives as long as the trainer.
    data::dataset<float> batch_set;
    return std::visit(
        [&](auto& tr) {
            using trainer_type = std::remove_reference_t<decltype(tr)>;
            if constexpr (trainer_type::needs_dev_set) {
                batch_set.name = "timing-batch";
                batch_set.classes = 10;
                batch_set.example_shape = {1, 28, 28};
                batch_set.inputs = xt::xtensor<float, 2>::from_shape({a.batch, 784});
                std::copy(x.begin(), x.end(), batch_set.inputs.begin());
                batch_set.labels = fine;
                typename trainer_type::fit_options fit;
                fit.dev = &batch_set;
                tr.fit(batch_set, fit);
            }
            for (std::size_t s = 0; s < a.warmup; ++s) tr.step(b);
            const auto start = std::chrono::steady_clock::now();
            for (std::size_t s = 0; s < a.steps; ++s) tr.step(b);
            const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
            return ms.count() / double(a.steps);
        },
        t);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const args a = parse(argc, argv);
        set_gemm_threads(a.threads);
        const double ms = a.model == "mlp" ? time_steps<mlp_trunk>(a) : time_steps<cnn_trunk>(a);
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
#if defined(AUXL_GEMM_EIGEN)
        const char* impl = "auxl-eigen";
#else
        const char* impl = "auxl";
#endif
        std::printf("{\"impl\": \"%s\", \"method\": \"%s\", \"model\": \"%s\", \"threads\": %d, \"batch\": %zu, \"steps\": %zu, "
                    "\"ms_per_step\": %.4f, \"peak_rss_mb\": %.1f, \"blas\": \"%s\"}\n",
                    impl, a.method.c_str(), a.model.c_str(), a.threads, a.batch, a.steps, ms, double(usage.ru_maxrss) / 1024.0,
                    gemm_backend().c_str());
        return 0;
    } catch (const auxl::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
