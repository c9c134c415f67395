// Data-parallel throughput: training examples per second of one composition with the MPI reducer,
// for whatever process count mpirun gives (benchmarks/mpi_throughput.sh runs 1 and 2 processes
// interleaved and prints the table).  MLP 784-256-128 on Fashion-MNIST-shaped inputs (random
// pixels, real shapes: the time per step does not depend on the values), batch per process given.
//   mpirun -np 2 build/benchmarks/bench_mpi [method] [batch per process] [steps]
// Prints one line: method, processes, threads, batch per process, steps, seconds, examples/s.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "auxl/auxl.hpp"
#include "auxl/dist/mpi.hpp"
#include "auxl/gen/maxl.hpp"

using namespace auxl;
using mlp = nn::sequential<nn::input<784>, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
using model = nn::multi_task<mlp, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using sgd = optim::sgd<float>;

template <class Gen, class Rule>
void run(const char* method, std::size_t batch, std::size_t steps) {
    dist::mpi_reducer r;
    const std::size_t n = batch * std::size_t(r.size()) * steps;
    data::dataset<float> d;
    d.name = "random-fashion-shaped";
    d.classes = 10;
    d.example_shape = {28, 28, 1};
    d.inputs = xt::xtensor<float, 2>::from_shape({n, 784});
    rng gen(1, "pixels");
    for (auto& v : d.inputs) v = float(gen.uniform());
    for (std::size_t i = 0; i < n; ++i) d.labels.push_back(std::int32_t(gen.below(10)));
    trainer_options o;
    o.seed = 1;
    o.batch_size = batch;
    trainer<model, Gen, Rule, sgd, dist::mpi_reducer> t(data::hierarchy::fashion_half2(), Gen{}, Rule{},
                                                        sgd({.learning_rate = 0.01, .momentum = 0.9}), o);
    t.fit(d, {.epochs = 1});  // warm-up epoch (allocations, first-touch)
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    t.fit(d, {.epochs = 2});
    MPI_Barrier(MPI_COMM_WORLD);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r.rank() == 0) {
        std::printf("%s,%d,%d,%zu,%zu,%.4f,%.1f\n", method, r.size(), auxl::gemm_threads(), batch, steps, s,
                    double(n) / s);
    }
}

int main(int argc, char** argv) {
    dist::mpi_environment mpi(argc, argv);
    const std::string method = argc > 1 ? argv[1] : "stl";
    const std::size_t batch = argc > 2 ? std::size_t(std::atol(argv[2])) : 128;
    const std::size_t steps = argc > 3 ? std::size_t(std::atol(argv[3])) : 100;
    if (method == "stl") run<gen::none, weight::equal>("stl", batch, steps);
    else if (method == "human+equal") run<gen::human_hierarchy, weight::equal>("human+equal", batch, steps);
    else if (method == "human+cosine") run<gen::human_hierarchy, weight::cosine>("human+cosine", batch, steps);
    else if (method == "maxl+equal") run<gen::maxl<gen::maxl_net_for<model>>, weight::equal>("maxl+equal", batch, steps);
    else {
        std::fprintf(stderr, "bench_mpi: unknown method %s (stl, human+equal, human+cosine, maxl+equal)\n", method.c_str());
        return 2;
    }
    return 0;
}
