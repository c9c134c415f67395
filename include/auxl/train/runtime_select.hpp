// auxl/train/runtime_select.hpp — choose a built-in generator and rule by name at run time.
//
//   auto t = train::make_trainer<Model>("human+cosine", hierarchy, optim::sgd<>{...}, options, 1.0);
//   std::visit([&](auto& trainer) { trainer.fit(data, fit_options); }, *t);
//
// The result is a std::variant over the statically composed trainer types (each one a fully
// static trainer inside), so a command-line tool can pick a method without virtual calls on the
// training path.  Names: "stl", "human+equal", "human+cosine", "human+cosine-gate",
// "maxl+equal", "maxl+cosine", "maxl+cosine-gate", "rl_aux+equal" (labels only), "rl_aux_w+equal"
// (labels and per-example weights), "human+module_aware", "human+transference",
// "maxl+module_aware", "maxl+transference".  (module_aware and transference ignore aux_weight.)  MAXL's generator network is the model's
// trunk plus a linear layer (gen::maxl_net_for<Model>); when maxl_options.psi is empty, ψ per
// primary class is the auxiliary head's width divided by the number of primary classes.
//
// make_dtg_trainer<Model> covers the methods that need a model with two auxiliary heads (primary,
// manually collected task, generated task): "dtg" (DTG-style, manual task = the human fine
// labels), "dtg+random" (manual task = fixed random labels: the unhelpful-task scenario) and
// "random+equal" (Equal with that random task).  Its generators are one-hidden-layer MLPs of
// width 128 (gen::dtg_for).
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/gen/dtg.hpp"
#include "auxl/gen/human_hierarchy.hpp"
#include "auxl/gen/maxl.hpp"
#include "auxl/gen/rl_aux.hpp"
#include "auxl/gen/none.hpp"
#include "auxl/gen/random_labels.hpp"
#include "auxl/train/trainer.hpp"
#include "auxl/weight/cosine.hpp"
#include "auxl/weight/equal.hpp"
#include "auxl/weight/module_aware.hpp"
#include "auxl/weight/transference.hpp"

namespace auxl::train {

template <class Model>
using maxl_for = gen::maxl<gen::maxl_net_for<Model>, gen::exact_meta_gradient, typename Model::scalar_type>;

template <class Model, class Optimizer>
using any_trainer = std::variant<trainer<Model, gen::none, weight::equal, Optimizer>,
                                 trainer<Model, gen::human_hierarchy, weight::equal, Optimizer>,
                                 trainer<Model, gen::human_hierarchy, weight::cosine, Optimizer>,
                                 trainer<Model, gen::human_hierarchy, weight::cosine_gate, Optimizer>,
                                 trainer<Model, gen::human_hierarchy, weight::module_aware, Optimizer>,
                                 trainer<Model, gen::human_hierarchy, weight::transference, Optimizer>,
                                 trainer<Model, maxl_for<Model>, weight::equal, Optimizer>,
                                 trainer<Model, maxl_for<Model>, weight::cosine, Optimizer>,
                                 trainer<Model, maxl_for<Model>, weight::cosine_gate, Optimizer>,
                                 trainer<Model, maxl_for<Model>, weight::module_aware, Optimizer>,
                                 trainer<Model, maxl_for<Model>, weight::transference, Optimizer>,
                                 trainer<Model, gen::rl_aux_for<Model>, weight::equal, Optimizer>>;

/// The method names make_trainer accepts.
inline std::vector<std::string> method_names() {
    return {"stl",
            "human+equal",       "human+cosine",      "human+cosine-gate", "human+module_aware", "human+transference",
            "maxl+equal",        "maxl+cosine",       "maxl+cosine-gate",  "maxl+module_aware",  "maxl+transference",
            "rl_aux+equal",      "rl_aux_w+equal"};
}

template <class Model, class Manual>
using dtg_default_for = gen::dtg_for<Model, 128, Model::head_widths[0], Manual>;

template <class Model, class Optimizer>
using any_dtg_trainer = std::variant<trainer<Model, dtg_default_for<Model, gen::human_hierarchy>, weight::equal, Optimizer>,
                                     trainer<Model, dtg_default_for<Model, gen::random_labels>, weight::equal, Optimizer>,
                                     trainer<Model, gen::random_labels, weight::equal, Optimizer>>;

/// The method names make_dtg_trainer accepts.
inline std::vector<std::string> dtg_method_names() { return {"dtg", "dtg+random", "random+equal"}; }

/// A trainer for one of dtg_method_names() on a model with heads (primary, manual, generated).
template <class Model, class Optimizer>
std::unique_ptr<any_dtg_trainer<Model, Optimizer>> make_dtg_trainer(const std::string& method, const data::hierarchy& hierarchy,
                                                                    const Optimizer& optimizer, const trainer_options& options,
                                                                    double aux_weight = 1.0, gen::dtg_options dtg = {}) {
    static_assert(Model::task_count == 3, "auxl::train::make_dtg_trainer: the model needs heads (primary, manual, generated)");
    using variant = any_dtg_trainer<Model, Optimizer>;
    if (dtg.psi.empty()) dtg.psi_per_class = Model::head_widths[2] / hierarchy.primary_classes();
    if (method == "dtg") {
        using G = dtg_default_for<Model, gen::human_hierarchy>;
        return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::equal, Optimizer>>, hierarchy, G{dtg},
                                         weight::equal{aux_weight}, optimizer, options);
    }
    if (method == "dtg+random") {
        using G = dtg_default_for<Model, gen::random_labels>;
        return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::equal, Optimizer>>, hierarchy, G{dtg},
                                         weight::equal{aux_weight}, optimizer, options);
    }
    if (method == "random+equal") {
        return std::make_unique<variant>(std::in_place_type<trainer<Model, gen::random_labels, weight::equal, Optimizer>>,
                                         hierarchy, gen::random_labels{}, weight::equal{aux_weight}, optimizer, options);
    }
    std::string known;
    for (const auto& n : dtg_method_names()) known += (known.empty() ? "" : ", ") + n;
    raise<config_error>("auxl::train::make_dtg_trainer: unknown method '", method, "' (known: ", known, ")");
}

