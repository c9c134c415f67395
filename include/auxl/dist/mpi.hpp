// auxl/dist/mpi.hpp — data-parallel training over MPI (optional: link MPI, e.g. the CMake target
// auxl::mpi, which find_package(auxl COMPONENTS mpi) provides).
//
//   auxl::dist::mpi_environment env(argc, argv);     // MPI_Init ... MPI_Finalize
//   auxl::trainer<Model, Gen, Rule, Opt, auxl::dist::mpi_reducer> t(h, gen, rule, opt, options);
//   t.fit(train_set, {.epochs = 10});                // every rank, same files, same seed
//
// Each rank runs the same program with the same seed.  Every global batch of
// size × options.batch_size rows (one permutation, drawn from the seed, the same on all ranks)
// is cut into contiguous shards, one per rank, so the union of the shards of an epoch is the
// single-process epoch with the larger batch.  After each backward one in-place MPI_Allreduce
// combines the gradient — or the (K+1) x P per-task rows when the rule needs them, so cosine,
// module-aware and transference weigh global gradients — each rank's part weighted by its share
// of the global batch: the result is the gradient of the mean loss over the global batch, and
// every rank applies the same update.  Meta-updates (MAXL's label network, module-aware's
// hypergradient, transference's lookahead losses, RL-AUX's policy gradients, DTG's upper level)
// reduce their own buffers through trainer.reducer() the same way, and say so with
// `static constexpr bool distributed_ready = true`; a policy with meta-updates that does not is
// refused at compile time.  Checkpoints and log files are written by rank 0 only; every
// rank can load them (a checkpoint does not record the process count).
//
// Determinism: the same seed, process count and thread count give the same numbers; the sums
// over ranks are taken in MPI's order, so results equal single-process training with the
// global batch within float rounding, not bit for bit.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/core/error.hpp"

namespace auxl::dist {

namespace detail {
inline void check_mpi(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    raise<io_error>("auxl::dist: ", what, " failed: ", std::string(text, std::size_t(length)));
}
template <class T>
MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else static_assert(sizeof(T) == 0, "auxl::dist::mpi_reducer: only float and double buffers are reduced");
}
}  // namespace detail

/// MPI_Init on construction, MPI_Finalize on destruction.  If the scope is left by an exception
/// (one rank failed), MPI_Abort ends every rank instead of leaving the others waiting in a
/// collective call.
class mpi_environment {
public:
    mpi_environment(int& argc, char**& argv) {
        int ready = 0;
        MPI_Initialized(&ready);
        if (!ready) {
            detail::check_mpi(MPI_Init(&argc, &argv), "MPI_Init");
            owner_ = true;
        }
        exceptions_ = std::uncaught_exceptions();
    }
    mpi_environment(const mpi_environment&) = delete;
    mpi_environment& operator=(const mpi_environment&) = delete;
    ~mpi_environment() {
        if (!owner_) return;
        if (std::uncaught_exceptions() > exceptions_) {
            MPI_Abort(MPI_COMM_WORLD, 1);
        } else {
            MPI_Finalize();
        }
    }

private:
    bool owner_ = false;
    int exceptions_ = 0;
};

/// The GradientReducer of data-parallel training (see auxl/dist/local.hpp for the contract).
/// Requires MPI to be initialised (mpi_environment) before construction.
class mpi_reducer {
public:
    static constexpr bool distributed = true;
    static const char* name() { return "mpi"; }

    mpi_reducer() : mpi_reducer(MPI_COMM_WORLD) {}
    explicit mpi_reducer(MPI_Comm comm) : comm_(comm) {
        int ready = 0;
        MPI_Initialized(&ready);
        if (!ready) raise<config_error>("auxl::dist::mpi_reducer: MPI is not initialised (create an auxl::dist::mpi_environment first)");
        detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        detail::check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }

    int rank() const { return rank_; }
    int size() const { return size_; }
    MPI_Comm communicator() const { return comm_; }

    std::size_t begin_step(std::size_t rows) {
        unsigned long long local = rows, global = 0;
        detail::check_mpi(MPI_Allreduce(&local, &global, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm_), "MPI_Allreduce (batch rows)");
        share_ = global ? double(rows) / double(global) : 0.0;
        return std::size_t(global);
    }

    /// x ← Σ_r share_r x_r, in place (one MPI_Allreduce).
    template <class T>
    void average(std::span<T> x) const {
        if (x.empty()) return;
        const T s = T(share_);
        for (auto& v : x) v *= s;
        allreduce_sum(x);
    }
    double average(double value) const {
        average(std::span<double>(&value, 1));
        return value;
    }
    template <class T>
    double weighted_average(std::span<T> x, double weight) const {
        double total = weight;
        detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce (weight)");
        if (total == 0) return 0.0;
        const T s = T(weight / total);
        for (auto& v : x) v *= s;
        allreduce_sum(x);
        return total;
    }
    void sum(std::span<double> x) const { allreduce_sum(x); }
    std::size_t max(std::size_t n) const {
        unsigned long long local = n, global = 0;
        detail::check_mpi(MPI_Allreduce(&local, &global, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce (max)");
        return std::size_t(global);
    }
    bool all(bool value) const {
        int local = value ? 1 : 0, global = 0;
        detail::check_mpi(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_LAND, comm_), "MPI_Allreduce (flag)");
        return global != 0;
    }
    bool same_everywhere(std::uint64_t value) const {
        unsigned long long v = value, lo = 0, hi = 0;
        detail::check_mpi(MPI_Allreduce(&v, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm_), "MPI_Allreduce (check)");
        detail::check_mpi(MPI_Allreduce(&v, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce (check)");
        return lo == hi;
    }

private:
    template <class T>
    void allreduce_sum(std::span<T> x) const {
        std::size_t done = 0;
        while (done < x.size()) {  // MPI counts are int
            const std::size_t n = std::min<std::size_t>(x.size() - done, std::size_t(1) << 30);
            detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, x.data() + done, int(n), detail::mpi_type<T>(), MPI_SUM, comm_),
                              "MPI_Allreduce");
            done += n;
        }
    }

    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
    double share_ = 1.0;
};

}  // namespace auxl::dist
