// auxl/rl/ppo.hpp — the pieces of PPO (Schulman et al. 2017) and REINFORCE that RL-AUX needs,
// written on plain arrays so they can be tested on their own.
//
//   gae(...)                 generalised advantage estimates over a sequence of steps
//   categorical              log-probabilities, entropy and their logit gradients for a softmax
//                            restricted to a contiguous block of classes
//   ppo_policy_gradient(...) ∂/∂(log π) of the clipped surrogate  −min(ρA, clip(ρ, 1±ε)A)
// Conventions follow stable-baselines3's PPO (the RL-AUX code's library): advantages normalised
// per minibatch, value loss c_v · mean (V − R)², entropy bonus −c_e · H.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace auxl::rl {

/// GAE over T steps.  rewards[t], values[t] = V(s_t), next_value = V(s_T) (0 when the episode
/// ended), dones[t] = the episode ended after step t (empty: no step ended one).  Writes the
/// advantages into adv (T values); returns = adv + values.
inline void gae(std::span<const double> rewards, std::span<const double> values, const std::vector<bool>& dones,
                double next_value, double gamma, double lambda, std::span<double> adv) {
    const std::size_t T = rewards.size();
    double running = 0.0;
    for (std::size_t k = T; k-- > 0;) {
        const double next_v = k + 1 < T ? values[k + 1] : next_value;
        const double not_done = !dones.empty() && dones[k] ? 0.0 : 1.0;
        const double delta = rewards[k] + gamma * next_v * not_done - values[k];
        running = delta + gamma * lambda * not_done * running;
        adv[k] = running;
    }
}

/// The same, returning the advantages.
inline std::vector<double> gae(const std::vector<double>& rewards, const std::vector<double>& values,
                               const std::vector<bool>& dones, double next_value, double gamma, double lambda) {
    std::vector<double> adv(rewards.size(), 0.0);
    gae(std::span<const double>(rewards), std::span<const double>(values), dones, next_value, gamma, lambda, std::span<double>(adv));
    return adv;
}

/// A categorical distribution given by logits z over the classes [first, first + count).
template <class T>
struct categorical {
    /// Probabilities (count values) from logits, max-shifted.
    static void probabilities(const T* z, std::size_t count, T* p) {
        T m = z[0];
        for (std::size_t j = 1; j < count; ++j) m = std::max(m, z[j]);
        T sum = 0;
        for (std::size_t j = 0; j < count; ++j) sum += (p[j] = std::exp(z[j] - m));
        for (std::size_t j = 0; j < count; ++j) p[j] /= sum;
    }
    static double log_prob(const T* p, std::size_t a) { return std::log(std::max(double(p[a]), 1e-30)); }
    static double entropy(const T* p, std::size_t count) {
        double h = 0;
        for (std::size_t j = 0; j < count; ++j)
            if (p[j] > 0) h -= double(p[j]) * std::log(double(p[j]));
        return h;
    }
    /// dz += scale · ∂ log π(a)/∂z  (= scale · (1[j = a] − p_j)).
    static void add_log_prob_gradient(const T* p, std::size_t count, std::size_t a, double scale, T* dz) {
        for (std::size_t j = 0; j < count; ++j) dz[j] += T(scale * ((j == a ? 1.0 : 0.0) - double(p[j])));
    }
    /// dz += scale · ∂H/∂z  (= scale · −p_j (log p_j + H)).
    static void add_entropy_gradient(const T* p, std::size_t count, double scale, T* dz) {
        const double h = entropy(p, count);
        for (std::size_t j = 0; j < count; ++j) {
            const double pj = double(p[j]);
            const double lp = pj > 0 ? std::log(pj) : 0.0;
            dz[j] += T(scale * -pj * (lp + h));
        }
    }
};

/// Value of the clipped surrogate for one sample: −min(ρA, clip(ρ, 1 − ε, 1 + ε)A), ρ = e^(log π − log π_old).
inline double ppo_clip_loss(double log_prob, double old_log_prob, double advantage, double clip) {
    const double ratio = std::exp(log_prob - old_log_prob);
    const double clipped = std::clamp(ratio, 1.0 - clip, 1.0 + clip);
    return -std::min(ratio * advantage, clipped * advantage);
}

/// ∂/∂(log π) of ppo_clip_loss: −ρA where the unclipped term is the minimum, 0 where the clipped
/// (constant) term is.
inline double ppo_clip_gradient(double log_prob, double old_log_prob, double advantage, double clip) {
    const double ratio = std::exp(log_prob - old_log_prob);
    const double clipped = std::clamp(ratio, 1.0 - clip, 1.0 + clip);
    return ratio * advantage <= clipped * advantage ? -ratio * advantage : 0.0;
}

}  // namespace auxl::rl
