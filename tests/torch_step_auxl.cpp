// torch_step_auxl — auxl's half of tests/python/test_torch_step.py: trains one composition for
// a few steps on fixed random batches and writes, as .npy, the batches and every parameter
// before and after.  The Python half loads the same parameters into benchmarks/torch_reference.py's
// networks, repeats the same steps there and compares the updates tensor by tensor, so an
// implementation difference between the two libraries (a learning rate, a sign, a missing term)
// shows up in one step instead of as a gap in accuracy after hours of training.
//
//   torch_step_auxl --method maxl+equal --model cnn --steps 3 --batch 16 --out DIR
//   torch_step_auxl --method human+module_aware --model mlp --steps 21 --hvp-step 1e-4 --out DIR
//   torch_step_auxl --method dtg --model mlp --steps 3 --hvp-step 1e-4 --out DIR
//   torch_step_auxl --method maxl+equal --model cnn --epochs 3 --rows 40 --init pytorch --out DIR
//
// Writes DIR/inputs.npy (steps*batch x 784; rows x 784 with --epochs), primary.npy, fine.npy and
// human.npy (int32: the human auxiliary label gen::human_hierarchy trains on, the fine class's
// index in ψ's block order, a renumbering of the fine classes); for every network the step trains —
// the model, MAXL's label generator ("generator"), DTG's feature and label generators ("feature",
// "label"), RL-AUX's policy ("policy") — NAME_before.npy and NAME_after.npy (the flat parameter
// arena) and NAME_segments.txt (one tensor per line: name, offset, dims); dev_inputs.npy and
// dev_primary.npy, the dev set of the methods with an upper level (module-aware, DTG);
// module-aware's hypergradient.npy (its last clipped ∇_ω, one value per trunk module) and DTG's
// last upper gradient, clipped, as feature_gradient.npy, label_gradient.npy (laid out as the
// networks) and manual_weight_gradient.npy (∇_ω); RL-AUX's sampled actions as rl_labels.npy and
// rl_bins.npy (steps x batch).  Settings are torch_reference.make_step's: super5 (5 primary
// classes, 10 auxiliary; --hierarchy), SGD lr 0.01 (--lr), momentum 0.9, weight decay 5e-4, λ = 1,
// no focal term; --hvp-step sets module-aware's and DTG's central-difference step; --init the
// model's initialisation (he-uniform, the trainer's default, or pytorch, torch.nn's and the
// study's; the generators keep their own).
//
// With --epochs E the steps are not fed by hand: trainer::fit trains E epochs of a --rows N
// training set (the inputs and labels above, N rows) with the cosine schedule over E epochs, as
// the study does, so the schedule, the epoch boundaries and the short last batch are exercised.
// DIR/order.npy (E x N, int32) is the row order fit() took in each epoch, for the Python half to
// feed PyTorch the same batches.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/train/runtime_select.hpp"
#include "../benchmarks/reference_models.hpp"

using namespace auxl;

