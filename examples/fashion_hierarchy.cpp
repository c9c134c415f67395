// fashion_hierarchy — the auxl demo: auxiliary learning on Fashion-MNIST.
//
// The primary task is a coarse grouping of the 10 Fashion-MNIST classes (half2: classes 0-4 vs
// 5-9, the default; parity2: even vs odd; super5: the 5 semantic superclasses); the human
// auxiliary task is the fine class.  For every seed, each method (STL, human+equal,
// human+cosine, ...) trains from the same initialisation with the same batch order on a
// stratified subset of the training set, and is scored on the full 10,000-image test set.
// Prints mean ± std of the primary test accuracy, the difference to STL paired by seed ± its
// standard error, and the time per epoch and per step; writes one CSV per run and a summary CSV.
// While the command runs, partial_runs_<hierarchy>_<model>.csv holds the test accuracy of every
// run finished so far, so a command that never finishes still leaves its finished runs' results.
//
// Run with --help for the flags.  Exit code 77 (skip) when the data set is missing, unless
// AUXL_REQUIRE_DATA is set (CI), where that is a failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/data/fashion_mnist.hpp"
#include "auxl/data/normalize.hpp"
#include "auxl/data/subset.hpp"
#include "auxl/train/callbacks.hpp"
#include "auxl/train/runtime_select.hpp"

const char* auxl_build_id();  // generated at build time (examples/CMakeLists.txt, cmake/write_build_id.cmake)


using namespace auxl;

