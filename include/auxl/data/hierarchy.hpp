// auxl/data/hierarchy.hpp — how fine classes group into primary classes.
//
// A hierarchy maps each fine class f to a primary class primary(f).  The primary task is
// "predict primary(f)"; the human auxiliary task is "predict f".  Fine classes are laid out in
// blocks, one per primary class (ψ_c = number of fine classes in primary class c), so a fine
// label is also an index into the auxiliary label space in block order — the layout MAXL-style
// generators use for their generated labels (loss::block_layout, ALGORITHMS.md §0).
//
// Built in: Fashion-MNIST super5 / half2 / parity2 and the CIFAR-100 20 superclasses.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/loss/block_layout.hpp"

namespace auxl::data {

class hierarchy {
public:
    hierarchy() = default;

    /// fine_to_primary[f] = primary class of fine class f; every primary class in
    /// [0, max + 1) must receive at least one fine class.
    hierarchy(std::string name, std::vector<std::int32_t> fine_to_primary)
        : name_(std::move(name)), primary_of_(std::move(fine_to_primary)) {
        if (primary_of_.empty()) raise<config_error>("auxl::data::hierarchy ", name_, ": no fine classes");
        const auto top = *std::max_element(primary_of_.begin(), primary_of_.end());
        for (std::size_t f = 0; f < primary_of_.size(); ++f) {
            if (primary_of_[f] < 0) raise<config_error>("auxl::data::hierarchy ", name_, ": fine class ", f, " maps to ", primary_of_[f]);
        }
        std::vector<std::size_t> psi(std::size_t(top) + 1, 0);
        for (auto p : primary_of_) ++psi[std::size_t(p)];
        for (std::size_t c = 0; c < psi.size(); ++c) {
            if (psi[c] == 0) raise<config_error>("auxl::data::hierarchy ", name_, ": primary class ", c, " has no fine class");
        }
        blocks_ = loss::block_layout(psi);
        // Block order: fine classes of primary 0 first (in increasing fine order), then primary 1, ...
        std::vector<std::size_t> next(psi.size(), 0);
        block_index_.resize(primary_of_.size());
        for (std::size_t f = 0; f < primary_of_.size(); ++f) {
            const auto c = std::size_t(primary_of_[f]);
            block_index_[f] = std::int32_t(blocks_.block_offset(c) + next[c]++);
        }
    }

    /// Every fine class is its own primary class (single-task data without a hierarchy).
    static hierarchy identity(std::size_t classes) {
        std::vector<std::int32_t> map(classes);
        for (std::size_t f = 0; f < classes; ++f) map[f] = std::int32_t(f);
        return hierarchy("identity", map);
    }

    /// Fashion-MNIST: Tops {T-shirt 0, Pullover 2, Coat 4, Shirt 6}, Bottoms {Trouser 1},
    /// Dresses {Dress 3}, Footwear {Sandal 5, Sneaker 7, Ankle boot 9}, Bags {Bag 8}.
    static hierarchy fashion_super5() { return hierarchy("super5", {0, 1, 0, 2, 0, 3, 0, 3, 4, 3}); }
    /// Fashion-MNIST: fine label < 5 (clothing 0-4) vs the rest.
    static hierarchy fashion_half2() { return hierarchy("half2", {0, 0, 0, 0, 0, 1, 1, 1, 1, 1}); }
    /// Fashion-MNIST: even vs odd fine label.
    static hierarchy fashion_parity2() { return hierarchy("parity2", {0, 1, 0, 1, 0, 1, 0, 1, 0, 1}); }

    /// CIFAR-100's 20 superclasses (the data set's published coarse labels), 5 fine classes each.
    static hierarchy cifar100_super20() {
        return hierarchy("cifar100-super20",
                         {4,  1,  14, 8,  0,  6,  7,  7,  18, 3,  3,  14, 9,  18, 7,  11, 3,  9,  7,  11,
                          6,  11, 5,  10, 7,  6,  13, 15, 3,  15, 0,  11, 1,  10, 12, 14, 16, 9,  11, 5,
                          5,  19, 8,  8,  15, 13, 14, 17, 18, 10, 16, 4,  17, 4,  2,  0,  17, 4,  18, 17,
                          10, 3,  2,  12, 12, 16, 12, 1,  9,  19, 2,  10, 0,  1,  16, 12, 9,  13, 15, 13,
                          16, 19, 2,  4,  6,  19, 5,  5,  8,  19, 18, 1,  2,  15, 6,  0,  17, 8,  14, 13});
    }

    /// A built-in hierarchy by name: super5, half2, parity2, cifar100-super20.
    static hierarchy by_name(const std::string& name) {
        if (name == "super5") return fashion_super5();
        if (name == "half2") return fashion_half2();
        if (name == "parity2") return fashion_parity2();
        if (name == "cifar100-super20") return cifar100_super20();
        raise<config_error>("auxl::data::hierarchy: unknown hierarchy '", name,
                            "' (known: super5, half2, parity2, cifar100-super20)");
    }

    const std::string& name() const { return name_; }
    std::size_t fine_classes() const { return primary_of_.size(); }
    std::size_t primary_classes() const { return blocks_.primary_classes(); }
    /// ψ: the fine classes of each primary class, as auxiliary-label blocks.
    const loss::block_layout& blocks() const { return blocks_; }

    std::int32_t primary_of(std::int32_t fine) const { return primary_of_.at(checked(fine)); }
    /// Index of fine class f in the block-ordered auxiliary label space.
    std::int32_t block_index_of(std::int32_t fine) const { return block_index_.at(checked(fine)); }

    /// primary[i] = primary_of(fine[i]) for a whole batch (throws on a label out of range).
    void map_to_primary(const std::int32_t* fine, std::size_t n, std::int32_t* primary) const {
        for (std::size_t i = 0; i < n; ++i) primary[i] = primary_of_[checked(fine[i], i)];
    }

private:
    std::size_t checked(std::int32_t fine, std::size_t row = 0) const {
        if (fine < 0 || std::size_t(fine) >= primary_of_.size()) {
            raise<value_error>("auxl::data::hierarchy ", name_, ": fine label ", fine, " in row ", row, " is outside [0, ",
                               primary_of_.size(), ")");
        }
        return std::size_t(fine);
    }

    std::string name_;
    std::vector<std::int32_t> primary_of_;
    std::vector<std::int32_t> block_index_;
    loss::block_layout blocks_;
};

}  // namespace auxl::data
