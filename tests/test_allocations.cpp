// "No allocation in the steady-state step" (DESIGN.md principle 5), checked by counting calls
// to the global operator new.  A separate executable, because replacing operator new affects
// every translation unit it is linked with.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/train/runtime_select.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}

void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
    ++allocations;
    const std::size_t a = static_cast<std::size_t>(align);
    if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace auxl;

TEST_CASE("a training step with a CNN trunk, two heads, dropout and SGD allocates nothing after the first") {
    // With one and two GEMM threads: with two, the convolution's samples run on two workers
    // (core/parallel.hpp run_workers), whose threads must not be started per step.
    const int threads_before = gemm_threads();
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        set_gemm_threads(threads);
        using trunk = nn::sequential<nn::input<1, 12, 12>, nn::conv2d<4, 3, 1, 1>, nn::relu, nn::max_pool2d<2>,
                                     nn::conv2d<4, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,  // fused buffers too
                                     nn::flatten, nn::dense<16>, nn::relu, nn::dropout<>>;
        using model_type = nn::multi_task<trunk, nn::head<nn::dense<3>>, nn::head<nn::dense<6>>>;
        const std::size_t batch = 8;
        model_type model(batch);
        rng init(1, "init"), dropout(1, "dropout");
        model.init(init);
        std::vector<float> x(batch * 144, 0.5f), d0(batch * 3), d1(batch * 6);
        std::vector<std::int32_t> y0(batch, 1), y1(batch, 4);
        loss::softmax_cross_entropy<float> ce(2.0f);
        optim::sgd<float> opt({.learning_rate = 0.01, .momentum = 0.9});
        auto grad = model.make_arena();
        auto direction = model.make_arena();
        auto step = [&] {
            model.forward(x.data(), batch, {true, &dropout, false});
            ce.value_and_gradient(model.output(0), batch, 3, loss::hard_targets{y0.data()}, nullptr, d0.data());
            ce.value_and_gradient(model.output(1), batch, 6, loss::hard_targets{y1.data()}, nullptr, d1.data());
            grad.zero();
            model.backward({d0.data(), d1.data()}, grad);
            model.backward_head(0, d0.data(), grad);
            model.tangent(&direction, x.data());
            opt.step(model.parameters(), grad);
        };
        step();  // first step sizes the optimizer state and the tangent buffers
        const std::size_t before = allocations.load();
        for (int i = 0; i < 5; ++i) step();
        CHECK(allocations.load() - before == 0);
    }
    set_gemm_threads(threads_before);
}

TEST_CASE("a trainer step of every composition allocates nothing once its buffers exist") {
    // DESIGN.md principle 5 for whole steps: generator, rule, upper levels (module-aware's every
    // 20 steps, MAXL's and DTG's every step, RL-AUX's PPO update every 4), on a convolutional trunk
    // with 1 and 2 threads.  The first steps size every buffer; 40 more (two module-aware upper
    // steps, ten PPO updates) must not allocate.
    using trunk = nn::sequential<nn::input<1, 6, 6>, nn::conv2d<2, 3, 1, 1, nn::relu, nn::max_pool2d<2>>, nn::flatten,
                                 nn::dense<8>, nn::relu>;
    using model = nn::multi_task<trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>>;
    using dtg_model = nn::multi_task<trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
    constexpr std::size_t batch = 16;
    const auto h = data::hierarchy::fashion_super5();
    data::dataset<float> set;
    set.name = "allocation-test";
    set.classes = 10;
    set.example_shape = {1, 6, 6};
    set.inputs = xt::xtensor<float, 2>::from_shape({batch, 36});
    rng gen(4, "allocation-test");
    for (auto& v : set.inputs) v = float(gen.uniform());
    std::vector<std::int32_t> primary;
    std::vector<std::uint32_t> rows;
    for (std::size_t i = 0; i < batch; ++i) {
        set.labels.push_back(std::int32_t(i % 10));
        primary.push_back(h.primary_of(set.labels[i]));
        rows.push_back(std::uint32_t(i));
    }
    const train::batch<float> b{set.inputs.data(), batch, primary.data(), set.labels.data(), std::span<const std::uint32_t>(rows)};
    trainer_options o;
    o.seed = 1;
    o.batch_size = batch;
    const optim::sgd<float> sgd({.learning_rate = 0.01, .momentum = 0.9});
    auto count_steps = [&](auto& t) {
        using T = std::remove_reference_t<decltype(t)>;
        typename T::fit_options fit;
        fit.dev = &set;  // the dev set module-aware, RL-AUX and DTG read
        t.fit(set, fit);
        for (int s = 0; s < 45; ++s) t.step(b);
        const std::size_t before = allocations.load();
        for (int s = 0; s < 40; ++s) t.step(b);
        return allocations.load() - before;
    };
    const int threads_before = gemm_threads();
    for (int threads : {1, 2}) {
        set_gemm_threads(threads);
        for (const auto& method : train::method_names()) {
            INFO(method << ", " << threads << " threads");
            CHECK(std::visit(count_steps, *train::make_trainer<model>(method, h, sgd, o)) == 0);
        }
        for (const auto& method : train::dtg_method_names()) {
            INFO(method << ", " << threads << " threads");
            CHECK(std::visit(count_steps, *train::make_dtg_trainer<dtg_model>(method, h, sgd, o)) == 0);
        }
    }
    set_gemm_threads(threads_before);
}

TEST_CASE("the allocation counter sees ordinary allocations") {
    const std::size_t before = allocations.load();
    auto* v = new std::vector<int>(100);
    CHECK(allocations.load() - before == 2);
    delete v;
}