namespace {

struct config {
    std::string hierarchy = "half2";
    std::size_t train_size = 1000;
    std::size_t epochs = 20;
    std::size_t seeds = 5;
    std::uint64_t first_seed = 1;
    std::string model = "mlp";
    // One composition per generator and rule family, so the default run takes minutes; --methods
    // all runs every composition (every generator with every rule).
    // stl@dev is STL on the dev-set methods' 95 % training part: their fair baseline.
    std::vector<std::string> methods = {"stl", "stl@dev", "human+equal", "human+cosine", "maxl+equal", "rl_aux_w+equal", "dtg"};
    bool unhelpful = false;         // add the unhelpful-manual-task scenario: random+equal, dtg+random
    std::size_t dtg_upper_every = 1;
    bool dtg_follow_schedule = false;  // DTG's generator rates anneal with the network's
    double dtg_generator_lr = 1e-3;    // DTG's Adam rate on its generators (dtg_options::generator_lr)
    double dtg_entropy_weight = 0.2;   // λ_l of DTG's batch-entropy regulariser (dtg_options::entropy_weight)
    meta::hvp_method hvp = meta::hvp_method::automatic;  // module-aware's and DTG's second-order products
    double hvp_step = 0.01;  // their perturbation with central differences (meta/hvp.hpp)
    double aux_weight = 1.0;
    double lr = 0.05;
    std::size_t batch = 128;
    int threads = 0;
    std::size_t monitor = 0;  // test examples evaluated after every epoch (0 = default per model)
    std::filesystem::path out = "fashion_hierarchy_runs";
    std::filesystem::path data_dir;
    std::filesystem::path resume_dir;  // empty: no checkpoints (the runs start over if stopped)
    bool accept_code_change = false;   // --resume state of another build of the code: continue it
    double time_limit = -1;            // seconds; < 0: none (needs resume_dir; 0 stops after each step)
    bool progress = false;
    // Defaults follow the PyTorch reference measurement of the issue (torch.nn default init, pixels
    // in [0, 1]); with standardised inputs and He init the STL baseline is stronger and the
    // human auxiliary task's gain on half2 vanishes (README, "The demo": its table's --standardize row).
    nn::init_scheme init = nn::init_scheme::pytorch_default;
    bool standardize = false;
    double focal = 0.0;  // the same loss for every method, so rows differ only in their auxiliary task
    gen::maxl_schedule maxl_schedule = gen::maxl_schedule::per_step;
    gen::rl_schedule rl_schedule = gen::rl_schedule::single_pass;
};

void usage() {
    std::cout << "usage: fashion_hierarchy [flags]\n"
                 "  --hierarchy NAME   half2 (default) | parity2 | super5\n"
                 "  --train-size N     stratified training examples (default 1000)\n"
                 "  --epochs N         (default 20)\n"
                 "  --seeds N          seeds per method (default 5); --seed S first seed (default 1)\n"
                 "  --model NAME       mlp (784-256-128, default) | cnn (conv32-pool-conv64-pool-dense128)\n"
                 "  --methods LIST     comma-separated, or 'all'; default: stl, stl@dev, human+equal,\n"
                 "                     human+cosine, maxl+equal, rl_aux_w+equal, dtg (DTG-style, manual task =\n"
                 "                     human labels).  Names: stl; stl@dev (STL on the dev-set methods'\n"
                 "                     training part); human or maxl with +equal, +cosine, +cosine-gate,\n"
                 "                     +module_aware, +transference; rl_aux+equal, rl_aux_w+equal; dtg,\n"
                 "                     random+equal, dtg+random.  'all' runs every one of them.\n"
                 "  --unhelpful        add the unhelpful-manual-task scenario: the manual auxiliary task is a\n"
                 "                     fixed random label per example; compares random+equal and dtg+random\n"
                 "  --dtg-upper-every N  DTG's lower steps per upper step (default 1: strict alternation)\n"
                 "  --dtg-follow-schedule  DTG's generator rates anneal with the network's cosine schedule\n"
                 "  --dtg-generator-lr R   DTG's Adam rate on its generators (default 1e-3)\n"
                 "  --dtg-entropy-weight L weight of DTG's batch-entropy term on the generated labels (default 0.2)\n"
                 "                     (default: constant, as in the reference code)\n"
                 "  --hvp exact|central  module-aware's and DTG's second-order products: exact (the default,\n"
                 "                     forward-over-reverse, as PyTorch's double backward) or central differences\n"
                 "                     (the study's runs up to 2026-12-05)\n"
                 "  --hvp-step S       norm of the perturbation with --hvp central (default 0.01)\n"
                 "                     MAXL and RL-AUX use 10 auxiliary classes: psi = 10 / primary classes.\n"
                 "                     RL-AUX, DTG and module_aware hold out 5% of the training subset as a dev\n"
                 "                     set; their rows also show the difference to stl@dev when it ran.\n"
                 "  --focal G          focal gamma of every method's losses (default 0; MAXL's code uses 2)\n"
                 "  --maxl-schedule S  step (meta-update every batch, default) | epoch (a meta pass per epoch)\n"
                 "  --rl-schedule S    single (train on sampled actions, default) | two-pass (paper: exploration\n"
                 "                     pass, then a greedy pass)\n"
                 "  --aux-weight W     auxiliary weight lambda (default 1)\n"
                 "  --lr LR            initial learning rate, cosine-annealed to 0 (default 0.05)\n"
                 "  --batch N          batch size (default 128)\n"
                 "  --threads N        GEMM threads (default: the backend's own choice)\n"
                 "  --monitor N        test examples (stratified) evaluated after each epoch for the CSV (default\n"
                 "                     2000); the final score always uses the full test set\n"
                 "  --out DIR          where CSV files go (default fashion_hierarchy_runs): a per-epoch log per\n"
                 "                     run; partial_runs_<h>_<model>.csv (test accuracies of the runs finished so\n"
                 "                     far) while the command runs; runs_ and summary_<h>_<model>.csv at the end\n"
                 "  --data DIR         Fashion-MNIST directory (default $AUXL_FASHION_MNIST_DIR or\n"
                 "                     /usr/share/datasets/fashion-mnist)\n"
                 "  --init SCHEME      pytorch (default: torch.nn's weights and biases U(+-1/sqrt(fan_in))) |\n"
                 "                     he-uniform | he-normal | xavier-uniform | xavier-normal\n"
                 "  --standardize      standardise inputs (mean 0, std 1 from the training subset) instead of\n"
                 "                     using pixels in [0, 1]\n"
                 "  --progress         show per-epoch progress lines\n"
                 "  --resume DIR       keep the runs' state in DIR: a checkpoint after every epoch and a record of\n"
                 "                     each finished run.  The same command again (same DIR) skips the finished\n"
                 "                     runs and continues an interrupted one where its last checkpoint stands, bit\n"
                 "                     for bit; flags that change the numbers must be the same (DIR/config.txt),\n"
                 "                     and so must the code: DIR records the build's id (version, a hash of the\n"
                 "                     headers and of this program's source, compiler, build type)\n"
                 "  --accept-code-change  continue --resume state that another build of the code made (its\n"
                 "                     runs then mix two codes' numbers; DIR/config.txt lists every build)\n"
                 "  --time-limit S     stop after S seconds of wall time (needs --resume): the running run saves a\n"
                 "                     checkpoint where it stands and the program exits with code 75; the same\n"
                 "                     command continues it (0: after every step)\n";
}

config parse(int argc, char** argv) {
    config c;
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) raise<config_error>("fashion_hierarchy: ", argv[i], " needs a value");
        return argv[++i];
    };
    auto number = [&](int& i) {
        const std::string flag = argv[i], v = value(i);
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end) raise<config_error>("fashion_hierarchy: ", flag, " needs a number, got '", v, "'");
        return x;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        } else if (a == "--hierarchy") c.hierarchy = value(i);
        else if (a == "--train-size") c.train_size = std::size_t(number(i));
        else if (a == "--epochs") c.epochs = std::size_t(number(i));
        else if (a == "--seeds") c.seeds = std::size_t(number(i));
        else if (a == "--seed") c.first_seed = std::uint64_t(number(i));
        else if (a == "--model") c.model = value(i);
        else if (a == "--methods") {
            c.methods.clear();
            std::stringstream list(value(i));
            for (std::string m; std::getline(list, m, ',');) {
                if (m == "all") {
                    for (const auto& n : train::method_names()) {
                        c.methods.push_back(n);
                        if (n == "stl") c.methods.push_back("stl@dev");
                    }
                    for (const auto& n : train::dtg_method_names()) c.methods.push_back(n);
                } else if (!m.empty()) {
                    c.methods.push_back(m);
                }
            }
        } else if (a == "--aux-weight") c.aux_weight = number(i);
        else if (a == "--lr") c.lr = number(i);
        else if (a == "--batch") c.batch = std::size_t(number(i));
        else if (a == "--threads") c.threads = int(number(i));
        else if (a == "--monitor") c.monitor = std::size_t(number(i));
        else if (a == "--out") c.out = value(i);
        else if (a == "--data") c.data_dir = value(i);
        else if (a == "--progress") c.progress = true;
        else if (a == "--resume") c.resume_dir = value(i);
        else if (a == "--accept-code-change") c.accept_code_change = true;
        else if (a == "--time-limit") {
            c.time_limit = number(i);
            if (!(c.time_limit >= 0)) raise<config_error>("fashion_hierarchy: --time-limit must be a number of seconds >= 0");
        }
        else if (a == "--standardize") c.standardize = true;
        else if (a == "--focal") c.focal = number(i);
        else if (a == "--unhelpful") c.unhelpful = true;
        else if (a == "--dtg-upper-every") c.dtg_upper_every = std::size_t(number(i));
        else if (a == "--dtg-follow-schedule") c.dtg_follow_schedule = true;
        else if (a == "--dtg-generator-lr") c.dtg_generator_lr = number(i);
        else if (a == "--dtg-entropy-weight") c.dtg_entropy_weight = number(i);
        else if (a == "--hvp-step") c.hvp_step = number(i);
        else if (a == "--hvp") {
            const std::string v = value(i);
            if (v == "exact") c.hvp = meta::hvp_method::exact;
            else if (v == "central") c.hvp = meta::hvp_method::central_difference;
            else raise<config_error>("fashion_hierarchy: --hvp takes exact or central, not '", v, "'");
        }
        else if (a == "--rl-schedule") {
            const std::string v = value(i);
            if (v == "single") c.rl_schedule = gen::rl_schedule::single_pass;
            else if (v == "two-pass") c.rl_schedule = gen::rl_schedule::two_pass;
            else raise<config_error>("fashion_hierarchy: --rl-schedule must be single or two-pass");
        }
        else if (a == "--maxl-schedule") {
            const std::string v = value(i);
            if (v == "step") c.maxl_schedule = gen::maxl_schedule::per_step;
            else if (v == "epoch") c.maxl_schedule = gen::maxl_schedule::per_epoch;
            else raise<config_error>("fashion_hierarchy: --maxl-schedule must be step or epoch");
        }
        else if (a == "--init") {
            const std::string v = value(i);
            if (v == "he-uniform") c.init = nn::init_scheme::he_uniform;
            else if (v == "he-normal") c.init = nn::init_scheme::he_normal;
            else if (v == "xavier-uniform") c.init = nn::init_scheme::xavier_uniform;
            else if (v == "xavier-normal") c.init = nn::init_scheme::xavier_normal;
            else if (v == "pytorch") c.init = nn::init_scheme::pytorch_default;
            else raise<config_error>("fashion_hierarchy: --init must be he-uniform, he-normal, xavier-uniform, xavier-normal or pytorch");
        }
        else raise<config_error>("fashion_hierarchy: unknown flag '", a, "' (try --help)");
    }
    if (c.model != "mlp" && c.model != "cnn") raise<config_error>("fashion_hierarchy: --model must be mlp or cnn");
    if (c.seeds == 0 || c.epochs == 0 || c.train_size == 0) raise<config_error>("fashion_hierarchy: seeds, epochs and train size must be positive");
    if (std::find(c.methods.begin(), c.methods.end(), "stl") == c.methods.end()) c.methods.insert(c.methods.begin(), "stl");
    if (c.unhelpful) {
        for (const char* m : {"human+equal", "dtg", "random+equal", "dtg+random"})
            if (std::find(c.methods.begin(), c.methods.end(), m) == c.methods.end()) c.methods.push_back(m);
    }
    if (c.dtg_upper_every == 0) raise<config_error>("fashion_hierarchy: --dtg-upper-every must be positive");
    if (!(c.dtg_generator_lr > 0)) raise<config_error>("fashion_hierarchy: --dtg-generator-lr must be positive");
    if (!(c.dtg_entropy_weight >= 0)) raise<config_error>("fashion_hierarchy: --dtg-entropy-weight must be >= 0");
    if (!(c.hvp_step > 0)) raise<config_error>("fashion_hierarchy: --hvp-step must be positive");
    if (c.time_limit >= 0 && c.resume_dir.empty()) {
        raise<config_error>("fashion_hierarchy: --time-limit needs --resume DIR (where the stopped run's checkpoint goes)");
    }
    return c;
}

