// benchmarks/reference_models.hpp — the networks benchmarks/torch_reference.py builds in PyTorch
// (make_trunk, MultiTask), for the programs that run auxl beside it: side_by_side_auxl (timing)
// and tests/torch_step_auxl (the two libraries' steps compared).
#pragma once

#include "auxl/auxl.hpp"

namespace auxl::reference {

using mlp_trunk = nn::sequential<nn::input<1, 28, 28>, nn::flatten, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
// The convolutions apply their ReLU and pooling themselves, one sample at a time
// (nn/fused_activation.hpp, nn/fused_pool.hpp): the numbers of separate nn::relu and
// nn::max_pool2d layers, without the whole-batch passes and buffers between them.
using cnn_trunk = nn::sequential<nn::input<1, 28, 28>, nn::conv2d<32, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                                 nn::conv2d<64, 3, 1, 1, nn::relu, nn::max_pool2d<2>>, nn::flatten, nn::dense<128>, nn::relu>;

/// A primary head of PrimaryClasses (5: super5; 2: half2, parity2) and an auxiliary head of 10.
template <class Trunk, std::size_t PrimaryClasses = 5>
using model = nn::multi_task<Trunk, nn::head<nn::dense<PrimaryClasses>>, nn::head<nn::dense<10>>>;
/// DTG's: primary, the manual (human) task, the generated task.
template <class Trunk, std::size_t PrimaryClasses = 5>
using dtg_model =
    nn::multi_task<Trunk, nn::head<nn::dense<PrimaryClasses>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;

}  // namespace auxl::reference
