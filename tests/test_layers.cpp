// Every layer's backward (parameters and input) and tangent (JVP) against central finite
// differences in double precision, on several shapes and random batch sizes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "auxl/core/blas.hpp"
#include "auxl/nn/block.hpp"
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/dense.hpp"
#include "auxl/nn/dropout.hpp"
#include "auxl/nn/flatten.hpp"
#include "auxl/nn/leaky_relu.hpp"
#include "auxl/nn/max_pool2d.hpp"
#include "auxl/nn/relu.hpp"
#include "auxl/nn/sigmoid.hpp"
#include "auxl/nn/tanh.hpp"
#include "gradcheck.hpp"

using namespace auxl;
using auxl::testing::numeric_directional;
using auxl::testing::numeric_gradient;
using auxl::testing::random_vector;
using auxl::testing::relative_error;

namespace {

constexpr double tolerance = 1e-6;

/// backward_tangent (exact second-order pass) against a central difference of backward's
/// results (parameter gradient, input gradient) as θ, x and dy move along p_dir, x_dir, dy_dir.
template <class L>
void check_backward_tangent(L& layer, const nn::layer_context<double>& ctx, std::vector<double>& params,
                            std::vector<double>& x, std::vector<double>& y, const std::vector<double>& dy,
                            const std::vector<double>& p_dir, const std::vector<double>& x_dir, rng& gen) {
    static_assert(nn::has_backward_tangent<L>, "every built-in layer has the exact second-order pass");
    const auto dy_dir = random_vector(dy.size(), gen);
    const auto base_params = params;
    const auto base_x = x;
    std::vector<double> moved_dy = dy;
    auto move = [&](double t) {
        for (std::size_t i = 0; i < params.size(); ++i) params[i] = base_params[i] + t * p_dir[i];
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = base_x[i] + t * x_dir[i];
        for (std::size_t i = 0; i < dy.size(); ++i) moved_dy[i] = dy[i] + t * dy_dir[i];
    };
    auto eval = [&] {  // (∂/∂θ, ∂/∂x) of ⟨dy, layer(θ, x)⟩ at the moved point
        layer.forward(ctx, x.data(), y.data());
        std::vector<double> grad(params.size(), 0.0), dx(x.size(), 0.0);
        nn::layer_context<double> bctx = ctx;
        bctx.grad = grad.data();
        layer.backward(bctx, x.data(), y.data(), moved_dy.data(), dx.data());
        grad.resize(L::parameter_count);
        grad.insert(grad.end(), dx.begin(), dx.end());
        return grad;
    };
    const auto numeric = numeric_directional(move, eval);

    layer.forward(ctx, x.data(), y.data());
    std::vector<double> y_dot(y.size());
    nn::layer_context<double> tctx = ctx;
    tctx.param_tangent = L::parameter_count > 0 ? p_dir.data() : nullptr;
    layer.tangent(tctx, x.data(), x_dir.data(), y.data(), y_dot.data());
    // It adds: start from non-zero values and subtract them.
    std::vector<double> grad_dot(params.size(), 0.25), dx_dot(x.size(), -0.5);
    tctx.grad = grad_dot.data();
    layer.backward_tangent(tctx, x.data(), x_dir.data(), y.data(), y_dot.data(), dy.data(), dy_dir.data(), dx_dot.data());
    std::vector<double> analytic(grad_dot.begin(), grad_dot.begin() + L::parameter_count);
    for (auto& g : analytic) g -= 0.25;
    for (double d : dx_dot) analytic.push_back(d + 0.5);
    CHECK(relative_error(analytic, numeric) < tolerance);

    // With no parameter or input direction it is backward applied to dy_dir.
    layer.tangent(ctx, x.data(), nullptr, y.data(), y_dot.data());
    std::vector<double> grad_a(params.size(), 0.0), dx_a(x.size(), 0.0), grad_b(params.size(), 0.0), dx_b(x.size(), 0.0);
    nn::layer_context<double> zctx = ctx;
    zctx.grad = grad_a.data();
    layer.backward_tangent(zctx, x.data(), nullptr, y.data(), y_dot.data(), dy.data(), dy_dir.data(), dx_a.data());
    zctx.grad = grad_b.data();
    layer.backward(zctx, x.data(), y.data(), dy_dir.data(), dx_b.data());
    CHECK(relative_error(grad_a, grad_b, 1e-30) < 1e-14);
    CHECK(relative_error(dx_a, dx_b, 1e-30) < 1e-14);
}

/// Checks backward and tangent of Spec bound to input shape In.  The test function is
/// f(θ, x) = ⟨r, layer(θ, x)⟩ for a fixed random r.
template <class Spec, class In>
void check_layer(std::uint64_t seed, bool training = false) {
    using L = typename Spec::template layer<double, In>;
    rng gen(seed, "layer-test");
    const std::size_t batch = 1 + gen.below(4);
    constexpr std::size_t in_size = In::size;
    constexpr std::size_t out_size = L::output_shape::size;
    CAPTURE(L::name());
    CAPTURE(batch);

    L layer;
    layer.reserve(batch);
    std::vector<double> params(L::parameter_count + 1, 0.0);
    layer.init(params.data(), gen, nn::init_scheme::xavier_normal);
    for (auto s : L::segments()) {  // non-zero biases so they matter
        if (s.name == "bias")
            for (std::size_t i = 0; i < s.size; ++i) params[s.offset + i] = gen.normal(0.0, 0.5);
    }
    auto x = random_vector(batch * in_size, gen);
    const auto r = random_vector(batch * out_size, gen);
    std::vector<double> y(batch * out_size);
    rng dropout_stream(seed, "dropout");

    nn::layer_context<double> ctx;
    ctx.params = params.data();
    ctx.batch = batch;
    ctx.training = training;
    ctx.dropout = &dropout_stream;
    layer.forward(ctx, x.data(), y.data());
    ctx.reuse_masks = true;  // every later pass sees the same dropout mask

    auto f = [&] {
        layer.forward(ctx, x.data(), y.data());
        double s = 0;
        for (std::size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
        return s;
    };

    // Analytic: backward adds into grad and dx, so start them from a non-zero value and subtract.
    f();
    std::vector<double> grad(params.size(), 0.25), dx(x.size(), -0.5);
    nn::layer_context<double> bctx = ctx;
    bctx.grad = grad.data();
    layer.backward(bctx, x.data(), y.data(), r.data(), dx.data());
    for (auto& g : grad) g -= 0.25;
    for (auto& g : dx) g += 0.5;

    if constexpr (L::parameter_count > 0) {
        std::vector<double> numeric = numeric_gradient(f, params.data(), L::parameter_count);
        std::vector<double> analytic(grad.begin(), grad.begin() + L::parameter_count);
        CHECK(relative_error(analytic, numeric) < tolerance);
    }
    const auto numeric_dx = numeric_gradient(f, x.data(), x.size());
    CHECK(relative_error(dx, numeric_dx) < tolerance);

    // Every built-in layer can write its input gradient (the block then skips zeroing the buffer
    // between layers).  Written onto NaN garbage it must equal the sum onto zeros exactly, and the
    // parameter gradient must not change.
    static_assert(nn::assigns_input_gradient<L>, "built-in layers write dx when asked (nn/context.hpp)");
    {
        f();
        std::vector<double> grad_add(params.size(), 0.0), dx_add(x.size(), 0.0);
        std::vector<double> grad_set(params.size(), 0.0), dx_set(x.size(), std::nan(""));
        nn::layer_context<double> actx = ctx;
        actx.grad = grad_add.data();
        layer.backward(actx, x.data(), y.data(), r.data(), dx_add.data());
        actx.grad = grad_set.data();
        actx.assign_dx = true;
        layer.backward(actx, x.data(), y.data(), r.data(), dx_set.data());
        CHECK(dx_set == dx_add);
        CHECK(grad_set == grad_add);
    }

    // Tangent along a random parameter direction and a random input direction.
    const auto p_dir = random_vector(params.size(), gen);
    const auto x_dir = random_vector(x.size(), gen);
    const auto base_params = params;
    const auto base_x = x;
    auto move = [&](double t) {
        for (std::size_t i = 0; i < params.size(); ++i) params[i] = base_params[i] + t * p_dir[i];
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = base_x[i] + t * x_dir[i];
    };
    auto eval = [&] {
        layer.forward(ctx, x.data(), y.data());
        return y;
    };
    const auto numeric_dot = numeric_directional(move, eval);
    f();
    std::vector<double> y_dot(y.size(), 99.0);  // tangent must overwrite
    nn::layer_context<double> tctx = ctx;
    tctx.param_tangent = L::parameter_count > 0 ? p_dir.data() : nullptr;
    layer.tangent(tctx, x.data(), x_dir.data(), y.data(), y_dot.data());
    CHECK(relative_error(y_dot, numeric_dot) < tolerance);

    // A null input tangent and a null parameter tangent mean zero.
    tctx.param_tangent = nullptr;
    layer.tangent(tctx, x.data(), nullptr, y.data(), y_dot.data());
    for (double v : y_dot) CHECK(v == 0.0);

    check_backward_tangent<L>(layer, ctx, params, x, y, r, p_dir, x_dir, gen);
}

}  // namespace

namespace {
// An activation with no curvature_ratio and not piecewise linear: its layer (and a convolution it
// is fused into) has no second-order pass, so exact products fall back to central differences.
struct no_curvature {
    static const char* name() { return "no_curvature"; }
    template <class T>
    static T value(T x) { return x / (T(1) + (x > T(0) ? x : -x)); }
    template <class T>
    static T slope(T x, T) { const T d = T(1) + (x > T(0) ? x : -x); return T(1) / (d * d); }
    template <class T>
    static T output_slope(T y) { const T d = T(1) - (y > T(0) ? y : -y); return d * d; }
    template <class T, class In>
    using layer = nn::detail::elementwise_layer<T, In, no_curvature>;
};
static_assert(!nn::has_backward_tangent<no_curvature::layer<double, shape<4>>>);
static_assert(!nn::has_backward_tangent<nn::conv2d<2, 3, 1, 1, no_curvature>::layer<double, shape<1, 5, 5>>>);
static_assert(nn::has_backward_tangent<nn::conv2d<2, 3, 1, 1, nn::tanh>::layer<double, shape<1, 5, 5>>>);
}  // namespace

TEST_CASE("dense backward and tangent match finite differences") {
    check_layer<nn::dense<5>, shape<7>>(1);
    check_layer<nn::dense<1>, shape<3>>(2);
    check_layer<nn::dense<9>, shape<1>>(3);
}

TEST_CASE("conv2d backward and tangent match finite differences for strides and paddings") {
    check_layer<nn::conv2d<3, 3>, shape<2, 6, 5>>(4);
    check_layer<nn::conv2d<2, 3, 1, 1>, shape<1, 5, 5>>(5);
    check_layer<nn::conv2d<4, 2, 2, 0>, shape<3, 6, 6>>(6);
    check_layer<nn::conv2d<2, 3, 2, 1>, shape<2, 7, 4>>(7);
    check_layer<nn::conv2d<1, 1>, shape<3, 2, 2>>(8);
    // Eight or more output channels: the bias gradient sums eight channels at a time, plus a remainder.
    check_layer<nn::conv2d<10, 3, 1, 1>, shape<2, 5, 4>>(9);
    check_layer<nn::conv2d<9, 2, 1, 0>, shape<1, 4, 6>>(10);
}

TEST_CASE("conv2d with a fused activation or pooling: backward and tangent match finite differences") {
    check_layer<nn::conv2d<3, 3, 1, 1, nn::relu>, shape<2, 6, 5>>(20);
    check_layer<nn::conv2d<2, 3, 2, 1, nn::tanh>, shape<2, 7, 4>>(21);
    check_layer<nn::conv2d<4, 2, 2, 0, nn::leaky_relu<1, 5>>, shape<3, 6, 6>>(22);
    check_layer<nn::conv2d<9, 2, 1, 0, nn::sigmoid>, shape<1, 4, 6>>(23);
    check_layer<nn::conv2d<3, 3, 1, 1, nn::tanh, nn::max_pool2d<2>>, shape<2, 6, 5>>(24);
    check_layer<nn::conv2d<2, 3, 1, 0, nn::sigmoid, nn::max_pool2d<2, 3>>, shape<1, 9, 8>>(25);
    check_layer<nn::conv2d<4, 3, 1, 1, nn::no_activation, nn::max_pool2d<2>>, shape<2, 6, 6>>(26);
}

namespace {
/// A conv2d with a fused activation (and pooling) against the same layers run separately, as a
/// block runs them: forward, backward (adding, and assigning onto garbage) and tangent must give
/// the same bits, since the fused layer makes the same operations in the same order, one sample at
/// a time.
template <class Fused, class In, class... Separate>
void check_fused_equals_chain(std::uint64_t seed, int threads) {
    using T = float;
    using F = typename Fused::template layer<T, In>;
    using chain = nn::block<T, In, Separate...>;
    static_assert(F::parameter_count == chain::parameter_count);
    static_assert(F::output_shape::size == chain::output_size);
    constexpr std::size_t batch = 5, out = chain::output_size;
    rng gen(seed, "fused-conv");
    auto draw = [&](std::size_t n) {
        std::vector<T> v(n);
        for (auto& e : v) e = T(gen.normal());
        return v;
    };
    const auto params = draw(F::parameter_count), x = draw(batch * In::size), dy = draw(batch * out);
    const auto p_dot = draw(F::parameter_count), x_dot = draw(batch * In::size);
    const int threads_before = gemm_threads();
    set_gemm_threads(threads);
    chain separate;
    separate.reserve(batch);
    F fused;
    fused.reserve(batch);
    nn::layer_context<T> ctx{};
    ctx.params = params.data();
    ctx.batch = batch;

    const T* y_chain = separate.forward(params.data(), x.data(), batch, {});
    std::vector<T> y_fused(batch * out);
    fused.forward(ctx, x.data(), y_fused.data());
    CHECK(std::equal(y_fused.begin(), y_fused.end(), y_chain));

    for (bool assign : {false, true}) {  // adding onto −1, or writing onto NaN (= adding onto 0)
        CAPTURE(assign);
        std::vector<T> grad_chain(F::parameter_count, T(0.5)), dx_chain(x.size(), assign ? T(0) : T(-1));
        separate.backward(params.data(), grad_chain.data(), dy.data(), dx_chain.data());
        std::vector<T> grad_fused(F::parameter_count, T(0.5)), dx_fused(x.size(), assign ? std::nanf("") : T(-1));
        nn::layer_context<T> bctx = ctx;
        bctx.assign_dx = assign;
        bctx.grad = grad_fused.data();
        fused.backward(bctx, x.data(), y_fused.data(), dy.data(), dx_fused.data());
        CHECK(grad_fused == grad_chain);
        CHECK(dx_fused == dx_chain);
    }

    const T* dot_chain = separate.tangent(params.data(), p_dot.data(), x_dot.data());
    std::vector<T> dot_fused(batch * out, T(7));
    nn::layer_context<T> tctx = ctx;
    tctx.param_tangent = p_dot.data();
    fused.tangent(tctx, x.data(), x_dot.data(), y_fused.data(), dot_fused.data());
    CHECK(std::equal(dot_fused.begin(), dot_fused.end(), dot_chain));
    set_gemm_threads(threads_before);
}
}  // namespace

TEST_CASE("conv2d with a fused activation and pooling gives the bits of the separate layers") {
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        check_fused_equals_chain<nn::conv2d<8, 3, 1, 1, nn::relu>, shape<2, 12, 12>, nn::conv2d<8, 3, 1, 1>, nn::relu>(1, threads);
        check_fused_equals_chain<nn::conv2d<3, 3, 2, 1, nn::leaky_relu<>>, shape<2, 7, 4>, nn::conv2d<3, 3, 2, 1>,
                                 nn::leaky_relu<>>(2, threads);
        check_fused_equals_chain<nn::conv2d<4, 2, 1, 0, nn::tanh>, shape<3, 6, 6>, nn::conv2d<4, 2>, nn::tanh>(3, threads);
        check_fused_equals_chain<nn::conv2d<5, 3, 1, 1, nn::sigmoid>, shape<1, 5, 9>, nn::conv2d<5, 3, 1, 1>, nn::sigmoid>(
            4, threads);
        // With pooling: the demo's 2 x 2, a width that leaves a column out, a 3 x 3 window with
        // stride 3, and pooling without an activation.
        check_fused_equals_chain<nn::conv2d<8, 3, 1, 1, nn::relu, nn::max_pool2d<2>>, shape<2, 12, 12>,
                                 nn::conv2d<8, 3, 1, 1>, nn::relu, nn::max_pool2d<2>>(5, threads);
        check_fused_equals_chain<nn::conv2d<3, 3, 1, 1, nn::tanh, nn::max_pool2d<2>>, shape<2, 7, 5>,
                                 nn::conv2d<3, 3, 1, 1>, nn::tanh, nn::max_pool2d<2>>(6, threads);
        check_fused_equals_chain<nn::conv2d<4, 2, 1, 0, nn::leaky_relu<1, 5>, nn::max_pool2d<3>>, shape<1, 10, 8>,
                                 nn::conv2d<4, 2>, nn::leaky_relu<1, 5>, nn::max_pool2d<3>>(7, threads);
        check_fused_equals_chain<nn::conv2d<2, 3, 1, 1, nn::no_activation, nn::max_pool2d<2, 3>>, shape<2, 8, 8>,
                                 nn::conv2d<2, 3, 1, 1>, nn::max_pool2d<2, 3>>(8, threads);
    }
}

