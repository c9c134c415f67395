#!/bin/sh
# Builds part of the test suite for AArch64 with Debian's cross compiler and runs it under
# qemu-user: the layers' backward and tangent passes against finite differences, the losses, the
# optimizers, the networks and the flush-to-zero guard's FPCR path (core/denormals.hpp), which no
# x86 build compiles.  Eigen's GEMM backend (AUXL_GEMM_EIGEN) stands in for OpenBLAS, so nothing
# but header-only libraries is needed for the target.  Exit 77 (CTest: skipped) without the cross
# compiler or qemu (a failure instead when AUXL_REQUIRE_CROSS is set, as in CI); scripts/setup.sh
# installs both (g++-aarch64-linux-gnu, qemu-user).
#   usage: tests/cross/aarch64.sh WORK_DIR [test source ...]
set -eu
work=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
cxx=aarch64-linux-gnu-g++
sysroot=/usr/aarch64-linux-gnu
for tool in "$cxx" qemu-aarch64; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        if [ -n "${AUXL_REQUIRE_CROSS:-}" ]; then  # CI: must run, not skip
            echo "aarch64 cross test: $tool not found, and AUXL_REQUIRE_CROSS is set" >&2
            exit 1
        fi
        echo "aarch64 cross test: $tool not found (scripts/setup.sh installs it); skipped"
        exit 77
    fi
done
version=$(sed -n 's/^project(auxl VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")  # test_core checks it
sources=${*:-"test_core.cpp test_denormals.cpp test_layers.cpp test_losses.cpp test_optim.cpp test_network.cpp"}

# The host's header-only dependencies, and nothing else of /usr/include: its x86-64 headers must
# not shadow the target's.
mkdir -p "$work/include"
for dir in /usr/include/eigen3/Eigen /usr/include/xtensor /usr/include/xtl /usr/include/xsimd \
           /usr/include/boost /usr/include/doctest; do
    ln -sfn "$dir" "$work/include/$(basename "$dir")"
done

objects=""
for source in main.cpp $sources; do
    object="$work/${source%.cpp}.o"
    if [ ! -f "$object" ] || [ -n "$(find "$root/include" "$root/tests/$source" "$root/tests"/*.hpp "$0" -newer "$object" 2>/dev/null | head -n 1)" ]; then
        echo "aarch64 cross test: compiling $source"
        "$cxx" -std=c++20 -O2 -fopenmp -Wall -Wextra -DAUXL_GEMM_EIGEN -DAUXL_CMAKE_PROJECT_VERSION="\"$version\"" \
            -I"$root/include" -I"$root/tests" -isystem "$work/include" -c "$root/tests/$source" -o "$object"
    fi
    objects="$objects $object"
done
# shellcheck disable=SC2086
"$cxx" -fopenmp $objects -o "$work/auxl_tests_aarch64"
echo "aarch64 cross test: running under $(qemu-aarch64 --version | head -n 1)"
OMP_NUM_THREADS=2 qemu-aarch64 -L "$sysroot" "$work/auxl_tests_aarch64"
