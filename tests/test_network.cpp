// Whole networks: segment layout, gradients and JVPs of a multi-task model against finite
// differences (double), per-task backward rows summing to the joint backward, and the errors a
// user gets for bad data.
#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "auxl/loss/softmax_cross_entropy.hpp"
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/dropout.hpp"
#include "auxl/nn/flatten.hpp"
#include "auxl/nn/max_pool2d.hpp"
#include "auxl/nn/multi_task.hpp"
#include "auxl/nn/network.hpp"
#include "auxl/nn/relu.hpp"
#include "auxl/nn/tanh.hpp"
#include "auxl/core/error.hpp"
#include "gradcheck.hpp"
#include "plain_layer.hpp"

using namespace auxl;
using auxl::testing::numeric_directional;
using auxl::testing::numeric_gradient;
using auxl::testing::random_vector;
using auxl::testing::relative_error;

namespace {
using conv_trunk = nn::sequential<nn::input<2, 6, 6>, nn::conv2d<3, 3, 1, 1>, nn::tanh, nn::max_pool2d<2>,
                                  nn::flatten, nn::dense<8>, nn::relu, nn::dropout<1, 4>>;
using small_model = nn::basic_multi_task<double, conv_trunk, nn::head<nn::dense<3>>,
                                         nn::head<nn::dense<6>, nn::tanh, nn::dense<4>>>;

using mlp_trunk = nn::sequential<nn::input<784>, nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
using mlp_model = nn::multi_task<mlp_trunk, nn::head<nn::dense<5>>, nn::head<nn::dense<10>>>;

struct fixture {
    static constexpr std::size_t batch = 3;
    small_model model{batch};
    rng init{7, "init"};
    rng dropout{7, "dropout"};
    std::vector<double> x;
    std::vector<std::int32_t> y0 = {0, 2, 1};
    std::vector<double> t1;  // soft targets for head 1
    loss::softmax_cross_entropy<double> ce;
    nn::pass_options options{true, &dropout, false};

    fixture() {
        model.init(init, nn::init_scheme::xavier_uniform);
        rng data(7, "data");
        x = random_vector(batch * small_model::input_size, data);
        t1 = random_vector(batch * 4, data);
        for (auto& v : t1) v = v * v;
        model.forward(x.data(), batch, options);  // draws the dropout mask once
        options.reuse_masks = true;
    }

    double loss_value() {
        model.forward(x.data(), batch, options);
        return ce.value_and_gradient(model.output(0), batch, 3, loss::hard_targets{y0.data()}) +
               ce.value_and_gradient(model.output(1), batch, 4, loss::soft_targets<double>{t1.data()});
    }

    /// Upstream gradients of both losses at the current parameters.
    std::pair<std::vector<double>, std::vector<double>> head_gradients() {
        model.forward(x.data(), batch, options);
        std::vector<double> d0(batch * 3), d1(batch * 4);
        ce.value_and_gradient(model.output(0), batch, 3, loss::hard_targets{y0.data()}, nullptr, d0.data());
        ce.value_and_gradient(model.output(1), batch, 4, loss::soft_targets<double>{t1.data()}, nullptr, d1.data());
        return {d0, d1};
    }
};
}  // namespace

TEST_CASE("multi_task arena: trunk first, then heads, every segment 64-byte aligned") {
    small_model model(2);
    const auto& layout = model.layout();
    CHECK(layout.size() == small_model::parameter_count);
    CHECK(layout.modules().size() == 5);  // conv, dense | dense | dense, dense
    for (const auto& s : layout.segments()) CHECK((s.offset * sizeof(double)) % 64 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(model.parameters().data()) % 64 == 0);
    CHECK(small_model::head_offsets[0] == small_model::trunk_parameter_count);
    CHECK(layout.segments().front().name == "trunk.0.conv2d.weight");
    CHECK(layout.segments().back().name == "head1.2.dense.bias");
    std::ostringstream out;
    model.summary(out);
    CHECK(out.str().find("head0.0.dense.weight") != std::string::npos);
    CHECK(out.str().find("parameters: ") != std::string::npos);
    static_assert(mlp_model::parameter_count >= 784 * 256 + 256 + 256 * 128 + 128 + 128 * 5 + 5 + 128 * 10 + 10);
    static_assert(mlp_model::head_widths[1] == 10);
}