namespace {
/// conv2d's forward against a direct seven-loop convolution, in precision T.
template <class T, std::size_t OutC, std::size_t K, std::size_t S, std::size_t P, class In>
void check_conv_against_direct(std::uint64_t seed) {
    using L = typename nn::conv2d<OutC, K, S, P>::template layer<T, In>;
    constexpr std::size_t batch = 3, C = In::channels, H = In::height, W = In::width;
    rng gen(seed, "conv-direct");
    std::vector<T> params(L::parameter_count), x(batch * In::size), y(batch * L::output_shape::size);
    for (auto& v : params) v = T(gen.normal());
    for (auto& v : x) v = T(gen.normal());
    L layer;
    layer.reserve(batch);
    nn::layer_context<T> ctx{};
    ctx.params = params.data();
    ctx.batch = batch;
    layer.forward(ctx, x.data(), y.data());
    double worst = 0;
    for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t o = 0; o < OutC; ++o)
            for (std::size_t oh = 0; oh < L::out_h; ++oh)
                for (std::size_t ow = 0; ow < L::out_w; ++ow) {
                    double sum = double(params[L::bias_offset + o]);
                    for (std::size_t c = 0; c < C; ++c)
                        for (std::size_t kh = 0; kh < K; ++kh)
                            for (std::size_t kw = 0; kw < K; ++kw) {
                                const auto ih = std::ptrdiff_t(oh * S + kh) - std::ptrdiff_t(P);
                                const auto iw = std::ptrdiff_t(ow * S + kw) - std::ptrdiff_t(P);
                                if (ih < 0 || iw < 0 || ih >= std::ptrdiff_t(H) || iw >= std::ptrdiff_t(W)) continue;
                                sum += double(params[((o * C + c) * K + kh) * K + kw]) *
                                       double(x[n * In::size + (c * H + std::size_t(ih)) * W + std::size_t(iw)]);
                            }
                    const double got = double(y[n * L::output_shape::size + (o * L::out_h + oh) * L::out_w + ow]);
                    worst = std::max(worst, std::abs(got - sum));
                }
    CAPTURE(L::name());
    CHECK(worst < (sizeof(T) == 4 ? 1e-4 : 1e-12));
}
}  // namespace