namespace {

using reference::cnn_trunk;
using reference::mlp_trunk;

struct args {
    std::string method = "stl", model = "mlp", out;
    std::size_t steps = 3, batch = 16;
    std::size_t epochs = 0, rows = 40;  // epochs > 0: trainer::fit with a cosine schedule
    nn::init_scheme init = nn::init_scheme::he_uniform;  // the model's; "pytorch" is the study's
    std::string hierarchy = "super5";
    double lr = 0.01;
    double hvp_step = 0.01;  // module_aware_options::hvp_step / dtg_options::hvp_step
    meta::hvp_method hvp = meta::hvp_method::automatic;  // module_aware_options::hvp
};

args parse(int argc, char** argv) {
    args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--method") a.method = v;
        else if (k == "--model") a.model = v;
        else if (k == "--steps") a.steps = std::size_t(std::atol(v.c_str()));
        else if (k == "--batch") a.batch = std::size_t(std::atol(v.c_str()));
        else if (k == "--out") a.out = v;
        else if (k == "--hvp-step") a.hvp_step = std::atof(v.c_str());
        else if (k == "--hvp") {
            if (v == "exact") a.hvp = meta::hvp_method::exact;
            else if (v == "central") a.hvp = meta::hvp_method::central_difference;
            else if (v == "automatic") a.hvp = meta::hvp_method::automatic;
            else throw std::runtime_error("--hvp takes exact, central or automatic, not " + v);
        }
        else if (k == "--epochs") a.epochs = std::size_t(std::atol(v.c_str()));
        else if (k == "--rows") a.rows = std::size_t(std::atol(v.c_str()));
        else if (k == "--hierarchy") a.hierarchy = v;
        else if (k == "--lr") a.lr = std::atof(v.c_str());
        else if (k == "--init") {
            if (v == "pytorch") a.init = nn::init_scheme::pytorch_default;
            else if (v == "he-uniform") a.init = nn::init_scheme::he_uniform;
            else raise<config_error>("torch_step_auxl: --init must be pytorch or he-uniform");
        }
        else raise<config_error>("torch_step_auxl: unknown flag ", k);
    }
    if (a.model != "mlp" && a.model != "cnn") raise<config_error>("torch_step_auxl: --model must be mlp or cnn");
    if (a.out.empty()) raise<config_error>("torch_step_auxl: --out DIR is required");
    if (a.steps == 0 || a.batch == 0) raise<config_error>("torch_step_auxl: --steps and --batch must be positive");
    if (a.epochs > 0 && a.rows == 0) raise<config_error>("torch_step_auxl: --rows must be positive");
    if (!(a.lr > 0)) raise<config_error>("torch_step_auxl: --lr must be positive");
    return a;
}

template <class Arena>
xt::xtensor<float, 1> flat_copy(const Arena& params) {
    xt::xtensor<float, 1> out = xt::xtensor<float, 1>::from_shape({params.size()});
    std::copy_n(params.data(), params.size(), out.data());
    return out;
}

void write_segments(const std::filesystem::path& path, const arena_layout& layout) {
    std::ofstream out(path);
    for (const auto& s : layout.segments()) {
        out << s.name << ' ' << s.offset;
        for (std::size_t d = 0; d < s.rank; ++d) out << ' ' << s.dims[d];
        out << '\n';
    }
    if (!out) raise<io_error>("torch_step_auxl: cannot write ", path.string());
}