TEST_CASE("padding stays zero after init") {
    small_model model(2);
    rng init(1, "init");
    model.init(init);
    std::size_t used_end = 0;
    std::vector<char> used(model.parameters().size(), 0);
    for (const auto& s : model.layout().segments())
        for (std::size_t i = 0; i < s.size; ++i) used[s.offset + i] = 1;
    for (std::size_t i = 0; i < used.size(); ++i)
        if (!used[i]) CHECK(model.parameters()[i] == 0.0);
    (void)used_end;
}

TEST_CASE("multi_task parameter and input gradients match finite differences") {
    fixture f;
    auto [d0, d1] = f.head_gradients();
    auto grad = f.model.make_arena();
    std::vector<double> dx(f.x.size(), 0.0);
    f.model.backward({d0.data(), d1.data()}, grad, dx.data());
    auto& params = f.model.parameters();
    const auto numeric = numeric_gradient([&] { return f.loss_value(); }, params.data(), params.size());
    CHECK(relative_error(std::vector<double>(grad.begin(), grad.end()), numeric) < 1e-6);
    const auto numeric_dx = numeric_gradient([&] { return f.loss_value(); }, f.x.data(), f.x.size());
    CHECK(relative_error(dx, numeric_dx) < 1e-6);
}

TEST_CASE("per-task backward into separate arenas sums to the joint backward") {
    fixture f;
    auto [d0, d1] = f.head_gradients();
    auto joint = f.model.make_arena();
    auto row0 = f.model.make_arena();
    auto row1 = f.model.make_arena();
    f.model.backward({d0.data(), d1.data()}, joint);
    f.model.backward_head(0, d0.data(), row0);
    f.model.backward_head(1, d1.data(), row1);
    double worst = 0;
    for (std::size_t i = 0; i < joint.size(); ++i) worst = std::max(worst, std::abs(joint[i] - row0[i] - row1[i]));
    CHECK(worst < 1e-12);
    // Task 0's row has no gradient on head 1's parameters and vice versa.
    for (std::size_t i = small_model::head_offsets[1]; i < row0.size(); ++i) CHECK(row0[i] == 0.0);
    for (std::size_t i = small_model::head_offsets[0]; i < small_model::head_offsets[1]; ++i) CHECK(row1[i] == 0.0);
}

namespace {
// Σ_k row_k with trunk module j of row k scaled by c[k·M + j], heads unscaled: what
// backward_weighted must equal.
template <class Model, class A>
std::vector<double> combine_rows(const Model& model, const std::vector<A>& rows, const std::vector<typename Model::scalar_type>& c) {
    constexpr std::size_t M = Model::trunk_module_count;
    const auto& modules = model.layout().modules();
    std::vector<double> out(Model::parameter_count, 0.0);
    for (std::size_t k = 0; k < rows.size(); ++k) {
        for (std::size_t i = Model::trunk_parameter_count; i < Model::parameter_count; ++i) out[i] += double(rows[k][i]);
        for (std::size_t j = 0; j < M; ++j)
            for (std::size_t i = modules[j].offset; i < modules[j].offset + modules[j].extent; ++i)
                out[i] += double(c[k * M + j]) * double(rows[k][i]);
    }
    return out;
}
}  // namespace