// g++ 12.2 at -O3 with AVX (-march=native, auxl::native) once miscompiled im2col's per-pixel
// `inside ? x : 0` for small padded widths (1 x 5 x 5 with padding 1 dropped pixels); the
// finite-difference checks above only caught it in double.  A direct comparison in both precisions.
TEST_CASE("conv2d forward equals a direct convolution, float and double, padded and strided") {
    check_conv_against_direct<float, 2, 3, 1, 1, shape<1, 5, 5>>(1);
    check_conv_against_direct<double, 2, 3, 1, 1, shape<1, 5, 5>>(2);
    check_conv_against_direct<float, 3, 3, 2, 1, shape<2, 7, 4>>(3);
    check_conv_against_direct<double, 4, 2, 2, 0, shape<3, 6, 6>>(4);
    check_conv_against_direct<float, 2, 5, 1, 2, shape<1, 3, 9>>(5);   // kernel wider than the image
    check_conv_against_direct<float, 8, 3, 1, 1, shape<1, 28, 28>>(6);  // the demo CNN's first layer
}

TEST_CASE("conv2d splits a batch among GEMM threads: same outputs, same gradients up to rounding, repeatable") {
    // With the Eigen backend and OpenMP the samples run on several workers and the weight gradient
    // is summed per worker; with OpenBLAS there is one worker and everything is identical.
    using L = nn::conv2d<8, 3, 1, 1>::layer<float, shape<3, 12, 12>>;
    constexpr std::size_t batch = 7;  // not a multiple of the thread count
    rng gen(12, "conv-threads");
    std::vector<float> params(L::parameter_count), x(batch * 3 * 12 * 12), dy(batch * L::output_shape::size);
    for (auto& v : params) v = float(gen.normal());
    for (auto& v : x) v = float(gen.normal());
    for (auto& v : dy) v = float(gen.normal());
    struct result {
        std::vector<float> y, dx, grad;
    };
    auto run = [&](int threads) {
        set_gemm_threads(1);
        L layer;
        layer.reserve(batch);  // sized for one thread; the passes below must grow the workspace
        set_gemm_threads(threads);
        result r{std::vector<float>(dy.size()), std::vector<float>(x.size(), 0.0f), std::vector<float>(params.size(), 0.0f)};
        nn::layer_context<float> ctx{};
        ctx.params = params.data();
        ctx.batch = batch;
        ctx.grad = r.grad.data();
        layer.forward(ctx, x.data(), r.y.data());
        layer.backward(ctx, x.data(), r.y.data(), dy.data(), r.dx.data());
        return r;
    };
    const int threads_before = gemm_threads();
    const result one = run(1), two = run(2), two_again = run(2);
    set_gemm_threads(threads_before);
    CHECK(one.y == two.y);    // each sample's products are computed the same way on any worker
    CHECK(one.dx == two.dx);
    CHECK(two.grad == two_again.grad);  // the same thread count gives the same bits
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < one.grad.size(); ++i) {
        worst = std::max(worst, double(std::abs(one.grad[i] - two.grad[i])));
        scale = std::max(scale, double(std::abs(one.grad[i])));
    }
    CHECK(worst <= 1e-5 * scale);  // only the order of the per-sample sums differs
    MESSAGE("conv2d weight gradient, 1 vs 2 threads: largest difference " << worst << " of largest entry " << scale);
}

