#!/bin/sh
# Installs the Debian 12 packages auxl needs to build, test and run its examples.
# Idempotent: packages already present are skipped, so running it twice costs one dpkg query.
# Works as root or through sudo.  Usage: scripts/setup.sh [--plots] [--torch]
#   --plots  also installs matplotlib with pip (for scripts/make_results.py and plot_affinity.py);
#            not needed to build or test.
#   --torch  also installs Debian's python3-torch (for the PyTorch side: benchmarks/side_by_side.py,
#            torch_study.py and the tests that check them, which skip without it); not needed to build.
# Also installs the Conan 2 client with pip into .tools/venv (for the packaging test, which skips
# without it); a failure there (no network) is a warning, not an error.
set -eu

packages="build-essential cmake pkg-config libeigen3-dev libxtensor-dev xtl-dev libxsimd-dev \
libxtensor-blas-dev libopenblas-dev liblapack-dev libboost-dev doctest-dev zlib1g-dev \
libbenchmark-dev dataset-fashion-mnist python3-venv python3-numpy libopenmpi-dev openmpi-bin clang libclang-rt-14-dev \
g++-aarch64-linux-gnu qemu-user"
for arg in "$@"; do
    if [ "$arg" = "--torch" ]; then packages="$packages python3-torch"; fi
done

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

install_plots() {
    if python3 -c "import matplotlib" 2>/dev/null; then
        echo "auxl setup: matplotlib present"
    else
        echo "auxl setup: installing matplotlib with pip"
        python3 -m pip install --quiet matplotlib
    fi
}

tools="$(cd "$(dirname "$0")/.." && pwd)/.tools/venv"
install_conan() {
    if [ -x "$tools/bin/conan" ]; then
        echo "auxl setup: conan present ($tools/bin/conan)"
    elif python3 -m venv "$tools" && "$tools/bin/pip" install --quiet "conan>=2,<3"; then
        echo "auxl setup: installed conan into $tools"
    else
        echo "auxl setup: warning: could not install conan with pip; the Conan packaging test will be skipped" >&2
    fi
}

if [ -z "$missing" ]; then
    echo "auxl setup: all Debian packages present"
    install_conan
    for arg in "$@"; do if [ "$arg" = "--plots" ]; then install_plots; fi; done
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "auxl setup: need root or sudo to install:$missing" >&2
    exit 1
fi

echo "auxl setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing
install_conan
for arg in "$@"; do if [ "$arg" = "--plots" ]; then install_plots; fi; done
