// auxl's half of benchmarks/float32_conv.py: how far float32 convolution weight gradients sit from
// float64 ones computed from the same parameters and inputs, on c32(ReLU, pool) -> c64(ReLU, pool).
//   float32_conv_auxl SEED FIRST_ROW OUT_DIR
// Initialises the network as the study does (torch.nn's scheme, seed SEED), takes 128 Fashion-MNIST
// training images from FIRST_ROW, runs forward and backward in float and in double with the same
// output gradient (uniform +-1e-3, fixed), prints the relative L2 error of each weight gradient,
// and writes the parameters, images and output gradient (float32, raw) for the PyTorch side.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/data/fashion_mnist.hpp"

using namespace auxl;
using spec = nn::sequential<nn::input<1, 28, 28>, nn::conv2d<32, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                            nn::conv2d<64, 3, 1, 1, nn::relu, nn::max_pool2d<2>>>;

template <class V>
void write_raw(const std::filesystem::path& p, const V* data, std::size_t n) {
    io::write_atomically(p, [&](std::ostream& out) { out.write(reinterpret_cast<const char*>(data), std::streamsize(n * sizeof(V))); });
}

int main(int argc, char** argv) {
    try {
        if (argc != 4) raise<config_error>("usage: float32_conv_auxl SEED FIRST_ROW OUT_DIR");
        const std::uint64_t seed = std::strtoull(argv[1], nullptr, 10);
        const std::size_t first = std::strtoull(argv[2], nullptr, 10), batch = 128;
        const std::filesystem::path out = argv[3];
        set_gemm_threads(1);
        const auto fm = data::load_fashion_mnist({});
        if (first + batch > fm.train.size()) raise<config_error>("float32_conv_auxl: FIRST_ROW + 128 exceeds the training set");
        nn::basic_network<float, spec> single(batch);
        nn::basic_network<double, spec> twice(batch);
        rng init(seed, "init");
        single.init(init, nn::init_scheme::pytorch_default);
        std::copy(single.parameters().begin(), single.parameters().end(), twice.parameters().begin());  // exact
        const std::size_t in = batch * 784, outputs = batch * decltype(single)::output_size;
        std::vector<float> x(fm.train.inputs.data() + first * 784, fm.train.inputs.data() + first * 784 + in);
        const std::vector<double> x64(x.begin(), x.end());
        std::vector<float> dy(outputs);
        rng draw(7, "output gradient");
        for (auto& v : dy) v = float(2 * draw.uniform() - 1) * 1e-3f;
        const std::vector<double> dy64(dy.begin(), dy.end());
        single.forward(x.data(), batch);
        twice.forward(x64.data(), batch);
        auto g = single.make_arena();
        auto g64 = twice.make_arena();
        single.backward(dy.data(), g);
        twice.backward(dy64.data(), g64);
        std::printf("auxl");
        for (const auto& s : single.layout().segments()) {
            if (s.name.find("weight") == std::string::npos) continue;
            double diff = 0, norm = 0;
            for (std::size_t i = s.offset; i < s.offset + s.size; ++i) {
                diff += (g[i] - g64[i]) * (g[i] - g64[i]);
                norm += g64[i] * g64[i];
            }
            std::printf(" %s %.3e", s.name.c_str(), std::sqrt(diff / norm));
        }
        std::printf("\n");
        std::filesystem::create_directories(out);
        write_raw(out / "parameters.f32", single.parameters().data(), single.parameters().size());
        write_raw(out / "images.f32", x.data(), x.size());
        write_raw(out / "output_gradient.f32", dy.data(), dy.size());
        return 0;
    } catch (const auxl::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
