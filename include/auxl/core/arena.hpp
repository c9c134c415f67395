// auxl/core/arena.hpp — flat, 64-byte aligned parameter arenas and their segment table.
//
// A network's parameters live in one contiguous buffer (DESIGN.md principle 3).  Segments (one
// per parameter tensor) are ordered by module and each starts on a 64-byte boundary; the padding
// between them is zero and stays zero because every optimizer and every gradient writes zeros
// there.  Gradients, optimizer moments, tangents and perturbations are arenas of the same layout,
// so "the gradient of segment s" is the same offset in every arena, and whole-arena operations
// (dot products, axpy, optimizer steps, checkpoints) are single loops over one span.
//
// Cost: construction allocates once; nothing here allocates afterwards.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <memory>
#include <new>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/core/parallel.hpp"

namespace auxl {

/// Alignment of every segment and of every arena, in bytes (one cache line, one AVX-512 vector).
inline constexpr std::size_t arena_alignment = 64;

/// Number of elements of type T that `count` occupies once rounded up to the alignment.
template <class T>
constexpr std::size_t padded_count(std::size_t count) {
    constexpr std::size_t per_line = arena_alignment / sizeof(T);
    static_assert(arena_alignment % sizeof(T) == 0, "auxl: scalar size must divide 64");
    return (count + per_line - 1) / per_line * per_line;
}

/// One parameter tensor inside an arena.
struct segment {
    std::string name;                 ///< e.g. "trunk.0.dense.weight"
    std::array<std::size_t, 4> dims;  ///< tensor shape, unused trailing dims are 1
    std::size_t rank = 1;             ///< number of meaningful entries of dims
    std::size_t offset = 0;           ///< first element, in scalars from the arena start
    std::size_t size = 0;             ///< elements actually used (without padding)
    std::size_t module = 0;           ///< index into the layout's module list
};

/// A module is a layer that owns parameters; its segments are contiguous in the arena.
struct module_info {
    std::string name;         ///< e.g. "trunk.0.dense"
    std::size_t offset = 0;   ///< first element of its first segment
    std::size_t extent = 0;   ///< elements from offset to the end of its last segment, padding included
};

/// Segment table of one network: the single source of truth for where each tensor lives.
class arena_layout {
public:
    arena_layout() = default;

    /// Appends a module whose segments start at `base` and span `extent` scalars (padding
    /// included).  Segment offsets arrive relative to the module and are made absolute here;
    /// the offsets themselves are compile-time facts of the network, this table only records them.
    void add_module(std::string module_name, std::size_t base, std::size_t extent,
                    std::vector<segment> segments_of_module) {
        if (base < total_) {
            raise<error>("auxl: module ", module_name, " at offset ", base, " overlaps the previous module ending at ",
                         total_);
        }
        for (auto& s : segments_of_module) {
            s.name = module_name + "." + s.name;
            s.offset += base;
            s.module = modules_.size();
            segments_.push_back(std::move(s));
        }
        modules_.push_back(module_info{std::move(module_name), base, extent});
        total_ = base + extent;
    }

    /// Grows the arena to `size` scalars (for networks whose last block owns no parameters).
    void set_size(std::size_t size) { total_ = std::max(total_, size); }

    std::size_t size() const { return total_; }
    const std::vector<segment>& segments() const { return segments_; }
    const std::vector<module_info>& modules() const { return modules_; }

    /// Number of parameters actually used (without padding).
    std::size_t parameter_count() const {
        std::size_t n = 0;
        for (const auto& s : segments_) n += s.size;
        return n;
    }

    /// Prints the segment table: one line per tensor with its shape, offset and size.
    void summary(std::ostream& out) const {
        out << std::left << std::setw(34) << "segment" << std::setw(18) << "shape" << std::right
            << std::setw(10) << "offset" << std::setw(10) << "size" << '\n';
        for (const auto& s : segments_) {
            std::string dims;
            for (std::size_t d = 0; d < s.rank; ++d) {
                if (d) dims += 'x';
                dims += std::to_string(s.dims[d]);
            }
            out << std::left << std::setw(34) << s.name << std::setw(18) << dims << std::right
                << std::setw(10) << s.offset << std::setw(10) << s.size << '\n';
        }
        out << "modules: " << modules_.size() << ", parameters: " << parameter_count()
            << " (arena " << total_ << " with padding)\n";
    }

private:
    std::vector<segment> segments_;
    std::vector<module_info> modules_;
    std::size_t total_ = 0;
};

namespace detail {
struct aligned_free {
    void operator()(void* p) const noexcept { ::operator delete(p, std::align_val_t{arena_alignment}); }
};
}  // namespace detail

/// An owning, zero-initialised, 64-byte aligned buffer of `size` scalars.
/// Copyable (deep copy) so a saved copy of the parameters is one assignment.
template <class T>
class arena {
public:
    using value_type = T;
    arena() = default;
    explicit arena(std::size_t size) { resize(size); }

    arena(const arena& other) : arena(other.size_) { std::copy_n(other.data(), size_, data()); }
    arena& operator=(const arena& other) {
        if (this != &other) {
            ensure_size(other.size_);
            std::copy_n(other.data(), size_, data());
        }
        return *this;
    }
    // A moved-from arena is empty (size 0, no storage), so size() never promises storage it lacks.
    arena(arena&& other) noexcept : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
    arena& operator=(arena&& other) noexcept {
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        return *this;
    }

    /// Reallocates to `size` zeros (previous contents are discarded), even when the arena already
    /// holds `size` scalars; see ensure_size() for buffers reused every step.
    void resize(std::size_t size) {
        size_ = size;
        if (size == 0) {
            data_.reset();
            return;
        }
        void* p = ::operator new(padded_count<T>(size) * sizeof(T), std::align_val_t{arena_alignment});
        data_.reset(p);
        std::memset(p, 0, padded_count<T>(size) * sizeof(T));
    }

    /// Makes the arena hold `size` scalars without reallocating when it already does.
    /// At the same size the storage and its contents are kept (no allocation, no zeroing), which
    /// is what a workspace reused every step wants; at a new size it behaves as resize() (zeros).
    /// Returns true when it reallocated. Prefer this over resize() for buffers sized inside a
    /// step: resize() always reallocates, even to the size it has.
    bool ensure_size(std::size_t size) {
        if (size == size_) return false;  // a nonzero size always has storage (moves leave size 0)
        resize(size);
        return true;
    }

    void zero() {
        if (size_ == 0) return;
        T* p = data();
        for_each_chunk(size_, [p](std::size_t begin, std::size_t end) { std::memset(p + begin, 0, (end - begin) * sizeof(T)); });
    }

    T* data() { return static_cast<T*>(data_.get()); }
    const T* data() const { return static_cast<const T*>(data_.get()); }
    std::size_t size() const { return size_; }
    std::span<T> span() { return {data(), size_}; }
    std::span<const T> span() const { return {data(), size_}; }
    T& operator[](std::size_t i) { return data()[i]; }
    const T& operator[](std::size_t i) const { return data()[i]; }
    T* begin() { return data(); }
    T* end() { return data() + size_; }
    const T* begin() const { return data(); }
    const T* end() const { return data() + size_; }

private:
    std::unique_ptr<void, detail::aligned_free> data_;
    std::size_t size_ = 0;
};

/// Throws shape_error unless `a` has `expected` elements; `what` names the arena in the message.
template <class T>
void check_arena_size(const arena<T>& a, std::size_t expected, const char* what) {
    if (a.size() != expected) {
        raise<shape_error>("auxl: ", what, " has ", a.size(), " elements but the network's arena layout has ",
                           expected);
    }
}

}  // namespace auxl
