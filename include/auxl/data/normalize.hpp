// auxl/data/normalize.hpp — input standardisation fitted on the training set.
//
// x ← (x − mean) / std, with one mean and one std over all features (per_feature = false, the
// usual choice for images) or one pair per feature.  Fit on the training data only and apply the
// same transform to dev and test data.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/data/dataset.hpp"

namespace auxl::data {

class standardizer {
public:
    template <class T>
    static standardizer fit(const dataset<T>& d, bool per_feature = false) {
        if (d.size() == 0) raise<config_error>("auxl::data::standardizer: cannot fit on the empty set ", d.name);
        standardizer s;
        const std::size_t f = d.features(), n = d.size();
        const std::size_t groups = per_feature ? f : 1;
        s.mean_.assign(groups, 0.0);
        s.std_.assign(groups, 0.0);
        std::vector<double> count(groups, 0.0);
        for (std::size_t i = 0; i < n * f; ++i) {
            const std::size_t g = per_feature ? i % f : 0;
            s.mean_[g] += d.inputs.data()[i];
            count[g] += 1;
        }
        for (std::size_t g = 0; g < groups; ++g) s.mean_[g] /= count[g];
        for (std::size_t i = 0; i < n * f; ++i) {
            const std::size_t g = per_feature ? i % f : 0;
            const double z = d.inputs.data()[i] - s.mean_[g];
            s.std_[g] += z * z;
        }
        for (std::size_t g = 0; g < groups; ++g) {
            s.std_[g] = std::sqrt(s.std_[g] / count[g]);
            if (s.std_[g] < 1e-12) s.std_[g] = 1.0;  // constant feature: centre it, do not divide by 0
        }
        return s;
    }

    template <class T>
    void apply(dataset<T>& d) const {
        const std::size_t f = d.features();
        if (mean_.size() != 1 && mean_.size() != f) {
            raise<shape_error>("auxl::data::standardizer: fitted on ", mean_.size(), " features, ", d.name, " has ", f);
        }
        for (std::size_t i = 0; i < d.size() * f; ++i) {
            const std::size_t g = mean_.size() == 1 ? 0 : i % f;
            d.inputs.data()[i] = T((d.inputs.data()[i] - mean_[g]) / std_[g]);
        }
    }

    const std::vector<double>& mean() const { return mean_; }
    const std::vector<double>& stddev() const { return std_; }

private:
    std::vector<double> mean_;
    std::vector<double> std_;
};

}  // namespace auxl::data