using mlp_trunk = nn::sequential<nn::input<1, 28, 28>, nn::flatten, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
// c32-p-c64-p-d128; each convolution applies its ReLU and pooling one sample at a time (bitwise the
// numbers of separate nn::relu and nn::max_pool2d layers; nn/fused_pool.hpp).
using cnn_trunk = nn::sequential<nn::input<1, 28, 28>, nn::conv2d<32, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                                 nn::conv2d<64, 3, 1, 1, nn::relu, nn::max_pool2d<2>>, nn::flatten, nn::dense<128>, nn::relu>;

struct run_result {
    bool diverged = false;
    bool dev_split = false;  // trained on the 95 % part (a dev-set method, or stl@dev)
    std::string message;
    double accuracy = 0, seconds_per_epoch = 0, ms_per_step = 0;
    std::string diagnostics;  // last epoch's rule / generator statistics
};

// --- resuming (--resume DIR) ------------------------------------------------------------------
// DIR holds one configuration's runs: config.txt (the flags that change the numbers, and the GEMM
// backend, whose kernels round differently), <run>.ckpt (the trainer after its last finished
// epoch, or where --time-limit stopped it) and <run>.done (a finished run's result).  config.txt
// ends with a "code" line per build that ran in DIR (auxl_build_id(), cmake/write_build_id.cmake):
// a build continues DIR only if it made the last one, or with --accept-code-change, which adds its
// own — so a study's runs never mix two codes' numbers silently.