TEST_CASE("max_pool2d backward and tangent match finite differences") {
    check_layer<nn::max_pool2d<2>, shape<2, 4, 6>>(9);
    check_layer<nn::max_pool2d<3, 2>, shape<1, 7, 5>>(10);
    check_layer<nn::max_pool2d<2>, shape<2, 5, 7>>(19);  // a last row and column no window covers
}

TEST_CASE("max_pool2d<2> keeps the first maximum of a window on ties") {
    // One 4 x 4 plane, four windows: all equal; a tie of the right-hand pair; a unique maximum at
    // the bottom left; a tie between top left and bottom right.  The gradient goes to the first
    // maximum in row-major order, as PyTorch's does.
    using L = nn::max_pool2d<2>::layer<float, shape<1, 4, 4>>;
    const std::vector<float> x = {1, 1, 0, 5,  //
                                  1, 1, 0, 5,  //
                                  2, 0, 7, 0,  //
                                  3, 1, 0, 7};
    L layer;
    layer.reserve(1);
    nn::layer_context<float> ctx;
    ctx.batch = 1;
    std::vector<float> y(4);
    layer.forward(ctx, x.data(), y.data());
    CHECK(y == std::vector<float>{1, 5, 3, 7});
    const std::vector<float> dy = {10, 20, 30, 40};
    std::vector<float> dx(16, 0.0f);
    layer.backward(ctx, x.data(), y.data(), dy.data(), dx.data());
    CHECK(dx == std::vector<float>{10, 0, 0, 20,  //
                                   0, 0, 0, 0,    //
                                   0, 0, 40, 0,   //
                                   30, 0, 0, 0});
}

