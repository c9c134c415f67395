// auxl/version.hpp — library version; matches project(auxl VERSION ...) in CMakeLists.txt
// (a test checks that the two agree).
#pragma once

#define AUXL_VERSION_MAJOR 0
#define AUXL_VERSION_MINOR 1
#define AUXL_VERSION_PATCH 0
#define AUXL_VERSION_STRING "0.1.0"

namespace auxl {
inline constexpr int version_major = AUXL_VERSION_MAJOR;
inline constexpr int version_minor = AUXL_VERSION_MINOR;
inline constexpr int version_patch = AUXL_VERSION_PATCH;
}  // namespace auxl