template <class Trunk, std::size_t PrimaryClasses>
void run(const args& a) {
    using model = reference::model<Trunk, PrimaryClasses>;
    using dtg_model = reference::dtg_model<Trunk, PrimaryClasses>;
    const auto h = data::hierarchy::by_name(a.hierarchy);
    trainer_options o;
    o.seed = 1;
    o.batch_size = a.batch;
    o.focal_gamma = 0.0;
    o.init = a.init;
    if (a.epochs > 0) o.schedule = optim::cosine_lr{.total = a.epochs};  // torch's CosineAnnealingLR(T_max=E)
    const optim::sgd<float> sgd({.learning_rate = a.lr, .momentum = 0.9, .weight_decay = 5e-4});

    const std::size_t rows = a.epochs > 0 ? a.rows : a.steps * a.batch;
    rng gen(3, "torch-step");
    xt::xtensor<float, 2> x = xt::xtensor<float, 2>::from_shape({rows, std::size_t(784)});
    for (auto& v : x) v = float(gen.uniform());
    xt::xtensor<std::int32_t, 1> fine = xt::xtensor<std::int32_t, 1>::from_shape({rows});
    xt::xtensor<std::int32_t, 1> primary = xt::xtensor<std::int32_t, 1>::from_shape({rows});
    xt::xtensor<std::int32_t, 1> human = xt::xtensor<std::int32_t, 1>::from_shape({rows});
    for (std::size_t i = 0; i < rows; ++i) {
        fine(i) = std::int32_t(gen.below(10));
        primary(i) = h.primary_of(fine(i));
        human(i) = std::int32_t(h.block_index_of(fine(i)));
    }
    // The dev set of the rules with an upper level (module-aware): 64 more rows, fewer than its
    // dev batch of 256, so both libraries' upper level uses all of them.
    const std::size_t dev_rows = 64;
    data::dataset<float> dev_set;
    dev_set.name = "torch-step-dev";
    dev_set.classes = 10;
    dev_set.example_shape = {1, 28, 28};
    dev_set.inputs = xt::xtensor<float, 2>::from_shape({dev_rows, std::size_t(784)});
    for (auto& v : dev_set.inputs) v = float(gen.uniform());
    dev_set.labels.resize(dev_rows);
    xt::xtensor<std::int32_t, 1> dev_primary = xt::xtensor<std::int32_t, 1>::from_shape({dev_rows});
    for (std::size_t i = 0; i < dev_rows; ++i) {
        dev_set.labels[i] = std::int32_t(gen.below(10));
        dev_primary(i) = h.primary_of(dev_set.labels[i]);
    }

    const std::filesystem::path dir(a.out);
    std::filesystem::create_directories(dir);
    data::save_npy(dir / "inputs.npy", x);
    data::save_npy(dir / "fine.npy", fine);
    data::save_npy(dir / "primary.npy", primary);
    data::save_npy(dir / "human.npy", human);
    data::save_npy(dir / "dev_inputs.npy", dev_set.inputs);
    data::save_npy(dir / "dev_primary.npy", dev_primary);

    data::dataset<float> train_set;
    train_set.name = "torch-step-train";
    train_set.classes = 10;
    train_set.example_shape = {1, 28, 28};
    train_set.inputs = x;
    train_set.labels.assign(fine.begin(), fine.end());
    if (a.epochs > 0) {
        // fit()'s row order: the trainer draws each epoch's permutation from its "order" stream
        // (seeded by trainer_options::seed) and nothing else, so the same stream and batcher
        // reproduce it.  Were that to change, the updates would disagree and the test fail.
        rng order(o.seed, "order");
        data::batcher batches(rows, a.batch);
        xt::xtensor<std::int32_t, 2> order_out = xt::xtensor<std::int32_t, 2>::from_shape({a.epochs, rows});
        for (std::size_t e = 0; e < a.epochs; ++e) {
            batches.start_epoch(order);
            std::copy(batches.permutation().begin(), batches.permutation().end(), &order_out(e, 0));
        }
        data::save_npy(dir / "order.npy", order_out);
    }

    auto record = [&](auto& tr) {
        using trainer_type = std::remove_reference_t<decltype(tr)>;
        if constexpr (trainer_type::needs_dev_set) {
            if (a.epochs == 0) {
                // fit() installs the dev set; with zero epochs it trains nothing.
                data::dataset<float> dev_only = dev_set;
                dev_only.name = "torch-step-train";
                typename trainer_type::fit_options fit;
                fit.epochs = 0;
                fit.dev = &dev_set;
                tr.fit(dev_only, fit);
            }
        }
        // Every network the step trains, by the name the Python half knows it by.
        auto& g = tr.generator();
        auto for_each_network = [&](auto&& visit) {
            visit("model", tr.model());
            if constexpr (requires { g.network().parameters(); }) visit("generator", g.network());  // MAXL
            if constexpr (requires { g.policy().parameters(); }) visit("policy", g.policy());        // RL-AUX
            if constexpr (requires { g.feature_generator().parameters(); }) {                      // DTG
                visit("feature", g.feature_generator());
                visit("label", g.label_generator());
            }
        };
        for_each_network([&](const std::string& name, auto& net) {
            write_segments(dir / (name + "_segments.txt"), net.layout());
            data::save_npy(dir / (name + "_before.npy"), flat_copy(net.parameters()));
        });
        if (a.epochs > 0) {
            if constexpr (requires { g.last_labels(); }) {
                raise<config_error>("torch_step_auxl: RL-AUX's draws are replayed per step; use --steps, not --epochs");
            }
            typename trainer_type::fit_options fit;
            fit.epochs = a.epochs;
            if constexpr (trainer_type::needs_dev_set) fit.dev = &dev_set;
            tr.fit(train_set, fit);
        } else {
            std::vector<std::uint32_t> row_ids(a.batch);
            // RL-AUX samples its actions; the Python half takes the same ones (rl_labels/rl_bins.npy).
            xt::xtensor<std::int32_t, 2> labels_taken = xt::zeros<std::int32_t>({a.steps, a.batch});
            xt::xtensor<std::int32_t, 2> bins_taken = xt::zeros<std::int32_t>({a.steps, a.batch});
            for (std::size_t s = 0; s < a.steps; ++s) {
                for (std::size_t i = 0; i < a.batch; ++i) row_ids[i] = std::uint32_t(s * a.batch + i);
                const std::size_t first = s * a.batch;
                const train::batch<float> b{x.data() + first * 784, a.batch, primary.data() + first, fine.data() + first,
                                            std::span<const std::uint32_t>(row_ids)};
                tr.step(b);
                if constexpr (requires { g.last_labels(); }) {
                    std::copy(g.last_labels().begin(), g.last_labels().end(), &labels_taken(s, 0));
                    std::copy(g.last_bins().begin(), g.last_bins().end(), &bins_taken(s, 0));
                }
            }
            if constexpr (requires { g.last_labels(); }) {
                data::save_npy(dir / "rl_labels.npy", labels_taken);
                data::save_npy(dir / "rl_bins.npy", bins_taken);
            }
        }
        for_each_network([&](const std::string& name, auto& net) {
            data::save_npy(dir / (name + "_after.npy"), flat_copy(net.parameters()));
        });
        if constexpr (requires { g.feature_gradient(); }) {  // DTG's last upper gradient, clipped
            data::save_npy(dir / "feature_gradient.npy", flat_copy(g.feature_gradient()));
            data::save_npy(dir / "label_gradient.npy", flat_copy(g.label_gradient()));
            data::save_npy(dir / "manual_weight_gradient.npy", flat_copy(g.manual_weight_gradient()));
        }
        if constexpr (requires { tr.rule().last_hypergradient(); }) {  // module-aware's last ∇_ω
            const auto hyper = tr.rule().last_hypergradient();
            xt::xtensor<double, 1> out = xt::xtensor<double, 1>::from_shape({hyper.size()});
            std::copy(hyper.begin(), hyper.end(), out.begin());
            data::save_npy(dir / "hypergradient.npy", out);
        }
    };
    const auto dtg_names = train::dtg_method_names();
    if (std::find(dtg_names.begin(), dtg_names.end(), a.method) != dtg_names.end()) {
        gen::dtg_options dtg;
        dtg.hvp_step = a.hvp_step;
        dtg.hvp = a.hvp;
        std::visit(record, *train::make_dtg_trainer<dtg_model>(a.method, h, sgd, o, 1.0, dtg));
    } else {
        weight::module_aware_options module_aware;
        module_aware.hvp_step = a.hvp_step;
        module_aware.hvp = a.hvp;
        std::visit(record, *train::make_trainer<model>(a.method, h, sgd, o, 1.0, {}, {}, module_aware));
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const args a = parse(argc, argv);
        set_gemm_threads(1);
        // The primary head's width is the model's type: super5's 5 classes, or half2's and parity2's 2.
        const bool five = data::hierarchy::by_name(a.hierarchy).primary_classes() == 5;
        if (a.model == "mlp") five ? run<mlp_trunk, 5>(a) : run<mlp_trunk, 2>(a);
        else five ? run<cnn_trunk, 5>(a) : run<cnn_trunk, 2>(a);
        return 0;
    } catch (const auxl::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
