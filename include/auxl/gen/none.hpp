// auxl/gen/none.hpp — no auxiliary targets: single-task learning (STL).
//
// With gen::none the trainer trains the primary head only; auxiliary heads of the model are
// still run forward (so every method starts from the same initialisation) but receive no loss
// and no gradient.  Zero cost beyond that.
#pragma once

#include <cstddef>
#include <span>

#include "auxl/train/concepts.hpp"

namespace auxl::gen {

struct none {
    static const char* name() { return "stl"; }
    static constexpr std::size_t auxiliary_tasks = 0;

    void prepare(const train::generator_setup&) {}

    template <class T>
    void generate(const train::batch<T>&, std::span<train::auxiliary_targets<T>>) {}
};

}  // namespace auxl::gen