/// Thrown when --time-limit stops a run; main() exits with code 75 (EX_TEMPFAIL: try again).
struct time_limit_reached {
    std::string where;
};

std::string numerics_config(const config& c) {
    std::ostringstream o;
    o << std::setprecision(17) << "fashion_hierarchy resume state, version 1\n"
      << "hierarchy " << c.hierarchy << "\nmodel " << c.model << "\ntrain_size " << c.train_size << "\nepochs " << c.epochs
      << "\nlr " << c.lr << "\nbatch " << c.batch << "\naux_weight " << c.aux_weight << "\nfocal " << c.focal << "\ninit "
      << int(c.init) << "\nstandardize " << c.standardize << "\nhvp " << (c.hvp == meta::hvp_method::central_difference ? "central" : "exact") << "\nhvp_step " << c.hvp_step
      << "\ndtg_upper_every "
      << c.dtg_upper_every << "\ndtg_follow_schedule " << c.dtg_follow_schedule << "\nmaxl_schedule " << int(c.maxl_schedule)
      << "\nrl_schedule " << int(c.rl_schedule) << "\nmonitor " << c.monitor << "\ngemm " << gemm_backend() << ", "
      << gemm_threads() << " threads\n";
    // Written only when changed, so resume directories made before these options existed still match.
    if (c.dtg_generator_lr != 1e-3) o << "dtg_generator_lr " << c.dtg_generator_lr << "\n";
    if (c.dtg_entropy_weight != 0.2) o << "dtg_entropy_weight " << c.dtg_entropy_weight << "\n";
    return o.str();
}

// The runs CSV: one row (method, seed, test accuracy in %) per finished run that did not
// diverge, method by method in the command's order.  The same rows whether every run of the
// command has finished (runs_<h>_<model>.csv) or only some (partial_runs_<h>_<model>.csv).
using run_results = std::map<std::string, std::vector<run_result>>;

std::string runs_csv_text(const config& c, const run_results& results) {
    std::ostringstream o;
    o << "method,seed,accuracy\n";
    for (const auto& method : c.methods) {
        const auto found = results.find(method);
        if (found == results.end()) continue;
        for (std::size_t s = 0; s < found->second.size(); ++s)
            if (!found->second[s].diverged) o << method << ',' << c.first_seed + s << ',' << 100 * found->second[s].accuracy << '\n';
    }
    return o.str();
}

std::filesystem::path partial_runs_path(const config& c) {
    return c.out / ("partial_runs_" + c.hierarchy + "_" + c.model + ".csv");
}

std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) raise<io_error>("fashion_hierarchy: cannot read ", p.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The "code <build id>" lines of a config.txt, in order, and the text without them.
struct recorded_config {
    std::string numerics;
    std::vector<std::string> codes;
};

recorded_config split_code_lines(const std::string& text) {
    recorded_config r;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("code ", 0) == 0) r.codes.push_back(line.substr(5));
        else r.numerics += line + "\n";
    }
    return r;
}

/// The OpenBLAS kernel named on a config's "gemm" line ("..., kernel SkylakeX, 1 threads"), or ""
/// for a backend without one (Eigen).
std::string gemm_kernel_of(const std::string& numerics) {
    std::istringstream in(numerics);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("gemm ", 0) != 0) continue;
        const auto at = line.find(", kernel ");
        if (at == std::string::npos) return "";
        const auto from = at + 9;
        return line.substr(from, line.find(',', from) - from);
    }
    return "";
}

