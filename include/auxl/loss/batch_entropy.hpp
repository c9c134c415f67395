// auxl/loss/batch_entropy.hpp — MAXL's anti-collapse regulariser (ALGORITHMS.md §0).
//
//   R(t_1..t_B) = Σ_a t̄_a log(t̄_a + δ),  t̄ = (1/B) Σ_i t_i,  δ = 1e-20
// R is the negative entropy of the batch-mean generated label: minimising it spreads generated
// labels over all auxiliary classes.  ∂R/∂t_ia = (log(t̄_a + δ) + t̄_a/(t̄_a + δ)) / B.
// Cost O(B·A); the caller provides an A-sized scratch buffer for t̄.
#pragma once

#include <cmath>
#include <cstddef>

namespace auxl::loss {

template <class T>
struct batch_entropy {
    static constexpr T delta = T(1e-20);

    /// R; mean (size A) receives t̄.
    static T value(const T* t, std::size_t batch, std::size_t classes, T* mean) {
        batch_mean(t, batch, classes, mean);
        T r = 0;
        for (std::size_t a = 0; a < classes; ++a) r += mean[a] * std::log(mean[a] + delta);
        return r;
    }

    /// dt += scale·∂R/∂t (batch x A); mean must hold t̄ from value().
    static void gradient(const T* mean, std::size_t batch, std::size_t classes, T* dt, T scale = T(1)) {
        const T k = scale / T(batch);
        for (std::size_t a = 0; a < classes; ++a) {
            const T g = k * (std::log(mean[a] + delta) + mean[a] / (mean[a] + delta));
            for (std::size_t i = 0; i < batch; ++i) dt[i * classes + a] += g;
        }
    }

    /// Ṙ along t_dot; mean must hold t̄ from value().
    static T tangent(const T* mean, const T* t_dot, std::size_t batch, std::size_t classes) {
        T r = 0;
        for (std::size_t a = 0; a < classes; ++a) {
            T mean_dot = 0;
            for (std::size_t i = 0; i < batch; ++i) mean_dot += t_dot[i * classes + a];
            mean_dot /= T(batch);
            r += (std::log(mean[a] + delta) + mean[a] / (mean[a] + delta)) * mean_dot;
        }
        return r;
    }

    /// Entropy −Σ t̄ log t̄ of the batch mean (for logging collapse).
    static T entropy_of_mean(const T* t, std::size_t batch, std::size_t classes, T* mean) {
        return -value(t, batch, classes, mean);
    }

private:
    static void batch_mean(const T* t, std::size_t batch, std::size_t classes, T* mean) {
        for (std::size_t a = 0; a < classes; ++a) mean[a] = 0;
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t a = 0; a < classes; ++a) mean[a] += t[i * classes + a];
        for (std::size_t a = 0; a < classes; ++a) mean[a] /= T(batch);
    }
};

}  // namespace auxl::loss
