// auxl/data/dataset.hpp — an in-memory labelled dataset.
//
// inputs is N x F (row-major, one example per row, F = C·H·W); labels holds the *fine* class of
// each example (the original classes of the data set, e.g. the 10 Fashion-MNIST classes).  The
// primary task's labels come from a data::hierarchy mapping fine → primary, so one dataset
// serves every choice of primary task.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/core/xtensor.hpp"

namespace auxl::data {

template <class T = float>
struct dataset {
    xt::xtensor<T, 2> inputs;                    ///< N x F
    std::vector<std::int32_t> labels;            ///< fine class of each row
    std::array<std::size_t, 3> example_shape{};  ///< C, H, W of one example
    std::size_t classes = 0;                     ///< number of fine classes
    std::string name;                            ///< for messages ("fashion-mnist/train")

    std::size_t size() const { return labels.size(); }
    std::size_t features() const { return inputs.shape()[1]; }

    /// Rows `indices` (in that order) as a new dataset.
    template <class Index>
    dataset subset(const std::vector<Index>& indices) const {
        dataset out;
        out.example_shape = example_shape;
        out.classes = classes;
        out.name = name;
        out.inputs = xt::xtensor<T, 2>::from_shape({indices.size(), features()});
        out.labels.reserve(indices.size());
        const std::size_t f = features();
        for (std::size_t r = 0; r < indices.size(); ++r) {
            const auto i = static_cast<std::size_t>(indices[r]);
            if (i >= size()) raise<shape_error>("auxl::data: row ", i, " requested from ", name, " which has ", size(), " rows");
            std::copy_n(inputs.data() + i * f, f, out.inputs.data() + r * f);
            out.labels.push_back(labels[i]);
        }
        return out;
    }

    /// Throws unless inputs and labels agree and every label is in [0, classes).
    void validate() const {
        if (inputs.shape()[0] != labels.size()) {
            raise<shape_error>("auxl::data: ", name, " has ", inputs.shape()[0], " input rows but ", labels.size(), " labels");
        }
        if (example_shape[0] * example_shape[1] * example_shape[2] != features()) {
            raise<shape_error>("auxl::data: ", name, " declares examples of ", example_shape[0], "x", example_shape[1], "x",
                               example_shape[2], " but rows have ", features(), " values");
        }
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= classes) {
                raise<value_error>("auxl::data: ", name, " label ", labels[i], " in row ", i, " is outside [0, ", classes, ")");
            }
        }
    }
};

}  // namespace auxl::data
