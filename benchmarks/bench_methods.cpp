// bench_methods — milliseconds per training step of every composition the library offers, in
// one run, and each one's cost as a ratio to the single-task (STL) step.
//
// Model: MLP 784-256-128 with heads 5 (primary) and 10 (auxiliary), float, batch 128, SGD with
// momentum; the same random batch every step (timing only).  OpenBLAS threads 1 and 2.
// Targets (DESIGN.md, issue tracker): MAXL's exact meta-step <= 4x an STL step.
//
// Run: ./build/benchmarks/bench_methods [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/gen/dtg.hpp"
#include "auxl/gen/maxl.hpp"
#include "auxl/gen/rl_aux.hpp"
#include "auxl/weight/module_aware.hpp"
#include "auxl/weight/transference.hpp"
#include "reporting.hpp"


using namespace auxl;

namespace {
using mlp_trunk = nn::sequential<nn::input<784>, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
using mlp_model = nn::multi_task<mlp_trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>>;
using maxl_gen = gen::maxl<gen::maxl_net_for<mlp_model>>;
using maxl_fd = gen::maxl<gen::maxl_net_for<mlp_model>, gen::finite_difference_meta_gradient>;
using sgd = optim::sgd<float>;
using rl_gen = gen::rl_aux_for<mlp_model>;
// DTG: heads primary (5), manual task (human, 10), generated task (10); generators of width 128.
using dtg_model = nn::multi_task<mlp_trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
using dtg_gen = gen::dtg_for<dtg_model, 128, 5, gen::human_hierarchy>;

template <class Generator>
Generator make_generator(bool weights = false, std::size_t upper_every = 1,
                         meta::hvp_method hvp = meta::hvp_method::automatic) {
    if constexpr (requires(Generator g) { g.feature_generator(); }) {
        gen::dtg_options o;
        o.psi_per_class = 2;
        o.upper_every = upper_every;
        o.hvp = hvp;
        return Generator(o);
    } else if constexpr (requires(Generator g) { g.blocks(); }) {
        if constexpr (requires(Generator g) { g.policy(); }) {
            gen::rl_aux_options ro;
            ro.psi_per_class = 2;  // 5 primary classes x 2 = the auxiliary head's 10 outputs
            ro.learn_weights = weights;
            return Generator(ro);
        } else {
            gen::maxl_options mo;
            mo.psi_per_class = 2;
            return Generator(mo);
        }
    } else {
        return Generator{};
    }
}

template <class Rule>
Rule make_rule(meta::hvp_method hvp) {
    if constexpr (std::is_same_v<Rule, weight::module_aware>) {
        weight::module_aware_options o;
        o.hvp = hvp;
        return Rule(o);
    } else {
        return Rule{};
    }
}

/// One epoch of fit() over 1,024 random 784-pixel examples (8 steps at batch 128), per iteration.
/// Hvp: how module-aware and DTG form their second-order products (exact by default).
template <class Generator, class Rule, bool Weights = false, class Model = mlp_model, std::size_t UpperEvery = 1,
          meta::hvp_method Hvp = meta::hvp_method::automatic>
void BM_epoch(benchmark::State& state) {
    set_gemm_threads(static_cast<int>(state.range(1)));
    const std::size_t B = static_cast<std::size_t>(state.range(0));
    data::dataset<float> d;
    d.classes = 10;
    d.example_shape = {784, 1, 1};
    d.name = "random";
    d.inputs = xt::xtensor<float, 2>::from_shape({1024, 784});
    rng gen(3, "bench");
    for (auto& v : d.inputs) v = float(gen.uniform());
    for (std::size_t i = 0; i < 1024; ++i) d.labels.push_back(std::int32_t(gen.below(10)));
    trainer_options o;
    o.seed = 1;
    o.batch_size = B;
    o.focal_gamma = 0.0;
    trainer<Model, Generator, Rule, sgd> t(data::hierarchy::fashion_super5(), make_generator<Generator>(Weights, UpperEvery, Hvp),
                                           make_rule<Rule>(Hvp), sgd({.learning_rate = 0.01, .momentum = 0.9}), o);
    std::size_t epochs = 0;
    for (auto _ : state) {
        ++epochs;
        t.fit(d, {.epochs = epochs});
    }
}

template <class Generator, class Rule>
void BM_step(benchmark::State& state) {
    set_gemm_threads(static_cast<int>(state.range(1)));
    const std::size_t B = static_cast<std::size_t>(state.range(0));
    trainer_options o;
    o.seed = 1;
    o.batch_size = B;
    o.focal_gamma = 0.0;
    trainer<mlp_model, Generator, Rule, sgd> t(data::hierarchy::fashion_super5(), make_generator<Generator>(), Rule{},
                                               sgd({.learning_rate = 0.01, .momentum = 0.9}), o);
    rng gen(2, "bench");
    std::vector<float> x(B * 784);
    for (auto& v : x) v = float(gen.uniform());
    std::vector<std::int32_t> fine(B), primary(B);
    for (std::size_t i = 0; i < B; ++i) {
        fine[i] = std::int32_t(gen.below(10));
        primary[i] = t.hierarchy().primary_of(fine[i]);
    }
    const train::batch<float> b{x.data(), B, primary.data(), fine.data(), {}};
    for (auto _ : state) {
        t.step(b);
        benchmark::ClobberMemory();
    }
}

void args(benchmark::internal::Benchmark* b) {
    for (int threads : {1, 2}) b->Args({128, threads});
    b->ArgNames({"batch", "threads"});
    b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_step<gen::none, weight::equal>)->Name("stl")->Apply(args);
BENCHMARK(BM_step<gen::human_hierarchy, weight::equal>)->Name("human+equal")->Apply(args);
BENCHMARK(BM_step<gen::human_hierarchy, weight::cosine>)->Name("human+cosine")->Apply(args);
BENCHMARK(BM_step<gen::human_hierarchy, weight::transference>)->Name("human+transference")->Apply(args);
BENCHMARK(BM_step<maxl_gen, weight::equal>)->Name("maxl+equal")->Apply(args);
BENCHMARK(BM_step<maxl_gen, weight::cosine>)->Name("maxl+cosine")->Apply(args);
BENCHMARK(BM_step<maxl_fd, weight::equal>)->Name("maxl-fd+equal")->Apply(args);
// RL-AUX needs a dev set for its reward, so it is timed per epoch of fit(), beside STL's epoch.
BENCHMARK(BM_epoch<gen::none, weight::equal>)->Name("epoch/stl")->Apply(args);
BENCHMARK(BM_epoch<gen::human_hierarchy, weight::equal>)->Name("epoch/human+equal")->Apply(args);
BENCHMARK(BM_epoch<gen::human_hierarchy, weight::cosine>)->Name("epoch/human+cosine")->Apply(args);
BENCHMARK(BM_epoch<gen::human_hierarchy, weight::module_aware>)->Name("epoch/human+module_aware")->Apply(args);
BENCHMARK(BM_epoch<gen::human_hierarchy, weight::transference>)->Name("epoch/human+transference")->Apply(args);
BENCHMARK(BM_epoch<maxl_gen, weight::equal>)->Name("epoch/maxl+equal")->Apply(args);
BENCHMARK(BM_epoch<rl_gen, weight::equal>)->Name("epoch/rl_aux+equal")->Apply(args);
BENCHMARK(BM_epoch<rl_gen, weight::equal, true>)->Name("epoch/rl_aux_w+equal")->Apply(args);
BENCHMARK(BM_epoch<dtg_gen, weight::equal, false, dtg_model, 1>)->Name("epoch/dtg(upper_every=1)")->Apply(args);
BENCHMARK(BM_epoch<dtg_gen, weight::equal, false, dtg_model, 20>)->Name("epoch/dtg(upper_every=20)")->Apply(args);
// The same with central-difference second-order products (the default before 2026-12-05).
constexpr auto central = meta::hvp_method::central_difference;
BENCHMARK(BM_epoch<gen::human_hierarchy, weight::module_aware, false, mlp_model, 1, central>)
    ->Name("epoch/human+module_aware(central)")
    ->Apply(args);
BENCHMARK(BM_epoch<dtg_gen, weight::equal, false, dtg_model, 1, central>)->Name("epoch/dtg(upper_every=1,central)")->Apply(args);

}  // namespace

