// auxl/data/fashion_mnist.hpp — the Fashion-MNIST training (60,000) and test (10,000) sets.
//
// Read from, in order of preference: the directory passed in, $AUXL_FASHION_MNIST_DIR, or the
// Debian package's /usr/share/datasets/fashion-mnist (dataset-fashion-mnist).  Each of the four
// files may be gzip-compressed (name ending in .gz) or raw.  Pixels become floats in [0, 1];
// examples are 1 x 28 x 28.  Counts, image size and label range are checked, and a missing
// directory is an io_error that says where it looked and how to install the data.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "auxl/data/dataset.hpp"
#include "auxl/data/idx.hpp"

namespace auxl::data {

inline constexpr const char* fashion_mnist_default_dir = "/usr/share/datasets/fashion-mnist";

/// The directory load_fashion_mnist uses when given none.
inline std::filesystem::path fashion_mnist_dir(const std::filesystem::path& requested = {}) {
    if (!requested.empty()) return requested;
    if (const char* env = std::getenv("AUXL_FASHION_MNIST_DIR"); env && *env) return env;
    return fashion_mnist_default_dir;
}

/// True when all four files are present in fashion_mnist_dir(requested).
inline bool fashion_mnist_available(const std::filesystem::path& requested = {}) {
    const auto dir = fashion_mnist_dir(requested);
    for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"}) {
        if (!std::filesystem::exists(dir / (std::string(stem) + ".gz")) && !std::filesystem::exists(dir / stem)) return false;
    }
    return true;
}

struct fashion_mnist {
    dataset<float> train;
    dataset<float> test;
    static constexpr const char* class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
};

namespace detail {
inline std::filesystem::path find_idx(const std::filesystem::path& dir, const std::string& stem) {
    if (std::filesystem::exists(dir / (stem + ".gz"))) return dir / (stem + ".gz");
    if (std::filesystem::exists(dir / stem)) return dir / stem;
    raise<io_error>("auxl::data::load_fashion_mnist: ", (dir / (stem + ".gz")).string(),
                    " not found (install the Debian package dataset-fashion-mnist, or point AUXL_FASHION_MNIST_DIR "
                    "at a directory holding the four IDX files)");
}

inline dataset<float> load_fashion_split(const std::filesystem::path& dir, const std::string& prefix,
                                         std::size_t expected_count, const std::string& name) {
    const auto images_path = find_idx(dir, prefix + "-images-idx3-ubyte");
    const auto labels_path = find_idx(dir, prefix + "-labels-idx1-ubyte");
    const auto images = read_idx(images_path);
    const auto labels = read_idx(labels_path);
    if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28) {
        raise<io_error>("auxl::data::load_fashion_mnist: ", images_path.string(),
                        " field dimensions: expected N x 28 x 28, found ", images.dims.size(), " dimensions");
    }
    if (images.dims[0] != expected_count) {
        raise<io_error>("auxl::data::load_fashion_mnist: ", images_path.string(), " field count: expected ", expected_count,
                        " images, found ", images.dims[0]);
    }
    if (labels.dims.size() != 1 || labels.dims[0] != expected_count) {
        raise<io_error>("auxl::data::load_fashion_mnist: ", labels_path.string(), " field count: expected ", expected_count,
                        " labels, found ", labels.dims.empty() ? 0 : labels.dims[0]);
    }
    dataset<float> out;
    out.name = name;
    out.classes = 10;
    out.example_shape = {1, 28, 28};
    out.inputs = xt::xtensor<float, 2>::from_shape({expected_count, 784});
    for (std::size_t i = 0; i < images.values.size(); ++i) out.inputs.data()[i] = float(images.values[i]) / 255.0f;
    out.labels.resize(expected_count);
    for (std::size_t i = 0; i < expected_count; ++i) {
        if (labels.values[i] >= 10) {
            raise<io_error>("auxl::data::load_fashion_mnist: ", labels_path.string(), " field label ", i,
                            ": expected 0 to 9, found ", int(labels.values[i]));
        }
        out.labels[i] = labels.values[i];
    }
    return out;
}
}  // namespace detail

/// Loads both splits (about 0.3 s from the gzip files).
inline fashion_mnist load_fashion_mnist(const std::filesystem::path& directory = {}) {
    const auto dir = fashion_mnist_dir(directory);
    if (!std::filesystem::is_directory(dir)) {
        raise<io_error>("auxl::data::load_fashion_mnist: directory ", dir.string(),
                        " not found (install the Debian package dataset-fashion-mnist, or set AUXL_FASHION_MNIST_DIR)");
    }
    fashion_mnist data;
    data.train = detail::load_fashion_split(dir, "train", 60000, "fashion-mnist/train");
    data.test = detail::load_fashion_split(dir, "t10k", 10000, "fashion-mnist/test");
    return data;
}

}  // namespace auxl::data
