// auxl/train/type_name.hpp — a readable name of a type, for manifests and messages.
// Taken from the compiler's function signature (g++ and clang agree on the shape), so it is
// stable for one compiler; checkpoints compare it only through a hash written by the same build
// family.
#pragma once

#include <string>

namespace auxl::detail {

template <class X>
std::string type_name() {
    const std::string signature = __PRETTY_FUNCTION__;
    const auto start = signature.find("X = ");
    if (start == std::string::npos) return signature;
    auto end = signature.find_first_of(";]", start);
    return signature.substr(start + 4, end - start - 4);
}

}  // namespace auxl::detail
