// Must not compile: a generator whose meta-update is not averaged across processes (DTG, for
// now) under the MPI reducer — each rank would otherwise drift to its own generator.
#include "auxl/auxl.hpp"
#include "auxl/dist/mpi.hpp"
#include "auxl/gen/dtg.hpp"

using trunk = auxl::nn::sequential<auxl::nn::input<4>, auxl::nn::dense<8>, auxl::nn::relu>;
using model = auxl::nn::multi_task<trunk, auxl::nn::head<auxl::nn::dense<2>>, auxl::nn::head<auxl::nn::dense<4>>,
                                   auxl::nn::head<auxl::nn::dense<4>>>;
using generator = auxl::gen::dtg_for<model, 8, 2>;

int main(int argc, char** argv) {
    auxl::dist::mpi_environment mpi(argc, argv);
    auxl::trainer<model, generator, auxl::weight::equal, auxl::optim::sgd<float>, auxl::dist::mpi_reducer> t(
        auxl::data::hierarchy("h", {0, 0, 1, 1}));
    auxl::data::dataset<float> d;
    t.fit(d, {.epochs = 1});
    return 0;
}