TEST_CASE("weighted backward equals the per-task rows combined module by module") {
    // The conv trunk (conv, tanh, pool, dense, ReLU, dropout) in double: exact to rounding.
    static_assert(small_model::trunk_module_count == 2);
    fixture f;
    auto [d0, d1] = f.head_gradients();
    auto row0 = f.model.make_arena();
    auto row1 = f.model.make_arena();
    f.model.backward_head(0, d0.data(), row0);
    f.model.backward_head(1, d1.data(), row1);
    const std::vector<arena<double>> rows = {row0, row1};
    for (const std::vector<double>& c : {std::vector<double>{1, 1, 0.7, 0.0}, std::vector<double>{1, 1, 0.0, 2.5},
                                         std::vector<double>{0.5, -1, 1, 1}, std::vector<double>{1, 1, 1, 1}}) {
        CAPTURE(c[2]);
        CAPTURE(c[3]);
        auto weighted = f.model.make_arena();
        for (auto& g : weighted) g = 0.25;  // added into, like backward
        f.model.backward_weighted({d0.data(), d1.data()}, c, weighted.span());
        auto expected = combine_rows(f.model, rows, c);
        for (auto& e : expected) e += 0.25;
        CHECK(relative_error(std::vector<double>(weighted.begin(), weighted.end()), expected) < 1e-13);
    }
    // One task absent: its head and its share of the trunk get nothing.
    auto only_aux = f.model.make_arena();
    f.model.backward_weighted({nullptr, d1.data()}, std::vector<double>{1, 1, 3, 0.5}, only_aux.span());
    const std::vector<arena<double>> aux_row = {row1};
    const auto expected = combine_rows(f.model, aux_row, std::vector<double>{3, 0.5});
    CHECK(relative_error(std::vector<double>(only_aux.begin(), only_aux.end()), expected) < 1e-13);
    CHECK_THROWS_WITH_AS(f.model.backward_weighted({d0.data(), d1.data()}, std::vector<double>{1, 1, 1}, only_aux.span()),
                         doctest::Contains("3 coefficients, expected 2 tasks x 2 trunk modules"), shape_error);
}

TEST_CASE("weighted backward on the float MLP matches the rows to float rounding") {
    // The MLP's first layer needs no input gradient: there the weighted backward makes one
    // weight-gradient product where the rows make two.
    constexpr std::size_t B = 16;
    mlp_model model(B);
    rng gen(21, "init");
    model.init(gen, nn::init_scheme::he_uniform);
    std::vector<float> x(B * mlp_model::input_size), d0(B * 5), d1(B * 10);
    for (auto& v : x) v = float(gen.uniform());
    for (auto& v : d0) v = float(gen.normal());
    for (auto& v : d1) v = float(gen.normal());
    model.forward(x.data(), B);
    auto row0 = model.make_arena();
    auto row1 = model.make_arena();
    model.backward_head(0, d0.data(), row0);
    model.backward_head(1, d1.data(), row1);
    const std::vector<float> c = {1, 1, 0.3f, 1.7f};
    auto weighted = model.make_arena();
    model.backward_weighted({d0.data(), d1.data()}, c, weighted.span());
    const std::vector<arena<float>> rows = {row0, row1};
    CHECK(relative_error(std::vector<double>(weighted.begin(), weighted.end()), combine_rows(model, rows, c)) < 1e-6);
}

TEST_CASE("multi_task tangent matches finite differences of every head's output") {
    fixture f;
    rng gen(8, "dir");
    auto direction = f.model.make_arena();
    for (auto& v : direction) v = gen.normal();
    const auto x_dir = random_vector(f.x.size(), gen);
    auto& params = f.model.parameters();
    const auto base = params;
    const auto x0 = f.x;
    auto move = [&](double h) {
        for (std::size_t i = 0; i < params.size(); ++i) params[i] = base[i] + h * direction[i];
        for (std::size_t i = 0; i < f.x.size(); ++i) f.x[i] = x0[i] + h * x_dir[i];
    };
    auto eval = [&] {
        f.model.forward(f.x.data(), fixture::batch, f.options);
        std::vector<double> out(f.model.output(0), f.model.output(0) + fixture::batch * 3);
        out.insert(out.end(), f.model.output(1), f.model.output(1) + fixture::batch * 4);
        return out;
    };
    const auto numeric = numeric_directional(move, eval);
    f.model.forward(f.x.data(), fixture::batch, f.options);
    f.model.tangent(&direction, x_dir.data());
    std::vector<double> analytic(f.model.output_tangent(0), f.model.output_tangent(0) + fixture::batch * 3);
    analytic.insert(analytic.end(), f.model.output_tangent(1), f.model.output_tangent(1) + fixture::batch * 4);
    CHECK(relative_error(analytic, numeric) < 1e-6);
}