/// When two configs differ only in OpenBLAS's kernel (the usual case after moving to another
/// machine), says so and how to continue: the kernels round differently, so the runs must go on
/// with the kernel they were started with, which OPENBLAS_CORETYPE selects.
std::string kernel_change_hint(const std::string& theirs, const std::string& mine) {
    const std::string their_kernel = gemm_kernel_of(theirs), my_kernel = gemm_kernel_of(mine);
    if (their_kernel.empty() || my_kernel.empty() || their_kernel == my_kernel) return "";
    const auto without_kernel_name = [](std::string text, const std::string& kernel) {
        for (auto at = text.find(kernel); at != std::string::npos; at = text.find(kernel, at)) text.erase(at, kernel.size());
        return text;
    };
    if (without_kernel_name(theirs, their_kernel) != without_kernel_name(mine, my_kernel)) return "";
    return "\nonly OpenBLAS's kernel differs (its runs: " + their_kernel + ", this process: " + my_kernel +
           "); kernels round differently, so a run must finish on the kernel it began with: to continue these runs here, "
           "run this command with OPENBLAS_CORETYPE=" + their_kernel + " (on a CPU with the instructions that kernel needs)";
}

/// Creates DIR/config.txt, or refuses a DIR whose runs were made with other numbers or, unless
/// --accept-code-change, by another build of the code.
void claim_resume_dir(const config& c) {
    std::filesystem::create_directories(c.resume_dir);
    const auto path = c.resume_dir / "config.txt";
    const std::string mine = numerics_config(c);
    const std::string code = auxl_build_id();
    if (!std::filesystem::exists(path)) {
        io::write_atomically(path, [&](std::ostream& out) { out << mine << "code " << code << "\n"; });
        return;
    }
    const auto theirs = split_code_lines(read_text(path));
    if (theirs.numerics != mine) {
        raise<config_error>("fashion_hierarchy: --resume ", c.resume_dir.string(), " holds runs of another configuration;\n",
                            "its config.txt:\n", theirs.numerics, "this command:\n", mine,
                            "use another directory, or the flags (and GEMM threads and kernel) it was made with",
                            kernel_change_hint(theirs.numerics, mine));
    }
    if (!theirs.codes.empty() && theirs.codes.back() == code) return;
    const std::string last = theirs.codes.empty() ? "(not recorded: made before builds were recorded)" : theirs.codes.back();
    if (!c.accept_code_change) {
        raise<config_error>("fashion_hierarchy: --resume ", c.resume_dir.string(), " holds runs made by another build of the code;\n",
                            "its runs: ", last, "\nthis program: ", code, "\n",
                            "continue them with the build that made them, use another directory, or pass "
                            "--accept-code-change to let this build continue them (their numbers then mix two codes)");
    }
    io::write_atomically(path, [&](std::ostream& out) {
        out << mine;
        for (const auto& earlier : theirs.codes) out << "code " << earlier << "\n";
        out << "code " << code << "\n";
    });
    std::printf("--accept-code-change: continuing runs made by %s with %s\n", last.c_str(), code.c_str());
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    return text;
}

void write_record(const std::filesystem::path& path, const run_result& r) {
    io::write_atomically(path, [&](std::ostream& out) {
        out << std::setprecision(17) << "fashion_hierarchy run record, version 1\n"
            << "accuracy " << r.accuracy << "\nseconds_per_epoch " << r.seconds_per_epoch << "\nms_per_step " << r.ms_per_step
            << "\ndev_split " << r.dev_split << "\ndiverged " << r.diverged << "\nmessage " << one_line(r.message)
            << "\ndiagnostics " << one_line(r.diagnostics) << "\n";
    });
}

run_result read_record(const std::filesystem::path& path) {
    std::istringstream in(read_text(path));
    std::string line;
    std::map<std::string, std::string> fields;
    if (!std::getline(in, line) || line != "fashion_hierarchy run record, version 1") {
        raise<io_error>("fashion_hierarchy: ", path.string(), " is not a run record (first line '", line, "')");
    }
    while (std::getline(in, line)) {
        const auto space = line.find(' ');
        fields[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
    }
    auto field = [&](const char* name) -> const std::string& {
        const auto it = fields.find(name);
        if (it == fields.end()) raise<io_error>("fashion_hierarchy: run record ", path.string(), " has no ", name, " line (truncated?)");
        return it->second;
    };
    auto number = [&](const char* name) {
        const std::string& v = field(name);
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end || !std::isfinite(x)) raise<io_error>("fashion_hierarchy: run record ", path.string(), ": ", name, " '", v, "' is not a number");
        return x;
    };
    auto flag = [&](const char* name) {
        const std::string& v = field(name);
        if (v != "0" && v != "1") raise<io_error>("fashion_hierarchy: run record ", path.string(), ": ", name, " '", v, "' is not 0 or 1");
        return v == "1";
    };
    run_result r;
    r.accuracy = number("accuracy");
    r.seconds_per_epoch = number("seconds_per_epoch");
    r.ms_per_step = number("ms_per_step");
    r.dev_split = flag("dev_split");
    r.diverged = flag("diverged");
    r.message = field("message");
    r.diagnostics = field("diagnostics");
    return r;
}

/// fit() callback of a resumable run: a checkpoint after every epoch, and the --time-limit clock.
class resume_callback {
public:
    using wants_trainer = void;
    resume_callback(std::filesystem::path checkpoint, std::chrono::steady_clock::time_point deadline, bool limited)
        : checkpoint_(std::move(checkpoint)), deadline_(deadline), limited_(limited) {}

