// Data-parallel training over MPI, run as `mpirun -np 2 auxl_mpi_tests` (CTest: mpi_two_ranks).
// Every rank runs every test case (the collective calls must line up).  The checks: 2 ranks with
// batch b train exactly like 1 process with batch 2b (within float rounding) for each
// composition the reducer supports; ranks never drift apart; rank 0 alone writes checkpoints,
// which every rank resumes from; a bad input on one rank stops every rank with the same kind of
// error; ranks built with different seeds are refused.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include "auxl/auxl.hpp"
#include "auxl/dist/mpi.hpp"
#include "auxl/gen/dtg.hpp"
#include "auxl/gen/maxl.hpp"
#include "auxl/gen/rl_aux.hpp"
#include "auxl/weight/module_aware.hpp"
#include "auxl/weight/transference.hpp"
#include "../synthetic.hpp"

using namespace auxl;

namespace {
using mlp = nn::sequential<nn::input<20>, nn::dense<16>, nn::relu, nn::dense<16>, nn::relu>;
using model = nn::multi_task<mlp, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using sgd = optim::sgd<float>;
using maxl_gen = gen::maxl<gen::maxl_net_for<model>>;
// DTG needs a head per manual task plus the generated task's.
using model3 = nn::multi_task<mlp, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
using dtg_gen = gen::dtg_for<model3, 16, 2, gen::human_hierarchy>;

constexpr std::size_t per_rank_batch = 16;

int world_size() {
    int n = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}
int world_rank() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

trainer_options options_with(std::size_t batch, std::uint64_t seed = 11) {
    trainer_options o;
    o.seed = seed;
    o.batch_size = batch;
    return o;
}

double max_abs_difference(const arena<float>& a, const arena<float>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
    return d;
}
double max_abs(const arena<float>& a) {
    double d = 0;
    for (float v : a) d = std::max(d, std::abs(double(v)));
    return d;
}

// Trains the composition with `size` ranks x per_rank_batch and in one process with the global
// batch; returns the largest parameter difference (and checks the run changed the parameters).
template <class Gen, class Rule, class Model = model>
double distributed_minus_single(Gen gen, Rule rule, std::size_t rows, std::size_t epochs) {
    const auto data = testing::blobs(rows, 5, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    const sgd opt({.learning_rate = 0.05, .momentum = 0.9});
    trainer<Model, Gen, Rule, sgd, dist::mpi_reducer> parallel(parity, gen, rule, opt, options_with(per_rank_batch));
    trainer<Model, Gen, Rule, sgd> single(parity, gen, rule, opt, options_with(per_rank_batch * std::size_t(world_size())));
    const auto start = single.model().parameters();
    const auto a = parallel.fit(data, {.epochs = epochs});
    const auto b = single.fit(data, {.epochs = epochs});
    REQUIRE(parallel.steps_done() == single.steps_done());
    CHECK(max_abs_difference(start, single.model().parameters()) > 1e-2);  // training moved them
    // The reported losses are global means: equal to the single process's.
    CHECK(std::abs(a.train_loss[0] - b.train_loss[0]) < 1e-4);
    const double d = max_abs_difference(parallel.model().parameters(), single.model().parameters());
    MESSAGE(parallel.method_name() << ": max |θ_2ranks − θ_1process| = " << d << " (max |θ| "
                                   << max_abs(single.model().parameters()) << ", " << parallel.steps_done() << " steps)");
    return d;
}
}  // namespace

TEST_CASE("MPI: the reducer sees every rank and averages by share of the global batch") {
    dist::mpi_reducer r;
    REQUIRE(r.size() == 2);
    // Rank 0 holds 3 rows, rank 1 holds 1: shares 3/4 and 1/4.
    const std::size_t rows = r.rank() == 0 ? 3 : 1;
    CHECK(r.begin_step(rows) == 4);
    std::vector<double> x = {r.rank() == 0 ? 1.0 : 5.0, 2.0};
    r.average(std::span<double>(x));
    CHECK(x[0] == doctest::Approx(0.75 * 1.0 + 0.25 * 5.0));
    CHECK(x[1] == doctest::Approx(2.0));
    CHECK(r.all(true));
    CHECK_FALSE(r.all(r.rank() == 0));
    CHECK(r.same_everywhere(42));
    CHECK_FALSE(r.same_everywhere(std::uint64_t(r.rank())));
}

TEST_CASE("MPI: 2 ranks x batch b equal 1 process x batch 2b — STL") {
    // 249 rows: the last global batch (25 rows) splits 13 / 12, so the shares are unequal.
    CHECK(distributed_minus_single(gen::none{}, weight::equal{}, 249, 3) < 1e-5);
}

TEST_CASE("MPI: 2 ranks x batch b equal 1 process x batch 2b — human + equal and human + cosine") {
    CHECK(distributed_minus_single(gen::human_hierarchy{}, weight::equal{}, 256, 3) < 1e-5);
    CHECK(distributed_minus_single(gen::human_hierarchy{}, weight::cosine{}, 249, 3) < 1e-5);
}

TEST_CASE("MPI: 2 ranks x batch b equal 1 process x batch 2b — MAXL (meta-gradient averaged)") {
    CHECK(distributed_minus_single(maxl_gen{}, weight::equal{}, 249, 3) < 1e-4);
}

TEST_CASE("MPI: 2 ranks x batch b equal 1 process x batch 2b — module-aware and transference") {
    weight::module_aware_options mo;
    mo.interval = 2;
    CHECK(distributed_minus_single(gen::human_hierarchy{}, weight::module_aware{mo}, 256, 2) < 1e-4);
    CHECK(distributed_minus_single(gen::human_hierarchy{}, weight::transference{}, 256, 2) < 1e-5);
}

TEST_CASE("MPI: 2 ranks x batch b equal 1 process x batch 2b — DTG (upper level averaged)") {
    CHECK(distributed_minus_single<dtg_gen, weight::equal, model3>(dtg_gen{}, weight::equal{}, 249, 2) < 1e-4);
}

TEST_CASE("MPI: RL-AUX keeps one policy on every rank (PPO and REINFORCE, one and two passes)") {
    using rl_gen = gen::rl_aux_for<model>;
    const auto data = testing::blobs(249, 9, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    dist::mpi_reducer check;
    for (const bool two_pass : {false, true}) {
        for (const auto learner : {gen::rl_learner::ppo, gen::rl_learner::reinforce}) {
            gen::rl_aux_options ro;
            ro.learn_weights = true;
            ro.learner = learner;
            ro.schedule = two_pass ? gen::rl_schedule::two_pass : gen::rl_schedule::single_pass;
            ro.rollout_batches = 3;
            trainer<model, rl_gen, weight::equal, sgd, dist::mpi_reducer> t(parity, rl_gen{ro}, weight::equal{},
                                                                           sgd({.learning_rate = 0.05}), options_with(per_rank_batch));
            std::vector<float> start;
            t.generator().visit_state([&](const std::string& name, auto& v) {
                if constexpr (requires { v.data(); v.size(); }) {
                    if (name == "policy") start.assign(v.data(), v.data() + v.size());
                }
            });
            const auto report = t.fit(data, {.epochs = 2});  // fit() checks the models agree after each epoch
            std::uint64_t h = 0;
            double moved = 0;
            t.generator().visit_state([&](const std::string& name, auto& v) {
                if constexpr (requires { v.data(); v.size(); }) {
                    if (name != "policy") return;
                    h = io::bytes_hash(v.data(), v.size() * sizeof(v.data()[0]));
                    for (std::size_t i = 0; i < v.size(); ++i) moved = std::max(moved, std::abs(double(v.data()[i]) - double(start[i])));
                }
            });
            CHECK(check.same_everywhere(h));  // the policies are identical on both ranks
            CHECK(moved > 0);                 // and they learned
            CHECK(std::isfinite(report.train_loss[0]));
        }
    }
}

TEST_CASE("MPI: rank 0 writes the checkpoint; every rank resumes from it exactly") {
    const auto data = testing::blobs(200, 6, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    const sgd opt({.learning_rate = 0.05, .momentum = 0.9});
    using parallel_trainer = trainer<model, maxl_gen, weight::equal, sgd, dist::mpi_reducer>;
    const auto dir = std::filesystem::temp_directory_path() / "auxl_mpi_checkpoint";
    if (world_rank() == 0) {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    parallel_trainer straight(parity, maxl_gen{}, weight::equal{}, opt, options_with(per_rank_batch));
    straight.fit(data, {.epochs = 4});

    parallel_trainer first(parity, maxl_gen{}, weight::equal{}, opt, options_with(per_rank_batch));
    first.fit(data, {.epochs = 2});
    first.save_checkpoint(dir / "run.ckpt");
    MPI_Barrier(MPI_COMM_WORLD);  // rank 0 has written it
    CHECK(std::filesystem::exists(dir / "run.ckpt"));
    CHECK_FALSE(std::filesystem::exists(dir / "run.ckpt.tmp"));
    parallel_trainer resumed(parity, maxl_gen{}, weight::equal{}, opt, options_with(per_rank_batch));
    resumed.load_checkpoint(dir / "run.ckpt");
    resumed.fit(data, {.epochs = 4});
    CHECK(max_abs_difference(resumed.model().parameters(), straight.model().parameters()) == 0.0);

    // A single process can read the data-parallel checkpoint (the reducer is not part of the type check).
    trainer<model, maxl_gen, weight::equal, sgd> alone(parity, maxl_gen{}, weight::equal{}, opt,
                                                       options_with(per_rank_batch * std::size_t(world_size())));
    alone.load_checkpoint(dir / "run.ckpt");
    CHECK(max_abs_difference(alone.model().parameters(), first.model().parameters()) == 0.0);
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(dir);
}

TEST_CASE("MPI: a NaN in one rank's shard stops every rank, or every rank skips the step") {
    auto data = testing::blobs(64, 7, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    for (std::size_t i = 0; i < data.size(); ++i) data.inputs(i, 3) = std::numeric_limits<float>::quiet_NaN();
    // Only rank 1 sees NaN: each rank trains on a copy where the other rank's rows are clean is not
    // possible (same files), so poison every row and give rank 0 clean data instead.
    if (world_rank() == 0) data = testing::blobs(64, 7, 20, 1.2);
    const sgd opt({.learning_rate = 0.05});
    trainer<model, gen::human_hierarchy, weight::cosine, sgd, dist::mpi_reducer> raising(
        parity, gen::human_hierarchy{}, weight::cosine{}, opt, options_with(per_rank_batch));
    const auto before = raising.model().parameters();
    if (world_rank() == 1) {
        CHECK_THROWS_AS(raising.fit(data, {.epochs = 1}), value_error);
    } else {
        CHECK_THROWS_WITH_AS(raising.fit(data, {.epochs = 1}), doctest::Contains("another process"), numeric_error);
    }
    CHECK(max_abs_difference(before, raising.model().parameters()) == 0.0);

    auto o = options_with(per_rank_batch);
    o.on_non_finite = non_finite_policy::skip_step;
    trainer<model, gen::human_hierarchy, weight::cosine, sgd, dist::mpi_reducer> skipping(
        parity, gen::human_hierarchy{}, weight::cosine{}, opt, o);
    const auto start = skipping.model().parameters();
    skipping.fit(data, {.epochs = 1});
    CHECK(skipping.skipped_steps() == 2);  // 64 rows = 2 global batches of 32, each with a poisoned shard
    CHECK(max_abs_difference(start, skipping.model().parameters()) == 0.0);
}

TEST_CASE("MPI: ranks constructed with different seeds are refused before training") {
    const auto data = testing::blobs(64, 8, 20, 1.2);
    const auto parity = data::hierarchy::fashion_parity2();
    trainer<model, gen::none, weight::equal, sgd, dist::mpi_reducer> t(parity, gen::none{}, weight::equal{},
                                                                       sgd({.learning_rate = 0.05}),
                                                                       options_with(per_rank_batch, 100 + std::uint64_t(world_rank())));
    CHECK_THROWS_WITH_AS(t.fit(data, {.epochs = 1}), doctest::Contains("different parameters"), config_error);
}

int main(int argc, char** argv) {
    dist::mpi_environment mpi(argc, argv);
    doctest::Context context(argc, argv);
    const int failed = context.run();
    // Every rank reports; the run fails if any rank failed.
    int any = failed != 0, result = 0;
    MPI_Allreduce(&any, &result, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return result;
}
