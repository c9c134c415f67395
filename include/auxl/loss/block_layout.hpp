// auxl/loss/block_layout.hpp — the hierarchy ψ of generated auxiliary labels (ALGORITHMS.md §0).
//
// Primary class c owns the block B(c) = {o_c, ..., o_c + ψ_c − 1} of the auxiliary label space,
// o_c = Σ_{c' < c} ψ_{c'}, A = Σ_c ψ_c.  ψ may be uniform (ψ_c = 5 for every class) or not
// (MAXL's CIFAR-100 10→20 split ψ = [3,2,2,2,1,3,3,1,1,2]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "auxl/core/error.hpp"

namespace auxl::loss {

class block_layout {
public:
    block_layout() = default;

    /// One block size per primary class; every size must be positive.
    explicit block_layout(std::vector<std::size_t> psi) : psi_(std::move(psi)) {
        if (psi_.empty()) raise<config_error>("auxl::loss::block_layout: psi is empty (need one block per primary class)");
        offsets_.reserve(psi_.size());
        for (std::size_t c = 0; c < psi_.size(); ++c) {
            if (psi_[c] == 0) raise<config_error>("auxl::loss::block_layout: psi[", c, "] is 0; every primary class needs at least one auxiliary class");
            offsets_.push_back(total_);
            total_ += psi_[c];
        }
    }

    /// ψ_c = per_class for each of `primary_classes` classes.
    static block_layout uniform(std::size_t primary_classes, std::size_t per_class) {
        return block_layout(std::vector<std::size_t>(primary_classes, per_class));
    }

    std::size_t primary_classes() const { return psi_.size(); }
    std::size_t auxiliary_classes() const { return total_; }
    std::size_t block_size(std::size_t c) const { return psi_.at(c); }
    std::size_t block_offset(std::size_t c) const { return offsets_.at(c); }
    const std::vector<std::size_t>& psi() const { return psi_; }

    /// Throws value_error if a label is outside [0, primary_classes).
    void check_label(std::int32_t label, std::size_t row, const char* who) const {
        if (label < 0 || static_cast<std::size_t>(label) >= psi_.size()) {
            raise<value_error>(who, ": primary label ", label, " in row ", row, " is outside [0, ", psi_.size(), ")");
        }
    }

private:
    std::vector<std::size_t> psi_;
    std::vector<std::size_t> offsets_;
    std::size_t total_ = 0;
};

}  // namespace auxl::loss
