// auxl/train/types.hpp — the values that flow between the trainer and its policies.
//
//   batch<T>              one gathered minibatch (inputs, primary and fine labels, dataset rows)
//   auxiliary_targets<T>  what a generator produces for one auxiliary head: hard labels or soft
//                         distributions, optional per-example weights, or nothing
//   parameter_ranges      where the shared trunk and each head live in the arena, for rules
//   step_report / epoch_report / evaluation   what callbacks and users see
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace auxl::train {

template <class T>
struct batch {
    const T* inputs = nullptr;                ///< size x features, row-major
    std::size_t size = 0;
    const std::int32_t* primary = nullptr;    ///< primary labels
    const std::int32_t* fine = nullptr;       ///< fine labels (the human auxiliary labels)
    std::span<const std::uint32_t> rows;      ///< rows of the dataset (empty for a user-built batch)
};

template <class T>
struct auxiliary_targets {
    enum class kind { none, hard, soft };
    kind type = kind::none;
    std::vector<std::int32_t> labels;  ///< hard: one label per row
    std::vector<T> soft;               ///< soft: rows x classes distributions
    std::vector<T> weights;            ///< optional per-example loss weights (empty = all 1)
    /// Optional generated inputs (rows x the model's input size) this head is evaluated on instead
    /// of the batch's inputs — a second forward of the network (DTG's generated examples).
    /// Empty = the batch's inputs.
    std::vector<T> inputs;

    /// The trainer sizes every buffer once for `max_batch` rows of `classes` classes; a generator
    /// sets `type`, fills the first batch-size rows, and leaves `weights` empty or fills it.
    void reserve(std::size_t max_batch, std::size_t classes) {
        labels.assign(max_batch, 0);
        soft.assign(max_batch * classes, T(0));
        weights.reserve(max_batch);
    }
};

/// Where each task's parameters live in the model's arena.
struct parameter_ranges {
    std::size_t total = 0;                   ///< arena size P
    std::size_t trunk_size = 0;              ///< the shared trunk is [0, trunk_size)
    std::vector<std::size_t> head_offset{};  ///< head k is [head_offset[k], head_offset[k] + head_size[k])
    std::vector<std::size_t> head_size{};
    /// Modules of the shared trunk (layers that own parameters), in arena order.
    std::vector<std::size_t> trunk_module_offset{}, trunk_module_size{};
    std::vector<std::string> trunk_module_name{};
};

/// Per-task loss values of one step (task 0 = primary).
struct step_report {
    std::size_t epoch = 0;           ///< 0-based epoch of this step
    std::size_t step = 0;            ///< global step count after this step
    std::size_t step_in_epoch = 0;   ///< 1-based position in the epoch
    std::size_t steps_per_epoch = 0;
    double learning_rate = 0;
    std::span<const double> losses;         ///< per task; NaN where a task had no target
    std::span<const double> aux_weights;    ///< weight the rule gave each auxiliary task
    bool skipped = false;                   ///< non-finite input, loss or direction: no update (skip_step policy)
    double gradient_norm = std::numeric_limits<double>::quiet_NaN();  ///< before clipping (when max_grad_norm is set)
    bool main_process = true;               ///< false on MPI ranks other than 0 (they write no output)
};

/// Loss and accuracy of every task on a dataset.
struct evaluation {
    std::vector<double> loss;      ///< per task (auxiliary: against the human fine labels, when the head fits them)
    std::vector<double> accuracy;  ///< per task; NaN where not defined
    std::size_t examples = 0;
    double primary_loss() const { return loss.empty() ? 0.0 : loss[0]; }
    double primary_accuracy() const { return accuracy.empty() ? 0.0 : accuracy[0]; }
};

struct epoch_report {
    std::size_t epoch = 0;                 ///< 1-based number of the epoch just finished
    std::size_t epochs = 0;                ///< epochs requested
    std::size_t step = 0;                  ///< global step count
    double learning_rate = 0;
    std::vector<double> train_loss;        ///< mean over the epoch's steps, per task
    std::vector<double> aux_weight;        ///< mean weight per auxiliary task
    std::vector<std::string> metric_names; ///< extra statistics of the rule / generator (e.g. cosine)
    std::vector<double> metric_values;     ///< their means over the epoch
    bool has_validation = false;
    evaluation validation;
    double epoch_seconds = 0;
    double total_seconds = 0;
    bool main_process = true;              ///< false on MPI ranks other than 0 (they write no output)
};

/// What fit() is about to do (for progress displays).
struct fit_plan {
    std::string method;
    std::size_t first_epoch = 0;  ///< 0-based; > 0 when resuming
    std::size_t epochs = 0;
    std::size_t steps_per_epoch = 0;
    std::size_t tasks = 0;
    bool main_process = true;     ///< false on MPI ranks other than 0 (they write no output)
};

}  // namespace auxl::train
