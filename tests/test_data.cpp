// Data: IDX and npy round trips and every kind of bad file, hierarchies, stratified subsets,
// the batcher, standardisation, and the real Fashion-MNIST files when they are installed.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <zlib.h>

#include "auxl/data/batcher.hpp"
#include "auxl/data/cifar.hpp"
#include "auxl/data/fashion_mnist.hpp"
#include "auxl/data/hierarchy.hpp"
#include "auxl/data/idx.hpp"
#include "auxl/data/normalize.hpp"
#include "auxl/data/npy.hpp"
#include "auxl/data/subset.hpp"
#include "temp_dir.hpp"

using namespace auxl;
namespace fs = std::filesystem;

namespace {
std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}
std::string gzip(const std::string& raw) {
    uLongf size = compressBound(uLong(raw.size())) + 32;
    std::string out(size, '\0');
    // A gzip (not zlib) stream, as .gz files are: deflate with windowBits 31.
    z_stream zs{};
    deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    zs.avail_in = uInt(raw.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = uInt(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}
std::string idx_bytes(std::vector<std::uint32_t> dims, const std::vector<std::uint8_t>& values, std::uint8_t type = 0x08) {
    std::string b = {0, 0, char(type), char(dims.size())};
    for (auto d : dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(char((d >> s) & 0xFF));
    b.append(values.begin(), values.end());
    return b;
}
}  // namespace

TEST_CASE("IDX files round-trip raw and gzip-compressed") {
    testing::temp_dir dir;
    data::idx_array a{{3, 2, 2}, {}};
    for (int i = 0; i < 12; ++i) a.values.push_back(std::uint8_t(i * 20));
    for (const char* name : {"a-idx3-ubyte", "a-idx3-ubyte.gz"}) {
        data::write_idx(dir / name, a);
        const auto b = data::read_idx(dir / name);
        CHECK(b.dims == a.dims);
        CHECK(b.values == a.values);
    }
    // The .gz one really is compressed (gzip magic), the raw one is not.
    CHECK(read_file(dir / "a-idx3-ubyte.gz").substr(0, 2) == "\x1f\x8b");
    CHECK(read_file(dir / "a-idx3-ubyte").substr(0, 3) == std::string("\0\0\x08", 3));
}

TEST_CASE("bad IDX files each raise an io_error naming the file and the field") {
    testing::temp_dir dir;
    const std::vector<std::uint8_t> six = {1, 2, 3, 4, 5, 6};
    const std::string good = idx_bytes({2, 3}, six);
    struct bad_case {
        const char* what;
        std::string bytes;
        const char* message;
    };
    const std::vector<bad_case> cases = {
        {"empty", "", "field header: expected at least 4 bytes, found 0"},
        {"wrong magic", "\x01\x02" + good.substr(2), "field magic: expected 0x0000"},
        {"float type", idx_bytes({2, 3}, six, 0x0D), "field type: expected 0x08 (unsigned byte), found 0xd"},
        {"zero dimensions", std::string("\0\0\x08\0", 4), "field dimensions: expected 1 to 4, found 0"},
        {"truncated header", good.substr(0, 9), "field sizes: expected 12 header bytes, found 9"},
        {"truncated data", good.substr(0, good.size() - 2), "field data: expected 6 bytes for dimensions 2 3, found 4 (truncated)"},
        {"trailing bytes", good + "xy", "found 8 (trailing bytes)"},
        {"truncated gzip", gzip(good).substr(0, 12), "truncated or corrupt gzip"},
        {"corrupt gzip", gzip(good).substr(0, 10) + std::string(20, '\x55'), "gzip"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        const auto path = dir / "bad-idx";
        write_file(path, c.bytes);
        CHECK_THROWS_WITH_AS(data::read_idx(path), doctest::Contains(c.message), io_error);
        CHECK_THROWS_WITH_AS(data::read_idx(path), doctest::Contains(path.c_str()), io_error);
    }
    CHECK_THROWS_WITH_AS(data::read_idx(dir / "missing"), doctest::Contains("cannot open"), io_error);
}

TEST_CASE("npy files round-trip and bad ones raise an io_error naming the field") {
    testing::temp_dir dir;
    xt::xarray<float> a = {{1.5f, -2.0f, 3.0f}, {4.0f, 5.0f, 6.25f}};
    data::save_npy(dir / "a.npy", a);
    const auto b = data::load_npy<float>(dir / "a.npy");
    CHECK(b.shape() == a.shape());
    CHECK(b == a);
    xt::xarray<std::int32_t> labels = {3, 1, 4, 1, 5};
    data::save_npy(dir / "labels.npy", labels);
    CHECK(data::load_npy<std::int32_t>(dir / "labels.npy") == labels);

    const std::string good = read_file(dir / "a.npy");
    struct bad_case {
        const char* what;
        std::string bytes;
        const char* message;
    };
    std::string fortran = good;
    fortran.replace(fortran.find("False"), 5, "True ");
    std::string bad_shape = good;
    bad_shape.replace(bad_shape.find("(2, 3)"), 6, "(2, x)");
    // Same header length (so the data offset stays), different text: each must be refused.
    auto with_header_text = [&](const std::string& from, const std::string& to) {
        std::string bytes = good;
        const auto at = bytes.find(from);
        REQUIRE(at != std::string::npos);
        bytes.replace(at, from.size(), to);
        return bytes;
    };
    // A fuzzer finding (tests/fuzz/regressions/npy): text after the shape that a laxer parser
    // (xtensor's) read as a different, enormous shape.
    const std::string trailing = with_header_text("(2, 3), }", "(2, 3)! }");
    const std::string repeated = with_header_text("'fortran_order': False, ", "'shape': (3, 2), 'x':1,");
    const std::vector<bad_case> cases = {
        {"not npy", "hello world, not an array", "field magic"},
        {"truncated data", good.substr(0, good.size() - 5), "field data: expected 24 bytes, found 19 (truncated)"},
        {"trailing bytes", good + "1234", "(trailing bytes)"},
        {"truncated header", good.substr(0, 40), "field header"},
        {"fortran order", fortran, "field fortran_order"},
        {"bad shape", bad_shape, "field shape"},
        {"text after the shape", trailing, "field header: expected ',' or '}'"},
        {"unknown or repeated key", repeated, "field header: unknown or repeated key"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        write_file(dir / "bad.npy", c.bytes);
        CHECK_THROWS_WITH_AS(data::load_npy<float>(dir / "bad.npy"), doctest::Contains(c.message), io_error);
    }
    CHECK_THROWS_WITH_AS(data::load_npy<double>(dir / "a.npy"), doctest::Contains("field descr: expected '<f8', found '<f4'"),
                         io_error);
}

TEST_CASE("writing over an existing file through a failing writer leaves the old file intact") {
    testing::temp_dir dir;
    xt::xarray<float> a = {1.0f, 2.0f};
    data::save_npy(dir / "keep.npy", a);
    const std::string before = read_file(dir / "keep.npy");
    CHECK_THROWS(io::write_atomically(dir / "keep.npy", [](std::ostream& out) {
        out << "partial";
        throw io_error("simulated failure");
    }));
    CHECK(read_file(dir / "keep.npy") == before);
    CHECK_THROWS_AS(data::save_npy(dir / "no-such-dir" / "x.npy", a), io_error);
    for (const auto& entry : fs::directory_iterator(dir.path())) CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("built-in hierarchies map fine classes to primary classes in block order") {
    const auto super5 = data::hierarchy::fashion_super5();
    CHECK(super5.primary_classes() == 5);
    CHECK(super5.blocks().psi() == std::vector<std::size_t>{4, 1, 1, 3, 1});
    CHECK(super5.primary_of(8) == 4);  // Bag
    CHECK(super5.primary_of(9) == 3);  // Ankle boot is footwear
    CHECK(super5.block_index_of(0) == 0);
    CHECK(super5.block_index_of(6) == 3);   // last of the tops block
    CHECK(super5.block_index_of(1) == 4);   // trousers: the bottoms block
    CHECK(super5.block_index_of(9) == 8);   // ankle boot: last of the footwear block {5, 7, 9} at 6..8
    std::set<std::int32_t> seen;
    for (std::int32_t f = 0; f < 10; ++f) seen.insert(super5.block_index_of(f));
    CHECK(seen.size() == 10);
    CHECK(data::hierarchy::fashion_half2().primary_of(4) == 0);
    CHECK(data::hierarchy::fashion_half2().primary_of(5) == 1);
    CHECK(data::hierarchy::fashion_parity2().primary_of(7) == 1);
    const auto c100 = data::hierarchy::cifar100_super20();
    CHECK(c100.fine_classes() == 100);
    CHECK(c100.primary_classes() == 20);
    for (std::size_t c = 0; c < 20; ++c) CHECK(c100.blocks().block_size(c) == 5);
    CHECK(data::hierarchy::by_name("parity2").name() == "parity2");
    CHECK_THROWS_WITH_AS(data::hierarchy::by_name("bogus"), doctest::Contains("unknown hierarchy 'bogus'"), config_error);
    CHECK_THROWS_AS(data::hierarchy("gap", {0, 2}), config_error);  // primary class 1 has no fine class
    std::vector<std::int32_t> fine = {3, 11}, primary(2);
    CHECK_THROWS_WITH_AS(super5.map_to_primary(fine.data(), 2, primary.data()),
                         doctest::Contains("fine label 11 in row 1 is outside [0, 10)"), value_error);
}

namespace {
data::dataset<float> toy(std::size_t n, std::size_t classes) {
    data::dataset<float> d;
    d.classes = classes;
    d.example_shape = {3, 1, 1};
    d.name = "toy";
    d.inputs = xt::xtensor<float, 2>::from_shape({n, 3});
    for (std::size_t i = 0; i < n; ++i) {
        d.labels.push_back(std::int32_t(i % classes));
        for (std::size_t j = 0; j < 3; ++j) d.inputs(i, j) = float(i * 3 + j);
    }
    return d;
}
}  // namespace

TEST_CASE("stratified subsets balance the classes and depend only on the seed") {
    const auto d = toy(1000, 10);
    rng a(1, "subset"), b(1, "subset"), c(2, "subset");
    const auto s1 = data::stratified_subset(d, 95, a);
    const auto s2 = data::stratified_subset(d, 95, b);
    const auto s3 = data::stratified_subset(d, 95, c);
    CHECK(s1.size() == 95);
    std::vector<int> counts(10, 0);
    for (auto l : s1.labels) ++counts[std::size_t(l)];
    for (std::size_t k = 0; k < 10; ++k) CHECK(counts[k] == (k < 5 ? 10 : 9));
    CHECK(s1.labels == s2.labels);
    CHECK(s1.inputs == s2.inputs);
    CHECK_FALSE(s1.inputs == s3.inputs);
    // Rows keep their inputs with their labels.
    for (std::size_t i = 0; i < s1.size(); ++i) CHECK(std::size_t(s1.inputs(i, 0)) / 3 % 10 == std::size_t(s1.labels[i]));
    CHECK_THROWS_AS(data::stratified_subset(d, 2000, a), config_error);

    rng e(3, "split");
    const auto [kept, dev] = data::stratified_split(d, 0.05, e);
    CHECK(dev.size() == 50);
    CHECK(kept.size() == 950);
    std::set<float> dev_rows;
    for (std::size_t i = 0; i < dev.size(); ++i) dev_rows.insert(dev.inputs(i, 0));
    for (std::size_t i = 0; i < kept.size(); ++i) CHECK(dev_rows.count(kept.inputs(i, 0)) == 0);
}

TEST_CASE("the batcher visits every row once per epoch, in a seeded order") {
    data::batcher b(10, 4);
    rng order(5, "order");
    b.start_epoch(order);
    std::vector<std::uint32_t> seen;
    std::vector<std::size_t> sizes;
    while (!b.epoch_done()) {
        const auto rows = b.next();
        sizes.push_back(rows.size());
        seen.insert(seen.end(), rows.begin(), rows.end());
    }
    CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
    CHECK(b.batches_per_epoch() == 3);
    auto sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    for (std::uint32_t i = 0; i < 10; ++i) CHECK(sorted[i] == i);
    const auto first_epoch = seen;
    b.start_epoch(order);
    std::vector<std::uint32_t> second(b.permutation().begin(), b.permutation().end());
    CHECK(second != first_epoch);
    CHECK_THROWS_AS(data::batcher(10, 0), config_error);
}

TEST_CASE("the standardiser fitted on training data gives it zero mean and unit variance") {
    auto d = toy(100, 4);
    const auto s = data::standardizer::fit(d);
    s.apply(d);
    double sum = 0, sq = 0;
    for (float v : d.inputs) {
        sum += v;
        sq += double(v) * v;
    }
    CHECK(sum / 300 == doctest::Approx(0.0).epsilon(1e-5));
    CHECK(sq / 300 == doctest::Approx(1.0).epsilon(1e-4));
    auto per = toy(100, 4);
    const auto pf = data::standardizer::fit(per, true);
    CHECK(pf.mean().size() == 3);
}

TEST_CASE("datasets reject labels out of range and rows that do not match their labels") {
    auto d = toy(10, 3);
    CHECK_NOTHROW(d.validate());
    d.labels[4] = 7;
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("label 7 in row 4 is outside [0, 3)"), value_error);
    d.labels.pop_back();
    CHECK_THROWS_AS(d.validate(), shape_error);
}

TEST_CASE("Fashion-MNIST loads with the right counts, shapes and label range") {
    if (!data::fashion_mnist_available()) {
        MESSAGE("Fashion-MNIST not installed; skipped (scripts/setup.sh installs dataset-fashion-mnist)");
        CHECK(std::getenv("AUXL_REQUIRE_DATA") == nullptr);
        return;
    }
    const auto fm = data::load_fashion_mnist();
    CHECK(fm.train.size() == 60000);
    CHECK(fm.test.size() == 10000);
    CHECK(fm.train.features() == 784);
    CHECK_NOTHROW(fm.train.validate());
    std::vector<int> counts(10, 0);
    for (auto l : fm.test.labels) ++counts[std::size_t(l)];
    for (int c : counts) CHECK(c == 1000);
    float lo = 1, hi = 0;
    for (float v : fm.train.inputs) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    CHECK(lo == 0.0f);
    CHECK(hi == 1.0f);
    testing::temp_dir empty;
    CHECK_THROWS_WITH_AS(data::load_fashion_mnist(empty.path()), doctest::Contains("dataset-fashion-mnist"), io_error);
}

namespace {
// n CIFAR records: CIFAR-100 when `hundred` (coarse, fine, pixels) else CIFAR-10 (label, pixels).
std::string cifar_records(std::size_t n, bool hundred) {
    const auto super20 = data::hierarchy::cifar100_super20();
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        if (hundred) {
            const int fine = int(i * 37 % 100);
            out.push_back(char(super20.primary_of(fine)));
            out.push_back(char(fine));
        } else {
            out.push_back(char(i % 10));
        }
        for (std::size_t j = 0; j < data::cifar_pixels; ++j) out.push_back(char((i + j) % 256));
    }
    return out;
}
}  // namespace

TEST_CASE("CIFAR-10 and CIFAR-100 binary files load as 3x32x32 examples with checked labels") {
    testing::temp_dir dir;
    for (int b = 1; b <= 5; ++b) write_file(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(4, false));
    write_file(dir / "test_batch.bin", cifar_records(3, false));
    const auto c10 = data::load_cifar10(dir.path());
    REQUIRE(c10.train.size() == 20);
    CHECK(c10.test.size() == 3);
    CHECK(c10.train.example_shape == std::array<std::size_t, 3>{3, 32, 32});
    CHECK(c10.train.classes == 10);
    CHECK(c10.train.labels[5] == 1);  // batch 2, record 1
    CHECK(c10.train.inputs(5, 0) == doctest::Approx(1.0f / 255.0f));
    CHECK(c10.train.inputs(0, 255) == doctest::Approx(1.0f));

    write_file(dir / "train.bin", cifar_records(6, true));
    write_file(dir / "test.bin", cifar_records(2, true));
    const auto c100 = data::load_cifar100(dir.path());
    REQUIRE(c100.train.size() == 6);
    CHECK(c100.train.classes == 100);
    CHECK(c100.train.labels[1] == 37);
    std::vector<std::int32_t> coarse;
    data::read_cifar100_file(dir / "train.bin", &coarse);
    CHECK(coarse[1] == data::hierarchy::cifar100_super20().primary_of(37));
}

TEST_CASE("bad CIFAR files each raise an io_error naming the file, the record and the field") {
    testing::temp_dir dir;
    const auto path = dir / "bad.bin";
    auto good10 = cifar_records(2, false), good100 = cifar_records(2, true);
    write_file(path, good10.substr(0, good10.size() - 1));
    CHECK_THROWS_WITH_AS(data::read_cifar10_batch(path), doctest::Contains("field size: expected a positive multiple of 3073"), io_error);
    write_file(path, "");
    CHECK_THROWS_WITH_AS(data::read_cifar10_batch(path), doctest::Contains("bad.bin field size"), io_error);
    auto bad_label = good10;
    bad_label[3073] = char(10);
    write_file(path, bad_label);
    CHECK_THROWS_WITH_AS(data::read_cifar10_batch(path), doctest::Contains("record 1 field label: expected 0-9, found 10"), io_error);
    auto bad_fine = good100;
    bad_fine[1] = char(100);
    write_file(path, bad_fine);
    CHECK_THROWS_WITH_AS(data::read_cifar100_file(path), doctest::Contains("record 0 field fine label"), io_error);
    auto wrong_coarse = good100;
    wrong_coarse[0] = char((int(wrong_coarse[0]) + 1) % 20);
    write_file(path, wrong_coarse);
    CHECK_THROWS_WITH_AS(data::read_cifar100_file(path), doctest::Contains("belongs to superclass"), io_error);
    // A CIFAR-10 file read as CIFAR-100 is refused (its size is not a whole number of records).
    write_file(path, good10);
    CHECK_THROWS_WITH_AS(data::read_cifar100_file(path), doctest::Contains("multiple of 3074"), io_error);
    CHECK_THROWS_WITH_AS(data::read_cifar10_batch(dir / "missing.bin"), doctest::Contains("cannot open"), io_error);
}
