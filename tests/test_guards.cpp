// Numerical guards of the trainer: non-finite inputs and losses raise an error naming the step,
// the task or the tensor and leave the parameters untouched, or are skipped under
// non_finite_policy::skip_step; gradient clipping by global norm.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "auxl/auxl.hpp"
#include "synthetic.hpp"

using namespace auxl;

namespace {
using trunk = nn::sequential<nn::input<20>, nn::dense<16>, nn::relu>;
using model_type = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using sgd = optim::sgd<float>;
const data::hierarchy parity = data::hierarchy::fashion_parity2();

// Human labels, but soft targets with a NaN on the rows named "poisoned": a loss that is not finite.
struct poisoned_targets {
    static const char* name() { return "poisoned"; }
    static constexpr std::size_t auxiliary_tasks = 1;
    bool poison = true;
    void prepare(const train::generator_setup&) {}
    void generate(const train::batch<float>& b, std::span<train::auxiliary_targets<float>> targets) {
        auto& t = targets[0];
        t.type = train::auxiliary_targets<float>::kind::soft;
        for (std::size_t i = 0; i < b.size; ++i) {
            for (std::size_t a = 0; a < 10; ++a) t.soft[i * 10 + a] = a == std::size_t(b.fine[i]) ? 1.0f : 0.0f;
        }
        if (poison) t.soft[3] = std::numeric_limits<float>::quiet_NaN();
    }
};

trainer_options opts(non_finite_policy policy) {
    trainer_options o;
    o.seed = 1;
    o.batch_size = 16;
    o.on_non_finite = policy;
    return o;
}

struct one_batch {
    data::dataset<float> data = testing::blobs(16, 1);
    std::vector<std::int32_t> primary, fine;
    std::vector<std::uint32_t> rows;
    one_batch() {
        for (std::size_t i = 0; i < 16; ++i) {
            fine.push_back(data.labels[i]);
            primary.push_back(parity.primary_of(data.labels[i]));
            rows.push_back(std::uint32_t(i));
        }
    }
    train::batch<float> batch() const { return {data.inputs.data(), 16, primary.data(), fine.data(), std::span<const std::uint32_t>(rows)}; }
};
}  // namespace

TEST_CASE("a NaN or Inf in the data raises a value_error naming the step, row and column, or is skipped") {
    one_batch ob;
    ob.data.inputs(5, 7) = std::numeric_limits<float>::quiet_NaN();
    trainer<model_type, gen::human_hierarchy, weight::equal, sgd> strict(parity, {}, {}, sgd({.learning_rate = 0.1}),
                                                                         opts(non_finite_policy::raise));
    const auto before = strict.model().parameters();
    CHECK_THROWS_WITH_AS(strict.step(ob.batch()), doctest::Contains("step 1 (epoch 1): input row 5 column 7 is NaN"), value_error);
    CHECK(std::equal(before.begin(), before.end(), strict.model().parameters().begin()));

    ob.data.inputs(5, 7) = std::numeric_limits<float>::infinity();
    trainer<model_type, gen::human_hierarchy, weight::equal, sgd> lenient(parity, {}, {}, sgd({.learning_rate = 0.1}),
                                                                          opts(non_finite_policy::skip_step));
    const auto report = lenient.step(ob.batch());
    CHECK(report.skipped);
    CHECK(lenient.skipped_steps() == 1);
    CHECK(lenient.steps_done() == 1);
    CHECK(std::equal(before.begin(), before.end(), lenient.model().parameters().begin()));
    ob.data.inputs(5, 7) = 0.5f;  // a clean batch trains again
    CHECK_FALSE(lenient.step(ob.batch()).skipped);
    CHECK_FALSE(std::equal(before.begin(), before.end(), lenient.model().parameters().begin()));
}

TEST_CASE("a non-finite loss raises a numeric_error naming the step and the task, or is skipped, with fit() going on") {
    one_batch ob;
    trainer<model_type, poisoned_targets, weight::equal, sgd> strict(parity, {}, {}, sgd({.learning_rate = 0.1}),
                                                                     opts(non_finite_policy::raise));
    const auto before = strict.model().parameters();
    CHECK_THROWS_WITH_AS(strict.step(ob.batch()), doctest::Contains("step 1 (epoch 1): the auxiliary loss of task 1 is nan"),
                         numeric_error);
    CHECK(std::equal(before.begin(), before.end(), strict.model().parameters().begin()));

    // Skipping inside fit(): every step is poisoned, so nothing trains and the epoch still ends.
    const auto data = testing::blobs(64, 2);
    trainer<model_type, poisoned_targets, weight::equal, sgd> lenient(parity, {}, {}, sgd({.learning_rate = 0.1}),
                                                                      opts(non_finite_policy::skip_step));
    const auto start = lenient.model().parameters();
    lenient.fit(data, {.epochs = 1});
    CHECK(lenient.skipped_steps() == 4);
    CHECK(std::equal(start.begin(), start.end(), lenient.model().parameters().begin()));
    lenient.generator().poison = false;
    lenient.fit(data, {.epochs = 2});
    CHECK(lenient.skipped_steps() == 4);
    CHECK_FALSE(std::equal(start.begin(), start.end(), lenient.model().parameters().begin()));
}

TEST_CASE("max_grad_norm clips the update direction to the given global norm, and only when it is longer") {
    one_batch ob;
    auto run = [&](std::optional<double> clip) {
        trainer_options o = opts(non_finite_policy::raise);
        o.max_grad_norm = clip;
        trainer<model_type, gen::human_hierarchy, weight::equal, sgd> t(parity, {}, {}, sgd({.learning_rate = 0.1}), o);
        const auto before = t.model().parameters();
        const auto report = t.step(ob.batch());
        double moved = 0;
        for (std::size_t i = 0; i < before.size(); ++i) {
            const double d = double(t.model().parameters()[i]) - double(before[i]);
            moved += d * d;
        }
        return std::pair{std::sqrt(moved), report.gradient_norm};
    };
    const auto [free_move, unset_norm] = run(std::nullopt);
    CHECK(std::isnan(unset_norm));
    const auto [clipped_move, norm] = run(0.01);
    REQUIRE(norm > 0.01);
    CHECK(free_move == doctest::Approx(0.1 * norm).epsilon(1e-4));   // plain SGD: ‖Δθ‖ = lr ‖g‖
    CHECK(clipped_move == doctest::Approx(0.1 * 0.01).epsilon(1e-4));  // clipped: ‖Δθ‖ = lr · max_norm
    const auto [loose_move, same_norm] = run(10 * norm);
    CHECK(loose_move == doctest::Approx(free_move).epsilon(1e-6));
    CHECK(same_norm == doctest::Approx(norm));
}