namespace {
/// ∇L(θ, x) of the fixture's two-task loss: parameter gradient, then input gradient.
std::vector<double> full_gradient(fixture& f) {
    auto [d0, d1] = f.head_gradients();
    auto grad = f.model.make_arena();
    std::vector<double> dx(f.x.size(), 0.0);
    f.model.backward({d0.data(), d1.data()}, grad, dx.data());
    std::vector<double> out(grad.begin(), grad.end());
    out.insert(out.end(), dx.begin(), dx.end());
    return out;
}
}  // namespace

TEST_CASE("multi_task backward_tangent gives exact Hessian-vector products (parameters and input)") {
    fixture f;
    rng gen(18, "dir");
    auto v = f.model.make_arena();
    for (auto& e : v) e = gen.normal();
    const auto x_dir = random_vector(f.x.size(), gen);
    auto& params = f.model.parameters();
    const auto base = params;
    const auto x0 = f.x;
    for (const bool move_input : {false, true}) {
        CAPTURE(move_input);
        auto move = [&](double h) {
            for (std::size_t i = 0; i < params.size(); ++i) params[i] = base[i] + h * v[i];
            if (move_input)
                for (std::size_t i = 0; i < f.x.size(); ++i) f.x[i] = x0[i] + h * x_dir[i];
        };
        const auto numeric = numeric_directional(move, [&] { return full_gradient(f); });

        // forward, tangent, backward, then the loss's gradient tangent and backward_tangent.
        auto [d0, d1] = f.head_gradients();
        f.model.tangent(&v, move_input ? x_dir.data() : nullptr);
        std::vector<double> d0_dot(d0.size()), d1_dot(d1.size());
        f.ce.gradient_tangent(f.model.output(0), f.model.output_tangent(0), fixture::batch, 3, loss::hard_targets{f.y0.data()},
                              nullptr, d0_dot.data());
        f.ce.gradient_tangent(f.model.output(1), f.model.output_tangent(1), fixture::batch, 4,
                              loss::soft_targets<double>{f.t1.data()}, nullptr, d1_dot.data());
        std::vector<double> dx(f.x.size(), 0.0);
        f.model.backward_input({d0.data(), d1.data()}, dx.data());
        auto hv = f.model.make_arena();
        std::vector<double> dx_dot(f.x.size(), 0.0);
        f.model.backward_tangent({d0.data(), d1.data()}, {d0_dot.data(), d1_dot.data()}, hv.span(), dx_dot.data());
        std::vector<double> analytic(hv.begin(), hv.end());
        analytic.insert(analytic.end(), dx_dot.begin(), dx_dot.end());
        CHECK(relative_error(analytic, numeric) < 1e-6);
    }

    // Per task: the rows sum to the joint product.
    auto [d0, d1] = f.head_gradients();
    f.model.tangent(&v);
    std::vector<double> d0_dot(d0.size()), d1_dot(d1.size());
    f.ce.gradient_tangent(f.model.output(0), f.model.output_tangent(0), fixture::batch, 3, loss::hard_targets{f.y0.data()}, nullptr,
                          d0_dot.data());
    f.ce.gradient_tangent(f.model.output(1), f.model.output_tangent(1), fixture::batch, 4, loss::soft_targets<double>{f.t1.data()},
                          nullptr, d1_dot.data());
    auto joint = f.model.make_arena();
    f.model.backward_input({d0.data(), d1.data()});
    f.model.backward_tangent({d0.data(), d1.data()}, {d0_dot.data(), d1_dot.data()}, joint.span());
    auto row0 = f.model.make_arena();
    auto row1 = f.model.make_arena();
    f.model.backward_input({d0.data(), nullptr});
    f.model.backward_tangent_head(0, d0.data(), d0_dot.data(), row0.span());
    f.model.backward_input({nullptr, d1.data()});
    f.model.backward_tangent_head(1, d1.data(), d1_dot.data(), row1.span());
    double worst = 0;
    for (std::size_t i = 0; i < joint.size(); ++i) worst = std::max(worst, std::abs(joint[i] - row0[i] - row1[i]));
    CHECK(worst < 1e-12);

    // An input-gradient tangent needs a backward that computed the input gradient.
    f.model.backward_input({d0.data(), d1.data()});
    std::vector<double> dx_dot(f.x.size());
    CHECK_THROWS_WITH_AS(f.model.backward_tangent({d0.data(), d1.data()}, {d0_dot.data(), d1_dot.data()}, joint.span(), dx_dot.data()),
                         doctest::Contains("input gradient"), error);
}

