// Writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus/<reader>/): small valid files
// of each format, so the fuzzers start from inputs that pass the readers' first checks.  Run once
// by hand when a format changes:  make_corpus tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/data/cifar.hpp"
#include "auxl/data/idx.hpp"
#include "auxl/data/npy.hpp"

using namespace auxl;
using trunk = nn::sequential<nn::input<4>, nn::dense<3>, nn::relu>;
using model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<4>>>;
using fuzz_trainer = trainer<model, gen::human_hierarchy, weight::cosine, optim::adam<float>>;  // as in fuzz_readers.cpp

static void write_bytes(const std::filesystem::path& p, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

int main(int argc, char** argv) {
    const std::filesystem::path root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    for (const char* d : {"idx", "npy", "cifar10", "cifar100", "checkpoint"}) std::filesystem::create_directories(root / d);

    data::idx_array images{{2, 3, 3}, {}};
    for (int i = 0; i < 18; ++i) images.values.push_back(std::uint8_t(i * 13));
    data::write_idx(root / "idx" / "images_raw.idx", images, 0);
    data::write_idx(root / "idx" / "images.idx.gz", images, 1);
    data::write_idx(root / "idx" / "labels_raw.idx", data::idx_array{{4}, {0, 1, 2, 9}}, 0);

    xt::xarray<float> f = {{1.5f, -2.0f, 0.25f}, {3.0f, 4.0f, 5.0f}};
    data::save_npy(root / "npy" / "float32.npy", f);
    xt::xarray<std::uint8_t> u = {7, 8, 9};
    data::save_npy(root / "npy" / "uint8.npy", u);

    std::vector<std::uint8_t> c10(1 + data::cifar_pixels, 100);
    c10[0] = 3;
    write_bytes(root / "cifar10" / "one_record.bin", c10);
    std::vector<std::uint8_t> c100(2 + data::cifar_pixels, 50);
    c100[0] = 4;
    c100[1] = 42;
    write_bytes(root / "cifar100" / "one_record.bin", c100);

    data::dataset<float> d;
    d.name = "corpus";
    d.classes = 4;
    d.example_shape = {4, 1, 1};
    d.inputs = xt::xtensor<float, 2>::from_shape({8, 4});
    for (std::size_t i = 0; i < 8; ++i) {
        d.labels.push_back(std::int32_t(i % 4));
        for (std::size_t j = 0; j < 4; ++j) d.inputs(i, j) = float(i == j);
    }
    fuzz_trainer t(data::hierarchy("fuzz", {0, 0, 1, 1}), {}, {}, optim::adam<float>({.learning_rate = 1e-3}), {.seed = 1, .batch_size = 4});
    t.fit(d, {.epochs = 1});
    t.save_checkpoint(root / "checkpoint" / "after_one_epoch.ckpt");
    std::printf("corpus written to %s\n", root.string().c_str());
}