    template <class Trainer>
    bool on_step_end(const train::step_report&, Trainer&) {
        reached_ = limited_ && std::chrono::steady_clock::now() >= deadline_;
        return reached_;
    }
    template <class Trainer>
    void on_epoch_end(const train::epoch_report&, Trainer& t) { t.save_checkpoint(checkpoint_); }
    bool reached() const { return reached_; }

private:
    std::filesystem::path checkpoint_;
    std::chrono::steady_clock::time_point deadline_;
    bool limited_;
    bool reached_ = false;
};

template <class Trunk, std::size_t Primary>
run_results run_all(const config& c, const data::hierarchy& h, const data::dataset<float>& full_train,
                    const data::dataset<float>& test) {
    using model_type = nn::multi_task<Trunk, nn::head<nn::dense<Primary>>, nn::head<nn::dense<10>>>;
    // DTG's methods need a head for the manual task and one for the generated task; the trunk and
    // the first two heads are initialised exactly as in model_type (the extra head comes last).
    using dtg_model_type = nn::multi_task<Trunk, nn::head<nn::dense<Primary>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
    const auto dtg_methods = train::dtg_method_names();
    run_results results;
    const std::size_t monitor = c.monitor ? std::min(c.monitor, test.size()) : std::min<std::size_t>(2000, test.size());
    const bool resumable = !c.resume_dir.empty();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                                 std::chrono::duration<double>(std::max(c.time_limit, 0.0)));
    for (std::size_t s = 0; s < c.seeds; ++s) {
        const std::uint64_t seed = c.first_seed + s;
        rng subset_stream(seed, "subset");
        auto train_set = data::stratified_subset(full_train, c.train_size, subset_stream);
        auto test_set = test;
        const auto standardize = data::standardizer::fit(train_set);
        if (c.standardize) {
            standardize.apply(train_set);
            standardize.apply(test_set);
        }
        rng monitor_stream(seed, "monitor");
        const auto monitor_set = monitor == test_set.size() ? test_set : data::stratified_subset(test_set, monitor, monitor_stream);

        for (const auto& method : c.methods) {
            const std::string run_name = h.name() + "_" + c.model + "_" + method + "_seed" + std::to_string(seed);
            const auto record = c.resume_dir / (run_name + ".done");
            if (resumable && std::filesystem::exists(record)) {
                const auto r = read_record(record);
                if (r.diverged) std::cout << "  " << method << " seed " << seed << " diverged: " << r.message;
                else std::printf("  seed %-4llu %-20s test accuracy %.2f%%  (%.3f s/epoch)", static_cast<unsigned long long>(seed),
                                 method.c_str(), 100 * r.accuracy, r.seconds_per_epoch);
                std::printf("  [finished earlier: %s]\n", record.filename().c_str());
                results[method].push_back(r);
                io::write_atomically(partial_runs_path(c), [&](std::ostream& out) { out << runs_csv_text(c, results); });
                continue;
            }
            trainer_options options;
            options.seed = seed;  // same initialisation and batch order for every method
            options.batch_size = c.batch;
            options.schedule = optim::cosine_lr{c.epochs, 0.0};
            options.init = c.init;
            options.focal_gamma = c.focal;
            gen::maxl_options maxl;
            maxl.schedule = c.maxl_schedule;
            gen::rl_aux_options rl;
            rl.schedule = c.rl_schedule;
            const optim::sgd<float> sgd({.learning_rate = c.lr, .momentum = 0.9, .weight_decay = 5e-4});
            gen::dtg_options dtg;
            dtg.upper_every = c.dtg_upper_every;
            dtg.follow_network_schedule = c.dtg_follow_schedule;
            dtg.generator_lr = c.dtg_generator_lr;
            dtg.entropy_weight = c.dtg_entropy_weight;
            dtg.hvp_step = c.hvp_step;
            dtg.hvp = c.hvp;
            weight::module_aware_options module_aware;
            module_aware.hvp_step = c.hvp_step;
            module_aware.hvp = c.hvp;
            run_result r;
            // stl@dev: STL on exactly the part the dev-set methods train on (same seed, same split).
            const bool on_dev_part = method == "stl@dev";
            const data::dataset<float> dev_part = on_dev_part ? dev_split(train_set, options).first : data::dataset<float>{};
            auto run = [&](auto& t) {
                using trainer_type = std::remove_reference_t<decltype(t)>;
                typename trainer_type::fit_options fit;
                r.dev_split = on_dev_part || trainer_type::needs_dev_set;
                fit.epochs = c.epochs;
                fit.validation = &monitor_set;
                const auto csv = c.out / (run_name + ".csv");
                train::csv_log log(csv, method + "/seed" + std::to_string(seed));
                std::ostringstream sink;
                train::progress show(c.progress ? std::cout : sink, 0);
                const auto checkpoint = c.resume_dir / (run_name + ".ckpt");
                if (resumable && std::filesystem::exists(checkpoint)) {
                    t.load_checkpoint(checkpoint);
                    std::printf("  seed %-4llu %-20s resumed at epoch %zu, step %zu (%s)\n", static_cast<unsigned long long>(seed),
                                method.c_str(), t.epochs_done(), t.steps_done(), checkpoint.filename().c_str());
                }
                resume_callback keep(checkpoint, deadline, c.time_limit >= 0);
                try {
                    const auto report = resumable ? t.fit(on_dev_part ? dev_part : train_set, fit, log, show, keep)
                                                  : t.fit(on_dev_part ? dev_part : train_set, fit, log, show);
                    if (keep.reached() && t.epochs_done() < c.epochs) {
                        t.save_checkpoint(checkpoint);  // mid-epoch: the trainer resumes inside the epoch
                        throw time_limit_reached{run_name + " at epoch " + std::to_string(t.epochs_done()) + ", step " +
                                                 std::to_string(t.steps_done())};
                    }
                    r.accuracy = t.evaluate(test_set).primary_accuracy();
                    std::ostringstream diag;
                    diag << std::setprecision(3);
                    for (std::size_t m = 0; m < report.metric_names.size(); ++m)
                        diag << "  " << report.metric_names[m] << ' ' << report.metric_values[m];
                    r.diagnostics = diag.str();
                    r.seconds_per_epoch = t.training_seconds() / double(c.epochs);
                    r.ms_per_step = 1000.0 * t.training_seconds() / double(t.steps_done());
                } catch (const numeric_error& e) {
                    r.diverged = true;
                    r.message = e.what();
                }
            };
            if (std::find(dtg_methods.begin(), dtg_methods.end(), method) != dtg_methods.end()) {
                std::visit(run, *train::make_dtg_trainer<dtg_model_type>(method, h, sgd, options, c.aux_weight, dtg));
            } else {
                std::visit(run, *train::make_trainer<model_type>(on_dev_part ? "stl" : method, h, sgd, options, c.aux_weight, maxl, rl,
                                                                   module_aware));
            }
            if (r.diverged) {
                std::cout << "  " << method << " seed " << seed << " diverged: " << r.message << "\n";
            } else {
                std::printf("  seed %-4llu %-20s test accuracy %.2f%%  (%.3f s/epoch)%s\n", static_cast<unsigned long long>(seed),
                            method.c_str(), 100 * r.accuracy, r.seconds_per_epoch, r.diagnostics.c_str());
            }
            std::fflush(stdout);
            if (resumable) write_record(record, r);
            results[method].push_back(r);
            io::write_atomically(partial_runs_path(c), [&](std::ostream& out) { out << runs_csv_text(c, results); });
        }
    }
    return results;
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / double(v.size());
}
double sample_std(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const config c = parse(argc, argv);
        if (c.threads > 0) set_gemm_threads(c.threads);
        if (!data::fashion_mnist_available(c.data_dir)) {
            std::cerr << "fashion_hierarchy: Fashion-MNIST not found in " << data::fashion_mnist_dir(c.data_dir).string()
                      << " (install the Debian package dataset-fashion-mnist: scripts/setup.sh does)\n";
            return std::getenv("AUXL_REQUIRE_DATA") ? 1 : 77;
        }
        const auto h = data::hierarchy::by_name(c.hierarchy);
        if (h.fine_classes() != 10) raise<config_error>("fashion_hierarchy: hierarchy ", c.hierarchy, " is not a Fashion-MNIST hierarchy");
        const auto fm = data::load_fashion_mnist(c.data_dir);
        std::filesystem::create_directories(c.out);
        if (!c.resume_dir.empty()) claim_resume_dir(c);

        // When this command began (UTC): scripts/make_results.py orders a setting's directories by it,
        // so that a later rerun of a baseline seed never displaces the first run in the report.
        const std::time_t now = std::time(nullptr);
        char started[32];
        std::strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
        std::printf("started %s\n", started);
        std::printf("Fashion-MNIST: primary = %s (%zu classes), auxiliary = the 10 fine classes; model %s; %zu training "
                    "examples, %zu epochs, %zu seeds; SGD lr %.3g (cosine), momentum 0.9, wd 5e-4, batch %zu, aux weight %.3g, focal gamma %.3g; %s inputs\n",
                    c.hierarchy.c_str(), h.primary_classes(), c.model == "mlp" ? "MLP 784-256-128" : "CNN c32-p-c64-p-d128",
                    c.train_size, c.epochs, c.seeds, c.lr, c.batch, c.aux_weight, c.focal, c.standardize ? "standardised" : "[0, 1]");
        std::printf("GEMM: %s, %d threads; code: %s\n", gemm_backend().c_str(), gemm_threads(), auxl_build_id());
        // The run's record names the DTG variant, so an A/B's two logs differ where the runs did.
        if (std::any_of(c.methods.begin(), c.methods.end(), [](const std::string& m) { return m.rfind("dtg", 0) == 0; })) {
            std::printf("DTG: upper step every %zu lower steps; generator rates %s (Adam %g); batch-entropy weight %g\n",
                        c.dtg_upper_every, c.dtg_follow_schedule ? "follow the network's schedule" : "constant",
                        c.dtg_generator_lr, c.dtg_entropy_weight);
        }
        run_results results;
        const bool two = h.primary_classes() == 2, five = h.primary_classes() == 5;
        if (!two && !five) raise<config_error>("fashion_hierarchy: primary tasks of 2 or 5 classes are compiled in");
        if (c.model == "mlp") results = two ? run_all<mlp_trunk, 2>(c, h, fm.train, fm.test) : run_all<mlp_trunk, 5>(c, h, fm.train, fm.test);
        else results = two ? run_all<cnn_trunk, 2>(c, h, fm.train, fm.test) : run_all<cnn_trunk, 5>(c, h, fm.train, fm.test);

        // Summary table: accuracy mean ± std, paired difference to STL ± standard error, and for
        // the methods that train on the 95 % part, the paired difference to stl@dev when it ran.
        const auto& stl = results.at("stl");
        const auto stl_dev = results.find("stl@dev");
        const bool have_stl_dev = stl_dev != results.end();
        auto paired = [](const std::vector<run_result>& runs, const std::vector<run_result>& base) {
            std::vector<double> d;
            for (std::size_t s = 0; s < runs.size(); ++s)
                if (!runs[s].diverged && !base[s].diverged) d.push_back(100 * (runs[s].accuracy - base[s].accuracy));
            return d;
        };
        auto standard_error = [](const std::vector<double>& d) { return d.size() < 2 ? 0.0 : sample_std(d) / std::sqrt(double(d.size())); };
        std::ostringstream summary_csv;
        summary_csv << "method,runs,diverged,accuracy_mean,accuracy_std,delta_vs_stl,delta_se,seconds_per_epoch,ms_per_step,"
                       "delta_vs_stl_dev,delta_dev_se\n";
        std::printf("\n%-20s %18s %18s %18s %10s %9s\n", "method", "test acc (%)", "vs STL (points)",
                    have_stl_dev ? "vs STL@dev" : "", "s/epoch", "ms/step");
        for (const auto& method : c.methods) {
            const auto& runs = results.at(method);
            std::vector<double> acc, spe, mps;
            std::size_t diverged = 0;
            bool on_dev_part = false;
            for (std::size_t s = 0; s < runs.size(); ++s) {
                on_dev_part = on_dev_part || runs[s].dev_split;
                if (runs[s].diverged) {
                    ++diverged;
                    continue;
                }
                acc.push_back(100 * runs[s].accuracy);
                spe.push_back(runs[s].seconds_per_epoch);
                mps.push_back(runs[s].ms_per_step);
            }
            if (acc.empty()) {
                std::printf("%-20s %18s\n", method.c_str(), "diverged (all seeds)");
                summary_csv << method << ',' << runs.size() << ',' << diverged << ",,,,,,,,\n";
                continue;
            }
            const bool is_stl = method == "stl";
            const auto diff = paired(runs, stl);
            const bool vs_dev = have_stl_dev && on_dev_part && method != "stl@dev";
            const auto diff_dev = vs_dev ? paired(runs, stl_dev->second) : std::vector<double>{};
            char acc_text[64], diff_text[64], dev_text[64] = "";
            std::snprintf(acc_text, sizeof acc_text, "%.2f ± %.2f", mean(acc), sample_std(acc));
            if (is_stl) std::snprintf(diff_text, sizeof diff_text, "—");
            else std::snprintf(diff_text, sizeof diff_text, "%+.2f ± %.2f", mean(diff), standard_error(diff));
            if (vs_dev) std::snprintf(dev_text, sizeof dev_text, "%+.2f ± %.2f", mean(diff_dev), standard_error(diff_dev));
            std::printf("%-20s %20s %20s %20s %10.3f %9.2f%s\n", method.c_str(), acc_text, diff_text, dev_text, mean(spe), mean(mps),
                        diverged ? "  (some seeds diverged)" : "");
            summary_csv << method << ',' << runs.size() << ',' << diverged << ',' << mean(acc) << ',' << sample_std(acc) << ','
                        << (is_stl ? 0.0 : mean(diff)) << ',' << (is_stl ? 0.0 : standard_error(diff)) << ',' << mean(spe) << ','
                        << mean(mps) << ',';
            if (vs_dev) summary_csv << mean(diff_dev) << ',' << standard_error(diff_dev);
            else summary_csv << ',';
            summary_csv << '\n';
        }
        const auto runs_path = c.out / ("runs_" + c.hierarchy + "_" + c.model + ".csv");
        io::write_atomically(runs_path, [&](std::ostream& out) { out << runs_csv_text(c, results); });
        const auto summary_path = c.out / ("summary_" + c.hierarchy + "_" + c.model + ".csv");
        io::write_atomically(summary_path, [&](std::ostream& out) { out << summary_csv.str(); });
        std::filesystem::remove(partial_runs_path(c));  // the runs CSV now holds them all
        std::printf("\nper-run CSVs, %s and %s written to %s/\n", runs_path.filename().c_str(), summary_path.filename().c_str(), c.out.c_str());
        return 0;
    } catch (const time_limit_reached& stop) {
        std::printf("\ntime limit reached: %s saved; the same command continues from there\n", stop.where.c_str());
        return 75;
    } catch (const auxl::error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
}
