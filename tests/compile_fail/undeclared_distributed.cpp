// Must not compile: a generator with its own meta-update (after_update) that does not declare
// `distributed_ready` under the MPI reducer — each rank would silently drift to its own state.
#include "auxl/auxl.hpp"
#include "auxl/dist/mpi.hpp"

struct learning_generator {
    static const char* name() { return "learning"; }
    static constexpr std::size_t auxiliary_tasks = 1;
    void prepare(const auxl::train::generator_setup&) {}
    template <class T>
    void generate(const auxl::train::batch<T>& b, std::span<auxl::train::auxiliary_targets<T>> t) {
        t[0].type = auxl::train::auxiliary_targets<T>::kind::hard;
        for (std::size_t i = 0; i < b.size; ++i) t[0].labels[i] = 0;
    }
    template <class Trainer, class T>
    void after_update(Trainer&, const auxl::train::batch<T>&) { ++updates; }  // would need a reduction
    int updates = 0;
};

using trunk = auxl::nn::sequential<auxl::nn::input<4>, auxl::nn::dense<8>, auxl::nn::relu>;
using model = auxl::nn::multi_task<trunk, auxl::nn::head<auxl::nn::dense<2>>, auxl::nn::head<auxl::nn::dense<4>>>;

int main(int argc, char** argv) {
    auxl::dist::mpi_environment mpi(argc, argv);
    auxl::trainer<model, learning_generator, auxl::weight::equal, auxl::optim::sgd<float>, auxl::dist::mpi_reducer> t(
        auxl::data::hierarchy("h", {0, 0, 1, 1}));
    auxl::data::dataset<float> d;
    t.fit(d, {.epochs = 1});
    return 0;
}
