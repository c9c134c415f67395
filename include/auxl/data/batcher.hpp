// auxl/data/batcher.hpp — seeded shuffling over the rows of a dataset, epoch by epoch.
//
// Each epoch is a fresh permutation drawn from the "order" stream; next() hands out the row
// indices of one batch (the last batch of an epoch may be smaller, as with PyTorch's
// drop_last = False).  The permutation and the cursor are the batcher's whole state, so a
// checkpoint taken mid-epoch resumes with exactly the batches an uninterrupted run would see.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/core/rng.hpp"

namespace auxl::data {

class batcher {
public:
    batcher() = default;
    batcher(std::size_t rows, std::size_t batch_size) : rows_(rows), batch_size_(batch_size) {
        if (batch_size == 0) raise<config_error>("auxl::data::batcher: batch size must be positive");
        if (rows == 0) raise<config_error>("auxl::data::batcher: the dataset is empty");
    }

    /// Starts an epoch: a new permutation from `order`.
    void start_epoch(rng& order) {
        permutation_.resize(rows_);
        for (std::size_t i = 0; i < rows_; ++i) permutation_[i] = static_cast<std::uint32_t>(i);
        shuffle(permutation_.begin(), permutation_.end(), order);
        cursor_ = 0;
    }

    bool epoch_done() const { return cursor_ >= permutation_.size(); }
    bool epoch_started() const { return !permutation_.empty(); }

    /// Row indices of the next batch (empty when the epoch is done).
    std::span<const std::uint32_t> next() {
        const std::size_t take = std::min(batch_size_, permutation_.size() - std::min(cursor_, permutation_.size()));
        std::span<const std::uint32_t> out(permutation_.data() + cursor_, take);
        cursor_ += take;
        return out;
    }

    std::size_t batches_per_epoch() const { return (rows_ + batch_size_ - 1) / batch_size_; }
    std::size_t batch_size() const { return batch_size_; }
    std::size_t rows() const { return rows_; }

    // State, for checkpoints.
    const std::vector<std::uint32_t>& permutation() const { return permutation_; }
    std::size_t cursor() const { return cursor_; }
    void restore(std::vector<std::uint32_t> permutation, std::size_t cursor) {
        if (!permutation.empty() && permutation.size() != rows_) {
            raise<shape_error>("auxl::data::batcher: saved permutation has ", permutation.size(), " rows, the data has ", rows_);
        }
        permutation_ = std::move(permutation);
        cursor_ = cursor;
    }

private:
    std::size_t rows_ = 0;
    std::size_t batch_size_ = 1;
    std::vector<std::uint32_t> permutation_;
    std::size_t cursor_ = 0;
};

}  // namespace auxl::data