// The plain loop every max pooling is defined by: the first strict maximum of each window in
// row-major order.  The layer's loops are branch-free; this checks them against it, value and index.
template <std::size_t K, std::size_t S, class In>
void check_pooling_against_plain_loop(std::uint64_t seed) {
    using L = typename nn::max_pool2d<K, S>::template layer<float, In>;
    using Out = typename L::output_shape;
    constexpr std::size_t batch = 3;
    rng gen(seed);
    std::vector<float> x(batch * In::size);
    // Few distinct values, many zeros (as after a ReLU): ties in most windows.
    for (auto& v : x) v = std::max(0.0f, float(std::round(1.5 * gen.normal())));
    x[5] = std::numeric_limits<float>::quiet_NaN();  // a NaN is never "greater": skipped unless first
    x[In::width] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y(batch * Out::size);
    std::vector<std::uint32_t> at(y.size());
    L::pool(x.data(), y.data(), at.data(), batch * In::channels);
    std::size_t ties = 0;
    for (std::size_t plane = 0; plane < batch * In::channels; ++plane)
        for (std::size_t oh = 0; oh < Out::height; ++oh)
            for (std::size_t ow = 0; ow < Out::width; ++ow) {
                const std::size_t base = plane * In::height * In::width;
                std::size_t best = base + oh * S * In::width + ow * S;
                std::size_t equal = 0;
                for (std::size_t kh = 0; kh < K; ++kh)
                    for (std::size_t kw = 0; kw < K; ++kw) {
                        const std::size_t i = base + (oh * S + kh) * In::width + ow * S + kw;
                        if (x[i] > x[best]) best = i;
                    }
                for (std::size_t kh = 0; kh < K; ++kh)
                    for (std::size_t kw = 0; kw < K; ++kw)
                        equal += x[base + (oh * S + kh) * In::width + ow * S + kw] == x[best];
                ties += equal > 1;
                const std::size_t o = (plane * Out::height + oh) * Out::width + ow;
                INFO("window " << o);
                CHECK(at[o] == best);
                CHECK(std::memcmp(&y[o], &x[best], sizeof(float)) == 0);
            }
    CHECK(ties > y.size() / 4);  // the data did exercise ties
}

