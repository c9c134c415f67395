// auxl/data/subset.hpp — stratified subsets and splits over the fine classes.
//
// stratified_subset(d, n, gen) picks n rows with the fine classes as equally represented as n
// allows (n / C each, the remainder going to the lowest classes), choosing rows within a class
// at random from the given stream.  stratified_split(d, fraction, gen) splits into (rest, held
// out) with about `fraction` of every class held out — the dev split of methods that need one;
// stratified_split_rows(d, fraction, gen) gives the same split as row indices, without copies.
// Rows come out grouped by class; the batcher shuffles them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/core/rng.hpp"
#include "auxl/data/dataset.hpp"

namespace auxl::data {

namespace detail {
template <class T>
std::vector<std::vector<std::size_t>> rows_by_class(const dataset<T>& d, rng& gen) {
    std::vector<std::vector<std::size_t>> rows(d.classes);
    for (std::size_t i = 0; i < d.size(); ++i) rows.at(std::size_t(d.labels[i])).push_back(i);
    for (auto& r : rows) shuffle(r.begin(), r.end(), gen);
    return rows;
}
}  // namespace detail

template <class T>
dataset<T> stratified_subset(const dataset<T>& d, std::size_t n, rng& gen) {
    if (n > d.size()) raise<config_error>("auxl::data::stratified_subset: ", n, " examples requested from ", d.name, " which has ", d.size());
    const auto rows = detail::rows_by_class(d, gen);
    std::vector<std::size_t> picked;
    picked.reserve(n);
    for (std::size_t c = 0; c < d.classes; ++c) {
        const std::size_t want = n / d.classes + (c < n % d.classes ? 1 : 0);
        if (want > rows[c].size()) {
            raise<config_error>("auxl::data::stratified_subset: class ", c, " of ", d.name, " has ", rows[c].size(),
                                " examples, ", want, " needed for a stratified subset of ", n);
        }
        picked.insert(picked.end(), rows[c].begin(), rows[c].begin() + std::ptrdiff_t(want));
    }
    auto out = d.subset(picked);
    out.name = d.name + "/subset" + std::to_string(n);
    return out;
}

/// The rows of stratified_split (same draws): (kept, held_out) as row indices of d, so a caller
/// can hold out a small part without copying the large one.
template <class T>
std::pair<std::vector<std::size_t>, std::vector<std::size_t>> stratified_split_rows(const dataset<T>& d, double fraction,
                                                                                    rng& gen) {
    if (!(fraction > 0.0 && fraction < 1.0)) raise<config_error>("auxl::data::stratified_split: fraction must be in (0, 1), got ", fraction);
    const auto rows = detail::rows_by_class(d, gen);
    std::vector<std::size_t> kept, held;
    for (const auto& r : rows) {
        const auto h = static_cast<std::size_t>(double(r.size()) * fraction + 0.5);
        held.insert(held.end(), r.begin(), r.begin() + std::ptrdiff_t(h));
        kept.insert(kept.end(), r.begin() + std::ptrdiff_t(h), r.end());
    }
    return {std::move(kept), std::move(held)};
}

/// (kept, held_out): round(fraction · n_c) rows of each class c are held out.
template <class T>
std::pair<dataset<T>, dataset<T>> stratified_split(const dataset<T>& d, double fraction, rng& gen) {
    const auto [kept, held] = stratified_split_rows(d, fraction, gen);
    auto a = d.subset(kept);
    auto b = d.subset(held);
    a.name = d.name + "/train";
    b.name = d.name + "/dev";
    return {std::move(a), std::move(b)};
}

}  // namespace auxl::data
