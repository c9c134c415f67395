// Must not compile: a fused activation whose slope cannot be read off its output (no output_slope).
#include "auxl/nn/conv2d.hpp"
#include "auxl/nn/elementwise.hpp"
#include "auxl/nn/network.hpp"

struct softsign_like {  // an activation layer of its own is fine; fused, conv2d keeps only y
    static const char* name() { return "softsign_like"; }
    template <class T>
    static T value(T x) { return x / (T(1) + (x > T(0) ? x : -x)); }
    template <class T>
    static T slope(T x, T) { const T d = T(1) + (x > T(0) ? x : -x); return T(1) / (d * d); }
    template <class T, class In>
    using layer = auxl::nn::detail::elementwise_layer<T, In, softsign_like>;
};

using bad = auxl::nn::sequential<auxl::nn::input<1, 6, 6>, auxl::nn::conv2d<2, 3, 1, 0, softsign_like>>;

int main() {
    auxl::nn::network<bad> net(4);
    return static_cast<int>(net.parameter_count);
}
