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
//
// fork(): a child gets a copy of the pool whose threads do not exist in it.  A pthread_atfork
// handler gives the child a fresh pool (started on its first job) and keeps the copy reachable
// but never destroyed: its std::thread objects name threads the child cannot join, and its
// mutexes and condition variables may be in states only those threads could undo.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define AUXL_WORKER_POOL_ATFORK 1
#endif

namespace auxl::detail {

class worker_pool {
public:
    /// task(context, worker, team): must not throw (run_workers() catches inside it).
    using task = void (*)(void* context, std::size_t worker, std::size_t team) noexcept;

    /// The process's pool (after fork(), the child's own).
    static worker_pool& instance() {
        static owner process_pool;  // thread-safe start; registers the fork handler once
        return *process_pool.current;
    }

    /// The right to run one job: empty (false) when the pool is busy.
    std::unique_lock<std::mutex> try_acquire() {
        if (orphaned_) return {};  // a parent's pool the child could not replace: run serially
        return std::unique_lock(dispatch_, std::try_to_lock);
    }

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

    // Holds the process's pool; destroys it at exit.
    struct owner {
        worker_pool* current;
        owner() : current(new worker_pool) {
#if defined(AUXL_WORKER_POOL_ATFORK)
            if (pthread_atfork(nullptr, nullptr, &after_fork_in_child) != 0) {
                delete current;
                throw std::runtime_error("auxl::detail::worker_pool: pthread_atfork failed");
            }
#endif
            self() = this;
        }
        ~owner() {
            if (!current->orphaned_) delete current;
            self() = nullptr;
        }
        owner(const owner&) = delete;
        owner& operator=(const owner&) = delete;
        static owner*& self() {
            static owner* registered = nullptr;
            return registered;
        }
        // Runs in the child, which has one thread: the parent's pool stays, undestroyed, as the
        // new pool's `inherited_`, so that it is still reachable (no leak report) yet never torn
        // down.
        static void after_fork_in_child() noexcept {
            owner* const o = self();
            if (o == nullptr || o->current == nullptr) return;
            worker_pool* const fresh = new (std::nothrow) worker_pool;
            if (fresh == nullptr) {  // no memory: the child runs every job on its calling thread
                o->current->orphaned_ = true;
                return;
            }
            fresh->inherited_ = o->current;
            o->current = fresh;
        }
    };

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
    worker_pool* inherited_ = nullptr;  // the parent's pool, after fork(): kept, never destroyed
    bool orphaned_ = false;             // this is a parent's pool in a child: never run, never destroyed
};

}  // namespace auxl::detail