TEST_CASE("max_pool2d's branch-free loops pick what the plain loop picks, ties and NaNs included") {
    check_pooling_against_plain_loop<2, 2, shape<3, 8, 10>>(31);
    check_pooling_against_plain_loop<2, 2, shape<2, 7, 9>>(32);  // a last row and column no window covers
    check_pooling_against_plain_loop<3, 2, shape<2, 9, 7>>(33);
    check_pooling_against_plain_loop<3, 3, shape<1, 9, 12>>(34);
}

TEST_CASE("activation layers backward and tangent match finite differences") {
    check_layer<nn::relu, shape<3, 2, 2>>(11);
    check_layer<nn::leaky_relu<>, shape<10>>(12);
    check_layer<nn::leaky_relu<1, 5>, shape<2, 3, 1>>(13);
    check_layer<nn::tanh, shape<6>>(14);
    check_layer<nn::sigmoid, shape<2, 2, 2>>(15);
}

TEST_CASE("flatten and dropout backward and tangent match finite differences") {
    check_layer<nn::flatten, shape<2, 3, 2>>(16);
    check_layer<nn::dropout<>, shape<12>>(17, /*training=*/true);
    check_layer<nn::dropout<1, 4>, shape<2, 2, 2>>(18, /*training=*/false);
}

