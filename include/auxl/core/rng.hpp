// auxl/core/rng.hpp — reproducible random numbers: one seed, named streams.
//
// A run has one seed.  Each consumer (weight init, data order, dropout, policy sampling, ...)
// draws from its own stream derived from (seed, stream name), so adding a dropout layer does
// not change the data order and a run is reproducible from the seed alone.  The generator is
// xoshiro256** seeded through splitmix64; uniform and normal transforms are our own, because
// std::uniform_real_distribution and std::normal_distribution differ between standard libraries.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string_view>
#include <utility>

namespace auxl {

namespace detail {
constexpr std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// FNV-1a, so a stream's identity depends only on its name's bytes.
constexpr std::uint64_t fnv1a(std::string_view text) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001B3ull;
    }
    return h;
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace detail

/// One random stream (xoshiro256**).  Satisfies UniformRandomBitGenerator.
class rng {
public:
    using result_type = std::uint64_t;

    explicit rng(std::uint64_t seed = 0) { reseed(seed); }

    /// The stream named `name` of the run seeded with `seed`.
    rng(std::uint64_t seed, std::string_view name) { reseed(seed ^ detail::fnv1a(name)); }

    void reseed(std::uint64_t seed) {
        std::uint64_t sm = seed;
        for (auto& word : state_) word = detail::splitmix64(sm);
        has_spare_normal_ = false;
    }

    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

    result_type operator()() {
        const std::uint64_t result = detail::rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = detail::rotl(state_[3], 45);
        return result;
    }

    /// Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

    /// Uniform integer in [0, n), without modulo bias (Lemire's multiply-shift with rejection).
    std::uint64_t below(std::uint64_t n) {
        if (n == 0) return 0;
        const std::uint64_t threshold = (0 - n) % n;
        for (;;) {
            const unsigned __int128 m = static_cast<unsigned __int128>((*this)()) * n;
            if (static_cast<std::uint64_t>(m) >= threshold) return static_cast<std::uint64_t>(m >> 64);
        }
    }

    /// Standard normal by Box-Muller; the second value of each pair is kept for the next call.
    double normal() {
        if (has_spare_normal_) {
            has_spare_normal_ = false;
            return spare_normal_;
        }
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 2.0 * std::numbers::pi * u2;
        spare_normal_ = radius * std::sin(angle);
        has_spare_normal_ = true;
        return radius * std::cos(angle);
    }

    double normal(double mean, double stddev) { return mean + stddev * normal(); }

    /// The raw state, for checkpoints (bit-exact resume).
    struct snapshot {
        std::array<std::uint64_t, 4> words;
        bool has_spare_normal;
        double spare_normal;
    };
    snapshot save() const { return {state_, has_spare_normal_, spare_normal_}; }
    void restore(const snapshot& s) {
        state_ = s.words;
        has_spare_normal_ = s.has_spare_normal;
        spare_normal_ = s.spare_normal;
    }

private:
    std::array<std::uint64_t, 4> state_{};
    bool has_spare_normal_ = false;
    double spare_normal_ = 0.0;
};

/// The state of a stream as six 64-bit words (for checkpoints), and back.
inline std::vector<std::uint64_t> rng_state_words(const rng& r) {
    const auto s = r.save();
    std::vector<std::uint64_t> w(s.words.begin(), s.words.end());
    w.push_back(s.has_spare_normal ? 1 : 0);
    std::uint64_t bits;
    std::memcpy(&bits, &s.spare_normal, sizeof bits);
    w.push_back(bits);
    return w;
}
inline void restore_rng_words(rng& r, const std::vector<std::uint64_t>& w) {
    if (w.size() != 6) throw std::runtime_error("auxl: an rng state needs 6 words, got " + std::to_string(w.size()));
    rng::snapshot s;
    std::copy_n(w.begin(), 4, s.words.begin());
    s.has_spare_normal = w[4] != 0;
    std::memcpy(&s.spare_normal, &w[5], sizeof(double));
    r.restore(s);
}

/// Shuffles [first, last) with the Fisher-Yates algorithm and our own `below`, so the order is the
/// same with every standard library (std::shuffle's algorithm is unspecified).
template <class RandomIt>
void shuffle(RandomIt first, RandomIt last, rng& gen) {
    const auto n = static_cast<std::uint64_t>(last - first);
    for (std::uint64_t i = n; i > 1; --i) {
        const auto j = gen.below(i);
        using std::swap;
        swap(first[static_cast<std::ptrdiff_t>(i - 1)], first[static_cast<std::ptrdiff_t>(j)]);
    }
}

}  // namespace auxl
