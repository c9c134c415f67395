// auxl/data/cifar.hpp — CIFAR-10 and CIFAR-100, binary versions (the auxiliary-learning papers'
// main benchmark: MAXL, RL-AUX and AuxiLearn report CIFAR-100 with the 20 superclasses).
//
// Formats (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"):
//   CIFAR-10   data_batch_1.bin … data_batch_5.bin, test_batch.bin: records of 1 label byte
//              (0–9) + 3,072 pixel bytes (the red, green and blue 32 × 32 planes, row-major)
//   CIFAR-100  train.bin, test.bin: records of 1 coarse label byte (0–19), 1 fine label byte
//              (0–99) + 3,072 pixel bytes
// Pixels become floats in [0, 1]; examples are 3 × 32 × 32 (channel-major, as nn::conv2d wants).
// A dataset's labels are the fine classes (CIFAR-100) or the classes (CIFAR-10).  Every file is
// checked: its size must be a whole number of records, every label in range, and every CIFAR-100
// coarse label must agree with the fine label's superclass in data::hierarchy::cifar100_super20()
// — a mismatch means a corrupt or foreign file.  Errors are io_errors naming the file, the record
// and the field.  Nothing here is run on real CIFAR files in CI (the data is not packaged in
// Debian); the tests use small generated files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/data/dataset.hpp"
#include "auxl/data/hierarchy.hpp"

namespace auxl::data {

inline constexpr std::size_t cifar_pixels = 3 * 32 * 32;

namespace detail {
inline std::vector<std::uint8_t> read_cifar_bytes(const std::filesystem::path& path, std::size_t record, const char* who) {
    std::ifstream in(path, std::ios::binary);
    if (!in) raise<io_error>(who, ": cannot open ", path.string());
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.empty() || bytes.size() % record != 0) {
        raise<io_error>(who, ": ", path.string(), " field size: expected a positive multiple of ", record, " bytes (one record), found ",
                        bytes.size(), bytes.empty() ? "" : " (truncated or not a CIFAR binary file)");
    }
    return bytes;
}

inline void append_pixels(dataset<float>& out, std::size_t row, const std::uint8_t* pixels) {
    float* dst = out.inputs.data() + row * cifar_pixels;
    for (std::size_t j = 0; j < cifar_pixels; ++j) dst[j] = float(pixels[j]) / 255.0f;
}

inline dataset<float> empty_cifar(std::size_t n, std::size_t classes, std::string name) {
    dataset<float> d;
    d.name = std::move(name);
    d.classes = classes;
    d.example_shape = {3, 32, 32};
    d.inputs = xt::xtensor<float, 2>::from_shape({n, cifar_pixels});
    d.labels.reserve(n);
    return d;
}
}  // namespace detail

/// One CIFAR-10 binary batch file.
inline dataset<float> read_cifar10_batch(const std::filesystem::path& path) {
    const char* who = "auxl::data::read_cifar10_batch";
    const std::size_t record = 1 + cifar_pixels;
    const auto bytes = detail::read_cifar_bytes(path, record, who);
    const std::size_t n = bytes.size() / record;
    auto d = detail::empty_cifar(n, 10, "cifar10/" + path.filename().string());
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* r = bytes.data() + i * record;
        if (r[0] >= 10) raise<io_error>(who, ": ", path.string(), " record ", i, " field label: expected 0-9, found ", int(r[0]));
        d.labels.push_back(std::int32_t(r[0]));
        detail::append_pixels(d, i, r + 1);
    }
    return d;
}

/// One CIFAR-100 binary file; fine labels in the dataset, coarse labels checked against the
/// built-in superclass map (and returned in `coarse` if given).
inline dataset<float> read_cifar100_file(const std::filesystem::path& path, std::vector<std::int32_t>* coarse = nullptr) {
    const char* who = "auxl::data::read_cifar100_file";
    const std::size_t record = 2 + cifar_pixels;
    const auto bytes = detail::read_cifar_bytes(path, record, who);
    const std::size_t n = bytes.size() / record;
    const auto super20 = hierarchy::cifar100_super20();
    auto d = detail::empty_cifar(n, 100, "cifar100/" + path.filename().string());
    if (coarse) coarse->clear();
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* r = bytes.data() + i * record;
        if (r[0] >= 20) raise<io_error>(who, ": ", path.string(), " record ", i, " field coarse label: expected 0-19, found ", int(r[0]));
        if (r[1] >= 100) raise<io_error>(who, ": ", path.string(), " record ", i, " field fine label: expected 0-99, found ", int(r[1]));
        if (super20.primary_of(r[1]) != r[0]) {
            raise<io_error>(who, ": ", path.string(), " record ", i, " field coarse label: fine class ", int(r[1]),
                            " belongs to superclass ", super20.primary_of(r[1]), ", the file says ", int(r[0]));
        }
        d.labels.push_back(std::int32_t(r[1]));
        if (coarse) coarse->push_back(std::int32_t(r[0]));
        detail::append_pixels(d, i, r + 2);
    }
    return d;
}

struct cifar {
    dataset<float> train;
    dataset<float> test;
};

/// CIFAR-10 from a directory holding data_batch_1.bin … data_batch_5.bin and test_batch.bin
/// (the extracted "cifar-10-batches-bin").
inline cifar load_cifar10(const std::filesystem::path& dir) {
    cifar out;
    std::vector<dataset<float>> parts;
    std::size_t n = 0;
    for (int b = 1; b <= 5; ++b) {
        parts.push_back(read_cifar10_batch(dir / ("data_batch_" + std::to_string(b) + ".bin")));
        n += parts.back().size();
    }
    out.train = detail::empty_cifar(n, 10, "cifar10/train");
    std::size_t row = 0;
    for (const auto& p : parts) {
        std::copy(p.inputs.begin(), p.inputs.end(), out.train.inputs.begin() + std::ptrdiff_t(row * cifar_pixels));
        out.train.labels.insert(out.train.labels.end(), p.labels.begin(), p.labels.end());
        row += p.size();
    }
    out.test = read_cifar10_batch(dir / "test_batch.bin");
    out.test.name = "cifar10/test";
    return out;
}

/// CIFAR-100 from a directory holding train.bin and test.bin (the extracted "cifar-100-binary");
/// fine labels, to be used with data::hierarchy::cifar100_super20() for the 20-superclass task.
inline cifar load_cifar100(const std::filesystem::path& dir) {
    cifar out{read_cifar100_file(dir / "train.bin"), read_cifar100_file(dir / "test.bin")};
    out.train.name = "cifar100/train";
    out.test.name = "cifar100/test";
    return out;
}

}  // namespace auxl::data
