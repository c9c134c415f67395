// auxl/dist/local.hpp — the trainer's default GradientReducer: one process, no communication.
//
// A GradientReducer is the trainer's fifth policy.  After each backward the trainer hands it the
// gradient (or the per-task gradient rows) to combine across processes; generators and rules
// that compute their own meta-gradients on the step's batch hand it theirs the same way
// (trainer.reducer()).  Every member of dist::local is an empty inline function, so a
// single-process trainer pays nothing for the hook.  dist::mpi_reducer (auxl/dist/mpi.hpp) is
// the data-parallel one.
//
// The contract (what dist::mpi_reducer implements):
//   distributed            compile-time flag; false here
//   rank(), size()         this process and the process count
//   begin_step(rows)       the step's local batch has `rows` rows; sets this rank's share
//                          rows / (rows summed over ranks) and returns that global row count
//   average(span<T>)       in place: Σ_r share_r · x_r — a batch-mean quantity of the local rows
//                          becomes the batch mean over the global batch
//   average(double)        the same for one value (losses, lookahead losses)
//   weighted_average(x, w) in place: Σ_r w_r x_r / Σ_r w_r, for a weight of the caller's choice
//                          (RL-AUX's minibatches); returns Σ_r w_r
//   sum(span<double>)      in place: Σ_r x_r
//   max(n)                 the largest n over the ranks
//   all(bool)              true on every rank iff true on every rank
//   same_everywhere(hash)  true iff every rank passed the same value (parameter checks)
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace auxl::dist {

struct local {
    static constexpr bool distributed = false;
    static const char* name() { return "local"; }
    int rank() const { return 0; }
    int size() const { return 1; }
    std::size_t begin_step(std::size_t rows) { return rows; }
    template <class T>
    void average(std::span<T>) const {}
    double average(double value) const { return value; }
    template <class T>
    double weighted_average(std::span<T>, double weight) const { return weight; }
    void sum(std::span<double>) const {}
    std::size_t max(std::size_t n) const { return n; }
    bool all(bool value) const { return value; }
    bool same_everywhere(std::uint64_t) const { return true; }
};

}  // namespace auxl::dist