int main(int argc, char** argv) {
    auxl_bench::add_gemm_context();
    benchmark::Initialize(&argc, argv);
    auxl_bench::recording_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    std::printf("\nms per training step, MLP 784-256-128 (+heads 5, 10), batch 128; ratio to STL in the same run\n");
    auxl_bench::print_ratio_table(reporter.time, {"stl", "human+equal", "human+cosine", "human+transference", "maxl+equal",
                                                  "maxl+cosine", "maxl-fd+equal"},
                                  "stl");
    std::printf("\nms per epoch of fit() (1,024 examples, 8 steps; RL-AUX, module_aware and DTG train on 95%% of them\n"
                "and use the other 5%% as their dev set; DTG's model has a third head for its generated task;\n"
                "(central): second-order products by central differences instead of exact ones);\n"
                "ratio to STL's epoch in the same run\n");
    auxl_bench::print_ratio_table(reporter.time, {"epoch/stl", "epoch/human+equal", "epoch/human+cosine", "epoch/human+module_aware",
                                                  "epoch/human+transference", "epoch/maxl+equal", "epoch/rl_aux+equal",
                                                  "epoch/rl_aux_w+equal", "epoch/dtg(upper_every=1)", "epoch/dtg(upper_every=20)",
                                                  "epoch/human+module_aware(central)", "epoch/dtg(upper_every=1,central)"},
                                  "epoch/stl");
    auxl_bench::print_gemm_line();
    benchmark::Shutdown();
    return 0;
}