TEST_CASE("sigmoid is finite for large negative and positive inputs") {
    CHECK(nn::sigmoid::value(-1000.0) == doctest::Approx(0.0));
    CHECK(nn::sigmoid::value(1000.0) == doctest::Approx(1.0));
    CHECK(nn::sigmoid::value(-1000.0f) >= 0.0f);
}

TEST_CASE("dropout keeps about 1 - p of the units in training and is the identity in evaluation") {
    using L = nn::dropout<1, 4>::layer<float, shape<1000>>;
    L layer;
    layer.reserve(4);
    std::vector<float> x(4000, 1.0f), y(4000);
    rng stream(3, "dropout");
    nn::layer_context<float> ctx;
    ctx.batch = 4;
    ctx.training = true;
    ctx.dropout = &stream;
    layer.forward(ctx, x.data(), y.data());
    std::size_t kept = 0;
    for (float v : y) {
        CHECK((v == 0.0f || v == doctest::Approx(4.0f / 3.0f)));
        kept += v != 0.0f;
    }
    CHECK(kept == doctest::Approx(3000).epsilon(0.05));
    ctx.training = false;
    layer.forward(ctx, x.data(), y.data());
    for (float v : y) CHECK(v == 1.0f);
}

TEST_CASE("a training pass through dropout without an rng stream is a clear error") {
    using L = nn::dropout<>::layer<float, shape<4>>;
    L layer;
    layer.reserve(1);
    std::vector<float> x(4, 1.0f), y(4);
    nn::layer_context<float> ctx;
    ctx.batch = 1;
    ctx.training = true;
    CHECK_THROWS_WITH_AS(layer.forward(ctx, x.data(), y.data()), doctest::Contains("dropout rng stream"), config_error);
}