TEST_CASE("single-chain network backward_tangent matches a finite difference of its gradient") {
    using spec = nn::sequential<nn::input<2, 5, 5>, nn::conv2d<3, 3, 1, 1, nn::tanh, nn::max_pool2d<2>>, nn::flatten,
                                nn::dense<6>, nn::relu, nn::dense<3>>;
    nn::basic_network<double, spec> net(3);
    rng gen(19, "init");
    net.init(gen, nn::init_scheme::he_normal);
    auto x = random_vector(3 * 50, gen);
    const auto r = random_vector(3 * 3, gen);
    auto v = net.make_arena();
    for (auto& e : v) e = gen.normal();
    const auto x_dir = random_vector(x.size(), gen);
    auto& params = net.parameters();
    const auto base = params;
    const auto x0 = x;
    // f = ⟨r, net(θ, x)⟩ + ½‖net(θ, x)‖²: the upstream gradient r + y moves with the output.
    auto gradient = [&] {
        const double* y = net.forward(x.data(), 3);
        std::vector<double> dy(r);
        for (std::size_t i = 0; i < dy.size(); ++i) dy[i] += y[i];
        auto grad = net.make_arena();
        std::vector<double> dx(x.size(), 0.0);
        net.backward(dy.data(), grad, dx.data());
        std::vector<double> out(grad.begin(), grad.end());
        out.insert(out.end(), dx.begin(), dx.end());
        return out;
    };
    auto move = [&](double h) {
        for (std::size_t i = 0; i < params.size(); ++i) params[i] = base[i] + h * v[i];
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = x0[i] + h * x_dir[i];
    };
    const auto numeric = numeric_directional(move, gradient);
    const double* y = net.forward(x.data(), 3);
    std::vector<double> dy(r);
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] += y[i];
    const double* y_dot = net.tangent(&v, x_dir.data());
    std::vector<double> dy_dot(y_dot, y_dot + dy.size());  // d(r + y) = ẏ
    std::vector<double> dx(x.size(), 0.0);
    net.backward_input(dy.data(), dx.data());
    auto hv = net.make_arena();
    std::vector<double> dx_dot(x.size(), 0.0);
    net.backward_tangent(dy.data(), dy_dot.data(), &hv, dx_dot.data());
    std::vector<double> analytic(hv.begin(), hv.end());
    analytic.insert(analytic.end(), dx_dot.begin(), dx_dot.end());
    CHECK(relative_error(analytic, numeric) < 1e-6);
}

