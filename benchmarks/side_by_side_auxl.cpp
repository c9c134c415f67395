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

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "auxl/auxl.hpp"
#include "composition_timing.hpp"
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

template <class Trunk>
double time_steps(const args& a) {
    const auxl_bench::timing_batch batch(a.batch);
    const auto b = batch.view();
    return auxl_bench::with_composition<Trunk>(a.method, a.batch, [&](auto& tr) {
        batch.install_dev_set(tr);
        for (std::size_t s = 0; s < a.warmup; ++s) tr.step(b);
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t s = 0; s < a.steps; ++s) tr.step(b);
        const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
        return ms.count() / double(a.steps);
    });
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
