// bench_compositions — one training step and one epoch of fit() of every composition the library
// offers: each generator with each rule it is offered with, the 16 that the demo's
// `--methods all` runs (train::method_names() and train::dtg_method_names()), on the MLP
// 784-256-128 and the CNN c32-p-c64-p-d128 of the side-by-side comparison, batch 128, with 1 and 2
// GEMM threads.  It ends with tables of ms per step and per epoch, each with its ratio to STL's in
// the same run, and the GEMM backend line.
//
//   build/benchmarks/bench_compositions                          # all of it: 6 minutes on 2 cores (2026-12-05)
//   build/benchmarks/bench_compositions --benchmark_filter=mlp   # the MLP only
//
// Steps: one fixed random batch (composition_timing.hpp), 5 warm-up steps, then a fixed number of
// timed steps that is a multiple of every periodic cadence (module-aware's upper level every 20
// steps, RL-AUX's PPO update every 4 batches), so that periodic work counts as often as in
// training: 40 MLP steps, 20 CNN steps.
// Epochs: fit() over random images, 1,024 on the MLP (8 steps of 128), 512 on the CNN (4 steps; the
// methods with a dev set train on 95 % of them and read the other 5 %, in as many steps), after one
// warm-up epoch: 5 timed epochs, so that they hold whole cadences as above (40 and 20 steps).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "composition_timing.hpp"
#include "reporting.hpp"

namespace {

constexpr std::size_t batch_size = 128;

template <class Trunk>
void time_step(benchmark::State& state, const std::string& method, int threads) {
    auxl::set_gemm_threads(threads);
    const auxl_bench::timing_batch batch(batch_size);
    const auto b = batch.view();
    auxl_bench::with_composition<Trunk>(method, batch_size, [&](auto& t) {
        batch.install_dev_set(t);
        for (int s = 0; s < 5; ++s) t.step(b);
        for (auto _ : state) {
            t.step(b);
            benchmark::ClobberMemory();
        }
    });
}

template <class Trunk>
void time_epoch(benchmark::State& state, const std::string& method, int threads, std::size_t examples) {
    auxl::set_gemm_threads(threads);
    const auto data = auxl_bench::random_images(examples, "epoch");
    auxl_bench::with_composition<Trunk>(method, batch_size, [&](auto& t) {
        std::size_t epochs = 1;
        t.fit(data, {.epochs = epochs});
        for (auto _ : state) t.fit(data, {.epochs = ++epochs});
    });
}

template <class Trunk>
void register_model(const std::string& model, benchmark::IterationCount steps, std::size_t epoch_examples) {
    for (const auto& method : auxl_bench::all_compositions()) {
        for (int threads : {1, 2}) {
            const std::string suffix = model + "/" + method + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(("step/" + suffix).c_str(),
                                         [method, threads](benchmark::State& s) { time_step<Trunk>(s, method, threads); })
                ->Iterations(steps)
                ->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("epoch/" + suffix).c_str(),
                                         [method, threads, epoch_examples](benchmark::State& s) {
                                             time_epoch<Trunk>(s, method, threads, epoch_examples);
                                         })
                ->Iterations(5)
                ->Unit(benchmark::kMillisecond);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_model<auxl::reference::mlp_trunk>("mlp", 40, 1024);
    register_model<auxl::reference::cnn_trunk>("cnn", 20, 512);
    auxl_bench::add_gemm_context();
    benchmark::Initialize(&argc, argv);
    auxl_bench::recording_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    const auto names = auxl_bench::all_compositions();
    for (const char* model : {"mlp", "cnn"}) {
        const std::string title = std::string(model) == "mlp" ? "MLP 784-256-128" : "CNN c32-p-c64-p-d128";
        std::printf("\nms per training step, %s (+heads 5, 10; DTG's methods 5, 10, 10), batch 128; ratio to STL\n",
                    title.c_str());
        auxl_bench::print_ratio_table(reporter.time, names, "stl", "/threads:", std::string("step/") + model + "/");
        std::printf("\nms per epoch of fit(), %s, %s; ratio to STL\n", title.c_str(),
                    std::string(model) == "mlp" ? "1,024 examples (8 steps)" : "512 examples (4 steps)");
        auxl_bench::print_ratio_table(reporter.time, names, "stl", "/threads:", std::string("epoch/") + model + "/");
    }
    auxl_bench::print_gemm_line();
    benchmark::Shutdown();
    return 0;
}