TEST_CASE("a trunk with fused activations and pooling gives the bits of the same trunk with separate layers") {
    // The fused convolutions sit first (no input gradient asked; with its pooling) and in the middle
    // (the block asks it to write its input gradient); the block hands each one its own output.
    using separate = nn::sequential<nn::input<2, 8, 8>, nn::conv2d<4, 3, 1, 1>, nn::relu, nn::max_pool2d<2>,
                                    nn::conv2d<5, 3, 1, 1>, nn::tanh, nn::flatten, nn::dense<6>, nn::relu>;
    using fused = nn::sequential<nn::input<2, 8, 8>, nn::conv2d<4, 3, 1, 1, nn::relu, nn::max_pool2d<2>>,
                                 nn::conv2d<5, 3, 1, 1, nn::tanh>, nn::flatten, nn::dense<6>, nn::relu>;
    using model_a = nn::multi_task<separate, nn::head<nn::dense<3>>, nn::head<nn::dense<4>>>;
    using model_b = nn::multi_task<fused, nn::head<nn::dense<3>>, nn::head<nn::dense<4>>>;
    static_assert(model_a::parameter_count == model_b::parameter_count);
    constexpr std::size_t batch = 6;
    model_a a(batch);
    model_b b(batch);
    rng init(3, "init");
    a.init(init);
    std::copy(a.parameters().begin(), a.parameters().end(), b.parameters().begin());
    rng gen(3, "data");
    std::vector<float> x(batch * 128), d0(batch * 3), d1(batch * 4), x_dot(x.size());
    for (auto& v : x) v = float(gen.normal());
    for (auto& v : d0) v = float(gen.normal());
    for (auto& v : d1) v = float(gen.normal());
    for (auto& v : x_dot) v = float(gen.normal());
    auto direction = a.make_arena();
    for (auto& v : direction) v = float(gen.normal());
    auto direction_b = b.make_arena();
    std::copy(direction.begin(), direction.end(), direction_b.begin());

    a.forward(x.data(), batch);
    b.forward(x.data(), batch);
    for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t width = k == 0 ? 3 : 4;
        CHECK(std::equal(a.output(k), a.output(k) + batch * width, b.output(k)));
    }
    auto grad_a = a.make_arena(), grad_b = b.make_arena();
    std::vector<float> dx_a(x.size(), 0.0f), dx_b(x.size(), 0.0f);
    for (int pass = 0; pass < 2; ++pass) {  // twice: the second pass must not see the first one's buffers
        a.backward({d0.data(), d1.data()}, grad_a, dx_a.data());
        b.backward({d0.data(), d1.data()}, grad_b, dx_b.data());
        CHECK(std::equal(grad_a.begin(), grad_a.end(), grad_b.begin()));
        CHECK(dx_a == dx_b);
    }
    a.tangent(&direction, x_dot.data());
    b.tangent(&direction_b, x_dot.data());
    for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t width = k == 0 ? 3 : 4;
        CHECK(std::equal(a.output_tangent(k), a.output_tangent(k) + batch * width, b.output_tangent(k)));
    }
}

namespace {
/// f(θ, x) = ⟨r, net(θ, x)⟩ for a single-chain network and a batch of x.size() / input_size rows.
template <class Net>
auto weighted_output(Net& net, std::vector<double>& x, const std::vector<double>& r) {
    return [&net, &x, &r] {
        const double* y = net.forward(x.data(), x.size() / Net::input_size);
        double s = 0;
        for (std::size_t i = 0; i < r.size(); ++i) s += r[i] * y[i];
        return s;
    };
}
}  // namespace

