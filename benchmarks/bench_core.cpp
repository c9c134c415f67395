// bench_core — speed of the network core against the raw GEMM of its backend, measured in one run.
// Built twice: bench_core (OpenBLAS) and bench_core_eigen (auxl::eigen_gemm, Eigen's kernels).
//
// What it times (float, GEMM threads 1 and 2):
//   * forward+backward of a dense layer and of conv2d layers (GFLOP/s of their GEMM work);
//   * one full single-task (STL) training step of the MLP 784-256-128 with heads 5 and 10 —
//     forward of both heads, primary loss, backward, SGD step — at batch 128 and 256;
//   * auxl::gemm on exactly the GEMM shapes that step executes, called back to back (cblas_sgemm
//     behind a fixed-rank view with OpenBLAS; Eigen's product with the Eigen backend).
//   * Adam's update pass over a generator-sized arena whose moments are decaying through the
//     subnormal range, with the optimizers' subnormal flushing on and off (core/denormals.hpp).
// At the end it prints, per batch and thread count, the step's GFLOP/s as a share of the
// raw GEMM sequence's (DESIGN.md target: >= 60 %), the Adam pass's time without flushing over
// its time with it, plus the backend and OpenBLAS kernel in use.
//
// Run: ./build/benchmarks/bench_core [--benchmark_repetitions=5 ...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "reporting.hpp"


using namespace auxl;

namespace {

using mlp_trunk = nn::sequential<nn::input<784>, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
using mlp_model = nn::multi_task<mlp_trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>>;

struct gemm_shape {
    transpose ta, tb;
    std::size_t m, n, k;
};

double flops_of(const std::vector<gemm_shape>& shapes) {
    double f = 0;
    for (const auto& s : shapes) f += 2.0 * double(s.m) * double(s.n) * double(s.k);
    return f;
}

/// The GEMMs one STL step of mlp_model runs at batch B: forward of every layer and head,
/// weight gradients of the trunk and the primary head, input gradients of every layer but the first.
std::vector<gemm_shape> stl_step_gemms(std::size_t B) {
    const transpose N = transpose::no, T = transpose::yes;
    return {
        {N, T, B, 256, 784}, {N, T, B, 128, 256}, {N, T, B, 5, 128}, {N, T, B, 10, 128},  // forward
        {T, N, 5, 128, B},   {N, N, B, 128, 5},                                            // primary head
        {T, N, 128, 256, B}, {N, N, B, 256, 128},                                          // dense 2
        {T, N, 256, 784, B},                                                               // dense 1 (no dx)
    };
}

void set_threads(benchmark::State& state, int arg_index) {
    set_gemm_threads(static_cast<int>(state.range(arg_index)));
}

void random_fill(float* p, std::size_t n, rng& gen) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<float>(gen.normal(0.0, 1.0));
}

