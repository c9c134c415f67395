// auxl/gen/human_hierarchy.hpp — the human auxiliary task: predict the fine class.
//
// The target of the (single) auxiliary head is the example's true fine label, expressed in the
// hierarchy's block order (data::hierarchy::block_index_of), so the head's outputs are grouped by
// primary class exactly like the generated labels of MAXL-style methods — the two are directly
// comparable.  Requires an auxiliary head as wide as the hierarchy has fine classes.
// Cost: O(batch) per step.
#pragma once

#include <cstddef>
#include <span>

#include "auxl/core/error.hpp"
#include "auxl/train/concepts.hpp"

namespace auxl::gen {

struct human_hierarchy {
    static const char* name() { return "human"; }
    static constexpr std::size_t auxiliary_tasks = 1;

    void prepare(const train::generator_setup& setup) {
        hierarchy_ = setup.hierarchy;
        if (!hierarchy_) raise<config_error>("auxl::gen::human_hierarchy: no hierarchy given");
        if (setup.head_widths.size() < 2 || setup.head_widths[1] != hierarchy_->fine_classes()) {
            raise<config_error>("auxl::gen::human_hierarchy: the auxiliary head has ",
                                setup.head_widths.size() < 2 ? 0 : setup.head_widths[1], " outputs but hierarchy ",
                                hierarchy_->name(), " has ", hierarchy_->fine_classes(), " fine classes");
        }
    }

    template <class T>
    void generate(const train::batch<T>& b, std::span<train::auxiliary_targets<T>> targets) {
        auto& t = targets[0];
        t.type = train::auxiliary_targets<T>::kind::hard;
        for (std::size_t i = 0; i < b.size; ++i) t.labels[i] = hierarchy_->block_index_of(b.fine[i]);
    }

private:
    const data::hierarchy* hierarchy_ = nullptr;
};

}  // namespace auxl::gen
