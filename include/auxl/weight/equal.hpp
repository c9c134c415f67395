// auxl/weight/equal.hpp — fixed auxiliary weights ("Equal" in the literature).
//
// The training loss is L_pri + λ Σ_k L_aux,k with a constant λ (default 1).  The rule needs no
// per-task gradients, so the trainer runs one backward of the weighted sum: STL + equal costs
// exactly one forward and one backward per step.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/train/types.hpp"

namespace auxl::weight {

class equal {
public:
    static const char* name() { return "equal"; }
    static constexpr bool needs_task_gradients = false;

    equal() : equal(1.0) {}
    explicit equal(double auxiliary_weight) : lambda_(auxiliary_weight) {
        if (!(auxiliary_weight >= 0)) raise<config_error>("auxl::weight::equal: auxiliary weight must be >= 0, got ", auxiliary_weight);
    }

    void prepare(const train::parameter_ranges&, std::size_t auxiliary_tasks) { weights_.assign(auxiliary_tasks, lambda_); }

    double auxiliary_weight(std::size_t) const { return lambda_; }
    double lambda() const { return lambda_; }

    std::span<const double> last_weights() const { return weights_; }
    std::span<const std::string> metric_names() const { return {}; }
    std::span<const double> metric_values() const { return {}; }

private:
    double lambda_;
    std::vector<double> weights_;
};

}  // namespace auxl::weight