// ---------------------------------------------------------------------------------------------
void BM_sgemm_stl_shapes(benchmark::State& state) {
    const auto B = static_cast<std::size_t>(state.range(0));
    set_threads(state, 1);
    const auto shapes = stl_step_gemms(B);
    std::vector<std::vector<float>> a, b, c;
    rng gen(1, "bench");
    for (const auto& s : shapes) {
        a.emplace_back(s.m * s.k);
        b.emplace_back(s.k * s.n);
        c.emplace_back(s.m * s.n);
        random_fill(a.back().data(), a.back().size(), gen);
        random_fill(b.back().data(), b.back().size(), gen);
    }
    for (auto _ : state) {
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            const auto& s = shapes[i];
            gemm<float>(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a[i].data(), b[i].data(), 1.0f, c[i].data());
        }
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] = benchmark::Counter(flops_of(shapes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_stl_step_mlp(benchmark::State& state) {
    const std::size_t B = static_cast<std::size_t>(state.range(0));
    set_threads(state, 1);
    mlp_model model(B);
    rng init(1, "init"), data(1, "data");
    model.init(init);
    std::vector<float> x(B * 784);
    random_fill(x.data(), x.size(), data);
    std::vector<std::int32_t> y(B);
    for (auto& v : y) v = static_cast<std::int32_t>(data.below(5));
    optim::sgd<float> opt({.learning_rate = 0.01, .momentum = 0.9});
    loss::softmax_cross_entropy<float> ce;
    auto grad = model.make_arena();
    std::vector<float> d0(B * 5);
    for (auto _ : state) {
        model.forward(x.data(), B);
        ce.value_and_gradient(model.output(0), B, 5, loss::hard_targets{y.data()}, nullptr, d0.data());
        grad.zero();
        model.backward({d0.data(), nullptr}, grad);
        opt.step(model.parameters(), grad);
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops_of(stl_step_gemms(B)) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_dense_forward_backward(benchmark::State& state) {
    const std::size_t B = static_cast<std::size_t>(state.range(0));
    set_threads(state, 1);
    using L = nn::dense<256>::layer<float, shape<784>>;
    L layer;
    std::vector<float> params(L::parameter_count), grad(L::parameter_count), x(B * 784), y(B * 256), dy(B * 256),
        dx(B * 784);
    rng gen(2, "bench");
    layer.init(params.data(), gen, nn::init_scheme::he_uniform);
    random_fill(x.data(), x.size(), gen);
    random_fill(dy.data(), dy.size(), gen);
    nn::layer_context<float> ctx;
    ctx.params = params.data();
    ctx.grad = grad.data();
    ctx.batch = B;
    for (auto _ : state) {
        layer.forward(ctx, x.data(), y.data());
        layer.backward(ctx, x.data(), y.data(), dy.data(), dx.data());
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] = benchmark::Counter(3 * 2.0 * double(B) * 784 * 256 * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

template <std::size_t OutC, std::size_t K, class In>
void BM_conv_forward_backward(benchmark::State& state) {
    const std::size_t B = static_cast<std::size_t>(state.range(0));
    set_threads(state, 1);
    using L = typename nn::conv2d<OutC, K>::template layer<float, In>;
    L layer;
    layer.reserve(B);
    std::vector<float> params(L::parameter_count), grad(L::parameter_count), x(B * In::size),
        y(B * L::output_shape::size), dy(B * L::output_shape::size), dx(B * In::size);
    rng gen(3, "bench");
    layer.init(params.data(), gen, nn::init_scheme::he_uniform);
    random_fill(x.data(), x.size(), gen);
    random_fill(dy.data(), dy.size(), gen);
    nn::layer_context<float> ctx;
    ctx.params = params.data();
    ctx.grad = grad.data();
    ctx.batch = B;
    for (auto _ : state) {
        layer.forward(ctx, x.data(), y.data());
        layer.backward(ctx, x.data(), y.data(), dy.data(), dx.data());
        benchmark::ClobberMemory();
    }
    const double gemm_flops = 3 * 2.0 * double(B) * OutC * L::patch * L::pixels;
    state.counters["GFLOP/s"] = benchmark::Counter(gemm_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------------------
// Max pooling's forward alone on a batch of ReLU outputs (half zeros, so many ties), the pooling
// the CNN's convolutions apply to their outputs.  Its loops are branch-free since 2026-12-06
// (nn/max_pool2d.hpp: running_max); docs/bench/maxpool_branch_free_spr_2026-12-06.log.
template <std::size_t K, std::size_t S, class In>
void BM_max_pool_forward(benchmark::State& state) {
    const std::size_t B = static_cast<std::size_t>(state.range(0));
    using L = typename nn::max_pool2d<K, S>::template layer<float, In>;
    std::vector<float> x(B * In::size), y(B * L::output_shape::size);
    std::vector<std::uint32_t> argmax(y.size());
    rng gen(5, "bench-pool");
    random_fill(x.data(), x.size(), gen);
    for (auto& v : x) v = std::max(v, 0.0f);
    for (auto _ : state) {
        L::pool(x.data(), y.data(), argmax.data(), B * In::channels);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(std::int64_t(state.iterations() * B));
}

// ---------------------------------------------------------------------------------------------
// 100 Adam steps over DTG's feature generator (789-128-784: 202,256 weights) as DTG reaches them
// at 60,000 examples: 98 % of the gradients exactly 0 (counted in that run; most hidden units dead),
// their first moments 800 steps into a 0.9-per-step decay, i.e. about to go below FLT_MIN.
// Argument: flush_subnormals (1 = the default).  Each iteration starts from the same state.
void BM_adam_decaying_moments(benchmark::State& state) {
    const bool flush = state.range(0) != 0;
    set_gemm_threads(1);
    constexpr std::size_t P = 202256, steps = 100;
    rng gen(7, "bench-adam");
    std::vector<float> w(P), g(P), g_live(P);
    random_fill(w.data(), P, gen);
    random_fill(g.data(), P, gen);
    for (std::size_t i = 0; i < P; ++i) g_live[i] = i % 50 == 0 ? 1e-3f * g[i] : 0.0f;  // 2 % still learning
    optim::adam<float> prepared({.learning_rate = 1e-3, .flush_subnormals = flush});
    prepared.step(w, g);
    for (int t = 0; t < 800; ++t) prepared.step(w, g_live);
    const std::vector<float> w0 = w;
    for (auto _ : state) {
        state.PauseTiming();
        optim::adam<float> opt = prepared;
        w = w0;
        state.ResumeTiming();
        for (std::size_t t = 0; t < steps; ++t) opt.step(w, g_live);
        benchmark::DoNotOptimize(w.data());
    }
    state.SetItemsProcessed(std::int64_t(state.iterations() * steps));
}

void batch_and_threads(benchmark::internal::Benchmark* b) {
    for (int batch : {128, 256})
        for (int threads : {1, 2}) b->Args({batch, threads});
    b->ArgNames({"batch", "threads"});
    b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_sgemm_stl_shapes)->Apply(batch_and_threads);
BENCHMARK(BM_stl_step_mlp)->Apply(batch_and_threads);
BENCHMARK(BM_dense_forward_backward)->Apply(batch_and_threads);
BENCHMARK(BM_conv_forward_backward<32, 5, shape<1, 28, 28>>)->Apply(batch_and_threads);
BENCHMARK(BM_conv_forward_backward<64, 5, shape<32, 12, 12>>)->Apply(batch_and_threads);
BENCHMARK(BM_max_pool_forward<2, 2, shape<32, 28, 28>>)->Arg(128)->ArgName("batch")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_max_pool_forward<2, 2, shape<64, 14, 14>>)->Arg(128)->ArgName("batch")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_max_pool_forward<3, 2, shape<32, 28, 28>>)->Arg(128)->ArgName("batch")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_adam_decaying_moments)->Arg(1)->Arg(0)->ArgName("flush")->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    auxl_bench::add_gemm_context();
    benchmark::Initialize(&argc, argv);
    auxl_bench::recording_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    std::printf("\nSTL step of MLP 784-256-128 (+heads 5, 10) vs the raw GEMM on the same shapes\n");
    std::printf("%-8s %-8s %14s %14s %10s\n", "batch", "threads", "step GFLOP/s", "GEMM GFLOP/s", "share");
    for (int batch : {128, 256}) {
        for (int threads : {1, 2}) {
            const std::string suffix = "/batch:" + std::to_string(batch) + "/threads:" + std::to_string(threads);
            const auto& rates = reporter.counters["GFLOP/s"];
            auto step = rates.find("BM_stl_step_mlp" + suffix);
            auto raw = rates.find("BM_sgemm_stl_shapes" + suffix);
            if (step == rates.end() || raw == rates.end()) continue;
            std::printf("%-8d %-8d %14.2f %14.2f %9.1f%%\n", batch, threads, step->second, raw->second,
                        100.0 * step->second / raw->second);
        }
    }
    const auto flushed = reporter.time.find("BM_adam_decaying_moments/flush:1");
    const auto ieee = reporter.time.find("BM_adam_decaying_moments/flush:0");
    if (flushed != reporter.time.end() && ieee != reporter.time.end()) {
        std::printf("\nAdam, 100 steps over 202,256 weights with moments decaying below FLT_MIN (1 thread):\n"
                    "  flush_subnormals on %.2f ms, off %.2f ms: %.1fx slower without flushing\n",
                    flushed->second, ieee->second, ieee->second / flushed->second);
    }
    auxl_bench::print_gemm_line();
    benchmark::Shutdown();
    return 0;
}