TEST_CASE("single-chain network gradient and tangent match finite differences") {
    using spec = nn::sequential<nn::input<5>, nn::dense<7>, nn::tanh, nn::dense<3>>;
    nn::basic_network<double, spec> net(4);
    rng gen(9, "init");
    net.init(gen, nn::init_scheme::he_normal);
    auto x = random_vector(4 * 5, gen);
    const auto r = random_vector(4 * 3, gen);
    const auto f = weighted_output(net, x, r);
    f();
    auto grad = net.make_arena();
    net.backward(r.data(), grad);
    const auto numeric = numeric_gradient(f, net.parameters().data(), net.parameters().size());
    CHECK(relative_error(std::vector<double>(grad.begin(), grad.end()), numeric) < 1e-6);
    std::vector<double> dx(x.size(), 0.0);
    f();
    net.backward_input(r.data(), dx.data());
    CHECK(relative_error(dx, numeric_gradient(f, x.data(), x.size())) < 1e-6);
}

namespace {
using auxl::testing::scale_by_two;
static_assert(!nn::assigns_input_gradient<scale_by_two::layer<double, shape<4>>>);
}  // namespace

TEST_CASE("a layer that only adds into dx gets a zeroed buffer on every backward") {
    // Built-in layers around it write their input gradients; this one must still see zeros, or
    // the second backward would add onto the first one's gradient.
    using spec = nn::sequential<nn::input<5>, nn::dense<7>, scale_by_two, nn::relu, nn::dense<3>, scale_by_two>;
    nn::basic_network<double, spec> net(4);
    rng gen(10, "init");
    net.init(gen, nn::init_scheme::he_normal);
    auto x = random_vector(4 * 5, gen);
    const auto r = random_vector(4 * 3, gen);
    const auto f = weighted_output(net, x, r);
    const auto numeric = numeric_gradient(f, net.parameters().data(), net.parameters().size());
    for (int pass = 0; pass < 2; ++pass) {
        CAPTURE(pass);
        f();
        auto grad = net.make_arena();
        net.backward(r.data(), grad);
        CHECK(relative_error(std::vector<double>(grad.begin(), grad.end()), numeric) < 1e-6);
    }
}

namespace {
/// A dense layer (nn::dense's own code) that records whether its last backward was asked for an
/// input gradient and whether its last tangent got an input tangent.
struct probed_dense {
    static inline bool backward_got_dx = false, tangent_got_x_dot = false;
    template <class T, class In>
    struct layer : nn::dense<3>::layer<T, In> {
        void backward(const nn::layer_context<T>& ctx, const T* x, const T* y, const T* dy, T* dx) const {
            backward_got_dx = dx != nullptr;
            nn::dense<3>::layer<T, In>::backward(ctx, x, y, dy, dx);
        }
        void tangent(const nn::layer_context<T>& ctx, const T* x, const T* x_dot, const T* y, T* y_dot) const {
            tangent_got_x_dot = x_dot != nullptr;
            nn::dense<3>::layer<T, In>::tangent(ctx, x, x_dot, y, y_dot);
        }
    };
};
}  // namespace

