// auxl_kill_resume — the program tests/resume/kill_resume.sh kills and resumes.
//
//   auxl_kill_resume --method NAME --dir DIR --mode straight|run|resume [--epochs E] [--sleep-ms M]
//
// straight: trains E epochs uninterrupted and writes DIR/straight.params;
// run:      trains with a checkpoint (DIR/run.ckpt, written atomically) after every step and a
//           pause of M ms per step, so that a SIGKILL lands at an arbitrary point;
// resume:   loads DIR/run.ckpt if there is one, finishes the E epochs and writes DIR/resumed.params.
// One OpenBLAS thread, fixed seeds: the two .params files must be identical byte for byte.
// Methods: every name of train::method_names() and train::dtg_method_names().
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <variant>

#include "auxl/auxl.hpp"
#include "auxl/train/runtime_select.hpp"
#include "../synthetic.hpp"

extern "C" void openblas_set_num_threads(int);

using namespace auxl;

namespace {
using trunk = nn::sequential<nn::input<20>, nn::dense<32>, nn::relu, nn::dropout<1, 10>, nn::dense<16>, nn::relu>;
using model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using dtg_model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;

struct checkpoint_each_step {
    using wants_trainer = void;  // its hook takes the trainer
    std::filesystem::path path;
    int sleep_ms = 0;
    template <class Trainer>
    void on_step_end(const train::step_report&, Trainer& t) {
        t.save_checkpoint(path);
        if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    }
};

template <class Variant>
int drive(Variant& v, const std::string& mode, const std::filesystem::path& dir, std::size_t epochs, int sleep_ms) {
    const auto data = testing::blobs(240, 5);
    return std::visit(
        [&](auto& t) {
            typename std::remove_reference_t<decltype(t)>::fit_options fit;
            fit.epochs = epochs;
            if (mode == "run") {
                t.fit(data, fit, checkpoint_each_step{dir / "run.ckpt", sleep_ms});
                return 0;
            }
            if (mode == "resume" && std::filesystem::exists(dir / "run.ckpt")) t.load_checkpoint(dir / "run.ckpt");
            const std::size_t resumed_at = t.steps_done();
            t.fit(data, fit);
            if (mode == "resume") std::printf("resumed at step %zu of %zu\n", resumed_at, t.steps_done());
            const auto out = dir / (mode == "straight" ? "straight.params" : "resumed.params");
            std::ofstream f(out, std::ios::binary);
            const auto& p = t.model().parameters();
            f.write(reinterpret_cast<const char*>(p.data()), std::streamsize(p.size() * sizeof(float)));
            std::printf("%s: %zu steps, wrote %s\n", mode.c_str(), t.steps_done(), out.c_str());
            return f ? 0 : 1;
        },
        v);
}
}  // namespace

int main(int argc, char** argv) {
    std::string method = "human+cosine", mode, dir;
    std::size_t epochs = 3;
    int sleep_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--method") method = v;
        else if (k == "--mode") mode = v;
        else if (k == "--dir") dir = v;
        else if (k == "--epochs") epochs = std::size_t(std::atol(v.c_str()));
        else if (k == "--sleep-ms") sleep_ms = std::atoi(v.c_str());
    }
    if (dir.empty() || (mode != "straight" && mode != "run" && mode != "resume")) {
        std::fprintf(stderr, "usage: auxl_kill_resume --method NAME --dir DIR --mode straight|run|resume\n");
        return 2;
    }
    try {
        openblas_set_num_threads(1);
        const auto h = data::hierarchy::fashion_parity2();
        trainer_options o;
        o.seed = 11;
        o.batch_size = 16;
        o.dev_fraction = 0.1;
        const optim::sgd<float> sgd({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
        const auto dtg_names = train::dtg_method_names();
        if (std::find(dtg_names.begin(), dtg_names.end(), method) != dtg_names.end()) {
            auto t = train::make_dtg_trainer<dtg_model>(method, h, sgd, o);
            return drive(*t, mode, dir, epochs, sleep_ms);
        }
        auto t = train::make_trainer<model>(method, h, sgd, o);
        return drive(*t, mode, dir, epochs, sleep_ms);
    } catch (const auxl::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
