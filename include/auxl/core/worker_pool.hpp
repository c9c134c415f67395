// auxl/core/worker_pool.hpp — a few persistent threads for run_workers() on the OpenBLAS backend.
//
// Why persistent: a training step calls run_workers() several times (each convolution's forward
// and backward), and DESIGN.md's principle 5 says a steady-state step allocates nothing.
// Starting a std::thread allocates its state; these threads are started once, when a job first
// asks for more workers than there are, and then wait on a condition variable for the next job.
//
// One job at a time: a caller that finds the pool busy (another thread's job, or a worker's own
// nested call) gets an empty lock from try_acquire() and runs its workers itself, in order — the
// same work split, so the same bits.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

namespace auxl::detail {

class worker_pool {
public:
    /// task(context, worker, team): must not throw (run_workers() catches inside it).
    using task = void (*)(void* context, std::size_t worker, std::size_t team) noexcept;

    static worker_pool& instance() {
        static worker_pool pool;
        return pool;
    }

    /// The right to run one job: empty (false) when the pool is busy.
    std::unique_lock<std::mutex> try_acquire() { return std::unique_lock(dispatch_, std::try_to_lock); }

    /// Runs task(context, t, team) for every t in [0, team), t = 0 on the calling thread, the rest
    /// on pool threads (or on the calling thread, in order, for any the system would not start).
    /// Returns when all are done.  `job` must come from try_acquire() and hold the pool.
    void run(const std::unique_lock<std::mutex>& job, std::size_t team, task fn, void* context) {
        if (!job.owns_lock() || job.mutex() != &dispatch_)
            throw std::logic_error("auxl::detail::worker_pool::run: the caller does not hold the pool");
        const std::size_t helpers = grow(team - 1);
        {
            std::lock_guard lock(state_);
            fn_ = fn;
            context_ = context;
            team_ = team;
            active_ = helpers;
            pending_ = helpers;
            ++generation_;
        }
        wake_.notify_all();
        fn(context, 0, team);
        for (std::size_t t = helpers + 1; t < team; ++t) fn(context, t, team);
        std::unique_lock lock(state_);
        done_.wait(lock, [&] { return pending_ == 0; });
    }

    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;

    ~worker_pool() {
        {
            std::lock_guard lock(state_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& thread : threads_) thread.join();
    }

private:
    worker_pool() = default;

    // Starts threads until there are `wanted` (called with dispatch_ held, no job running);
    // returns how many there are, fewer than wanted only if the system refused one.
    std::size_t grow(std::size_t wanted) {
        while (threads_.size() < wanted) {
            const std::size_t index = threads_.size();
            try {
                threads_.emplace_back([this, index, seen = generation_] { loop(index, seen); });
            } catch (const std::system_error&) {
                break;
            }
        }
        return std::min(wanted, threads_.size());
    }

    // Pool thread `index` runs worker index + 1 of every job that has at least index + 2 workers.
    void loop(std::size_t index, std::size_t seen) {
        for (;;) {
            std::unique_lock lock(state_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            if (index >= active_) continue;
            const task fn = fn_;
            void* const context = context_;
            const std::size_t team = team_;
            lock.unlock();
            fn(context, index + 1, team);
            lock.lock();
            if (--pending_ == 0) done_.notify_one();
        }
    }

    std::mutex dispatch_;  // held by the caller for the whole of one job
    std::mutex state_;     // guards everything below
    std::condition_variable wake_, done_;
    std::vector<std::thread> threads_;
    std::size_t generation_ = 0;  // counts jobs; a change wakes the threads
    std::size_t active_ = 0;      // pool threads taking part in the current job
    std::size_t pending_ = 0;     // of those, how many have not finished
    std::size_t team_ = 0;
    task fn_ = nullptr;
    void* context_ = nullptr;
    bool stop_ = false;
};

}  // namespace auxl::detail
