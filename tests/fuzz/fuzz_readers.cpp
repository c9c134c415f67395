// Fuzz harnesses for every reader of outside bytes.  One source, one target per reader, chosen
// by AUXL_FUZZ_READER (idx, npy, cifar10, cifar100, checkpoint).  Each input is written to a
// file and handed to the reader; the reader may accept it or throw an auxl::error — anything
// else (a crash, a sanitizer report, a leak, another exception type, a hang) is a finding.
//
// Built twice: with clang's libFuzzer (tests/fuzz/run_fuzz.cmake, CTest fuzz_<reader>), and
// with the normal compiler and AUXL_FUZZ_REPLAY, as a program that replays the committed corpus
// and regression inputs (CTest fuzz_replay_<reader>), so every past finding stays fixed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <zlib.h>

#include "auxl/auxl.hpp"
#include "auxl/data/cifar.hpp"
#include "auxl/data/idx.hpp"
#include "auxl/data/npy.hpp"

namespace {

// The file each input is written to.  libFuzzer ends its runs through exit(), which runs this
// static's destructor: runs by hand leave nothing behind in the temp directory.
const std::filesystem::path& scratch_file() {
    struct scratch {
        std::filesystem::path path;
        ~scratch() {
            std::error_code ignored;
            std::filesystem::remove(path, ignored);
        }
    };
    static const scratch file{std::filesystem::temp_directory_path() /
                              ("auxl_fuzz_" + std::to_string(::getpid()) + ".bin")};
    return file.path;
}

void write_input(const std::uint8_t* data, std::size_t size) {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
#if defined(AUXL_FUZZ_READER_CHECKPOINT)
    // A mutated checkpoint nearly always fails its CRC-32 first; rewrite the trailing checksum so
    // the fuzzer reaches the parser behind it (the mismatch itself is covered by unit tests).
    std::vector<std::uint8_t> bytes(data, data + size);
    if (size >= 4) {
        const auto crc = static_cast<std::uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(size - 4)));
        for (int i = 0; i < 4; ++i) bytes[size - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
    }
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(size));
#else
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
#endif
}

#if defined(AUXL_FUZZ_READER_CHECKPOINT)
using trunk = auxl::nn::sequential<auxl::nn::input<4>, auxl::nn::dense<3>, auxl::nn::relu>;
using model = auxl::nn::multi_task<trunk, auxl::nn::head<auxl::nn::dense<2>>, auxl::nn::head<auxl::nn::dense<4>>>;
using fuzz_trainer = auxl::trainer<model, auxl::gen::human_hierarchy, auxl::weight::cosine, auxl::optim::adam<float>>;
auxl::data::hierarchy fuzz_hierarchy() { return auxl::data::hierarchy("fuzz", {0, 0, 1, 1}); }
#endif

void read_once() {
#if defined(AUXL_FUZZ_READER_IDX)
    (void)auxl::data::read_idx(scratch_file());
#elif defined(AUXL_FUZZ_READER_NPY)
    (void)auxl::data::load_npy<float>(scratch_file());
    (void)auxl::data::load_npy<std::uint8_t>(scratch_file());
#elif defined(AUXL_FUZZ_READER_CIFAR10)
    (void)auxl::data::read_cifar10_batch(scratch_file());
#elif defined(AUXL_FUZZ_READER_CIFAR100)
    std::vector<std::int32_t> coarse;
    (void)auxl::data::read_cifar100_file(scratch_file(), &coarse);
#elif defined(AUXL_FUZZ_READER_CHECKPOINT)
    static fuzz_trainer t(fuzz_hierarchy(), {}, {}, auxl::optim::adam<float>({.learning_rate = 1e-3}), {.seed = 1, .batch_size = 4});
    t.load_checkpoint(scratch_file());
#else
#error "define AUXL_FUZZ_READER_<IDX|NPY|CIFAR10|CIFAR100|CHECKPOINT>"
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    write_input(data, size);
    try {
        read_once();
    } catch (const auxl::error&) {
        // a clear refusal is the expected outcome for a bad file
    }
    return 0;
}

#ifdef AUXL_FUZZ_REPLAY
// Replays every file in the directories given on the command line; exits non-zero (or crashes)
// on a finding.
int main(int argc, char** argv) {
    std::size_t files = 0;
    for (int a = 1; a < argc; ++a) {
        if (!std::filesystem::exists(argv[a])) continue;
        for (const auto& entry : std::filesystem::directory_iterator(argv[a])) {
            if (!entry.is_regular_file()) continue;
            std::ifstream in(entry.path(), std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
            ++files;
        }
    }
    std::printf("replayed %zu inputs\n", files);
    return files > 0 ? 0 : 1;
}
#endif