/// A trainer for `method`; `aux_weight` is λ of the equal and cosine rules; the option structs
/// configure the generator or rule the method names (MAXL, RL-AUX, module-aware).
template <class Model, class Optimizer>
std::unique_ptr<any_trainer<Model, Optimizer>> make_trainer(const std::string& method, const data::hierarchy& hierarchy,
                                                            const Optimizer& optimizer, const trainer_options& options,
                                                            double aux_weight = 1.0, gen::maxl_options maxl = {},
                                                            gen::rl_aux_options rl = {},
                                                            weight::module_aware_options module_aware = {}) {
    using variant = any_trainer<Model, Optimizer>;
    if (method == "rl_aux+equal" || method == "rl_aux_w+equal") {
        if (rl.psi.empty()) rl.psi_per_class = Model::head_widths[1] / hierarchy.primary_classes();
        rl.learn_weights = method == "rl_aux_w+equal";
        using G = gen::rl_aux_for<Model>;
        return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::equal, Optimizer>>, hierarchy, G{rl},
                                         weight::equal{aux_weight}, optimizer, options);
    }
    if (method.rfind("maxl+", 0) == 0) {
        if (maxl.psi.empty()) maxl.psi_per_class = Model::head_widths[1] / hierarchy.primary_classes();
        using G = maxl_for<Model>;
        if (method == "maxl+equal") {
            return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::equal, Optimizer>>, hierarchy,
                                             G{maxl}, weight::equal{aux_weight}, optimizer, options);
        }
        if (method == "maxl+cosine") {
            return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::cosine, Optimizer>>, hierarchy,
                                             G{maxl}, weight::cosine{aux_weight}, optimizer, options);
        }
        if (method == "maxl+cosine-gate") {
            return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::cosine_gate, Optimizer>>, hierarchy,
                                             G{maxl}, weight::cosine_gate{aux_weight}, optimizer, options);
        }
        if (method == "maxl+module_aware") {
            return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::module_aware, Optimizer>>, hierarchy,
                                             G{maxl}, weight::module_aware{module_aware}, optimizer, options);
        }
        if (method == "maxl+transference") {
            return std::make_unique<variant>(std::in_place_type<trainer<Model, G, weight::transference, Optimizer>>, hierarchy,
                                             G{maxl}, weight::transference{}, optimizer, options);
        }
    }
    if (method == "stl") {
        return std::make_unique<variant>(std::in_place_type<trainer<Model, gen::none, weight::equal, Optimizer>>, hierarchy,
                                         gen::none{}, weight::equal{aux_weight}, optimizer, options);
    }
    if (method == "human+equal") {
        return std::make_unique<variant>(std::in_place_type<trainer<Model, gen::human_hierarchy, weight::equal, Optimizer>>,
                                         hierarchy, gen::human_hierarchy{}, weight::equal{aux_weight}, optimizer, options);
    }
    if (method == "human+cosine") {
        return std::make_unique<variant>(std::in_place_type<trainer<Model, gen::human_hierarchy, weight::cosine, Optimizer>>,
                                         hierarchy, gen::human_hierarchy{}, weight::cosine{aux_weight}, optimizer, options);
    }
    if (method == "human+module_aware") {
        return std::make_unique<variant>(
            std::in_place_type<trainer<Model, gen::human_hierarchy, weight::module_aware, Optimizer>>, hierarchy,
            gen::human_hierarchy{}, weight::module_aware{module_aware}, optimizer, options);
    }
    if (method == "human+transference") {
        return std::make_unique<variant>(
            std::in_place_type<trainer<Model, gen::human_hierarchy, weight::transference, Optimizer>>, hierarchy,
            gen::human_hierarchy{}, weight::transference{}, optimizer, options);
    }
    if (method == "human+cosine-gate") {
        return std::make_unique<variant>(
            std::in_place_type<trainer<Model, gen::human_hierarchy, weight::cosine_gate, Optimizer>>, hierarchy,
            gen::human_hierarchy{}, weight::cosine_gate{aux_weight}, optimizer, options);
    }
    std::string known;
    for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
    raise<config_error>("auxl::train::make_trainer: unknown method '", method, "' (known: ", known, ")");
}

}  // namespace auxl::train