TEST_CASE("layers before the first one with parameters cost nothing when no input gradient is asked for") {
    // An MLP starts with flatten: its first dense layer used to compute the gradient with respect
    // to flatten's output, a GEMM as large as its weight gradient's, that nothing read.
    using spec = nn::sequential<nn::input<1, 2, 3>, nn::flatten, scale_by_two, probed_dense, nn::tanh, nn::dense<2>>;
    nn::basic_network<double, spec> net(4);
    rng gen(11, "init");
    net.init(gen, nn::init_scheme::he_normal);
    auto x = random_vector(4 * 6, gen);
    const auto r = random_vector(4 * 2, gen);
    const auto f = weighted_output(net, x, r);
    const auto numeric = numeric_gradient(f, net.parameters().data(), net.parameters().size());

    f();
    auto grad = net.make_arena();
    net.backward(r.data(), grad);
    CHECK_FALSE(probed_dense::backward_got_dx);
    CHECK(relative_error(std::vector<double>(grad.begin(), grad.end()), numeric) < 1e-6);

    // Asked for dx, every layer runs and the input gradient is right.
    f();
    std::vector<double> dx(x.size(), 0.0);
    auto grad2 = net.make_arena();
    net.backward(r.data(), grad2, dx.data());
    CHECK(probed_dense::backward_got_dx);
    CHECK(std::equal(grad.begin(), grad.end(), grad2.begin()));
    CHECK(relative_error(dx, numeric_gradient(f, x.data(), x.size())) < 1e-6);

    // Tangent along the parameters only: the input tangent of the first dense layer is zero and
    // is not formed; the output tangent still matches a finite difference.
    auto direction = net.make_arena();
    const auto v = random_vector(direction.size(), gen);
    std::copy(v.begin(), v.end(), direction.begin());
    f();
    const double* y_dot = net.tangent(&direction);
    CHECK_FALSE(probed_dense::tangent_got_x_dot);
    std::vector<double> analytic(y_dot, y_dot + 4 * 2);
    std::vector<double> numeric_dot(4 * 2);
    const auto base = std::vector<double>(net.parameters().begin(), net.parameters().end());
    const double h = 1e-6;
    for (int side = 0; side < 2; ++side) {
        const double s = side == 0 ? h : -h;
        for (std::size_t i = 0; i < base.size(); ++i) net.parameters()[i] = base[i] + s * v[i];
        const double* y = net.forward(x.data(), 4);
        for (std::size_t i = 0; i < numeric_dot.size(); ++i) numeric_dot[i] += (side == 0 ? 1 : -1) * y[i] / (2 * h);
    }
    std::copy(base.begin(), base.end(), net.parameters().begin());
    CHECK(relative_error(analytic, numeric_dot) < 1e-6);

    // With an input tangent it is passed on.
    f();
    const auto x_dot = random_vector(x.size(), gen);
    net.tangent(&direction, x_dot.data());
    CHECK(probed_dense::tangent_got_x_dot);
}

TEST_CASE("data of the wrong width is a shape_error naming both widths") {
    mlp_model model(8);
    xt::xtensor<float, 2> wrong = xt::zeros<float>({4, 783});
    CHECK_THROWS_WITH_AS(model.forward(wrong),
                         "auxl::nn::multi_task::forward: each input example must have 784 values but the data has 783 "
                         "per row (4 rows)",
                         shape_error);
    xt::xtensor<float, 4> images = xt::zeros<float>({2, 1, 28, 28});
    CHECK_NOTHROW(model.forward(images));  // 1x28x28 = 784 values per example is fine
}

TEST_CASE("a batch larger than the workspace is a shape_error that says how to fix it") {
    mlp_model model(8);
    xt::xtensor<float, 2> big = xt::zeros<float>({9, 784});
    CHECK_THROWS_WITH_AS(model.forward(big), doctest::Contains("batch of 9 rows exceeds the workspace reserved for 8"),
                         shape_error);
    model.reserve(9);
    CHECK_NOTHROW(model.forward(big));
}

TEST_CASE("NaN or Inf in the input is a value_error naming the row and column") {
    mlp_model model(4);
    xt::xtensor<float, 2> x = xt::zeros<float>({3, 784});
    x(2, 17) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(model.forward(x), doctest::Contains("input row 2 column 17 is NaN"), value_error);
    x(2, 17) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(model.forward(x), doctest::Contains("is infinite"), value_error);
}

TEST_CASE("backward before forward, a wrong arena and an unknown task are clear errors") {
    mlp_model model(4);
    auto grad = model.make_arena();
    std::vector<float> dy(4 * 5, 0.0f);
    CHECK_THROWS_WITH_AS(model.backward_head(0, dy.data(), grad), doctest::Contains("before any forward"), error);
    arena<float> wrong(10);
    CHECK_THROWS_AS(model.backward_head(0, dy.data(), wrong), shape_error);
    CHECK_THROWS_AS(model.backward_head(2, dy.data(), grad), shape_error);
}
