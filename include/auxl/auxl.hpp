// auxl/auxl.hpp — umbrella header: everything a user needs to build and train networks.
#pragma once

#include "auxl/version.hpp"

#include "auxl/core/arena.hpp"
#include "auxl/core/blas.hpp"
#include "auxl/core/denormals.hpp"
#include "auxl/core/error.hpp"
#include "auxl/core/finite.hpp"
#include "auxl/core/parallel.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/core/shape.hpp"

#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/dropout.hpp"
#include "auxl/nn/flatten.hpp"
#include "auxl/nn/fused_activation.hpp"
#include "auxl/nn/leaky_relu.hpp"
#include "auxl/nn/max_pool2d.hpp"
#include "auxl/nn/multi_task.hpp"
#include "auxl/nn/network.hpp"
#include "auxl/nn/relu.hpp"
#include "auxl/nn/sequential.hpp"
#include "auxl/nn/sigmoid.hpp"
#include "auxl/nn/tanh.hpp"

#include "auxl/loss/batch_entropy.hpp"
#include "auxl/loss/block_layout.hpp"
#include "auxl/loss/block_softmax.hpp"
#include "auxl/loss/softmax_cross_entropy.hpp"

#include "auxl/optim/adam.hpp"
#include "auxl/optim/schedule.hpp"
#include "auxl/optim/sgd.hpp"

#include "auxl/data/batcher.hpp"
#include "auxl/data/dataset.hpp"
#include "auxl/data/fashion_mnist.hpp"
#include "auxl/data/hierarchy.hpp"
#include "auxl/data/idx.hpp"
#include "auxl/data/normalize.hpp"
#include "auxl/data/npy.hpp"
#include "auxl/data/subset.hpp"

#include "auxl/gen/human_hierarchy.hpp"
#include "auxl/gen/none.hpp"
#include "auxl/weight/cosine.hpp"
#include "auxl/weight/equal.hpp"

#include "auxl/train/callbacks.hpp"
#include "auxl/train/runtime_select.hpp"
#include "auxl/train/trainer.hpp"
