#!/usr/bin/env bash
# Cross-compiles the portable runtime (no Hub, no tokenizers, no CLI: -DOHM_HUB=OFF
# -DOHM_TOKENIZERS=OFF) for aarch64 with Debian's g++-aarch64-linux-gnu and runs its scalar unit
# tests under qemu-user: core, quant, formats, jinja, kernels (reference table) and models.
# Needs g++-aarch64-linux-gnu, qemu-user and googletest's sources (scripts/install-deps.sh).
#   OHM_CROSS_DIR=build/aarch64 (default)   build directory
#   OHM_CROSS_JOBS=$(nproc)                 parallel compile jobs
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${OHM_CROSS_DIR:-build/aarch64}
jobs=${OHM_CROSS_JOBS:-$(nproc)}
toolchain=$PWD/cmake/aarch64-linux-gnu.cmake
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || {
    echo "cross-aarch64: $tool not found (scripts/install-deps.sh installs it)" >&2
    exit 1
  }
done
[ -f /usr/src/googletest/CMakeLists.txt ] || {
  echo "cross-aarch64: /usr/src/googletest not found (Debian package googletest)" >&2
  exit 1
}

# GoogleTest for aarch64, from Debian's sources (built once per build directory).
gtest_prefix=$PWD/$dir/googletest
if [ ! -f "$gtest_prefix/lib/cmake/GTest/GTestConfig.cmake" ]; then
  cmake -S /usr/src/googletest -B "$dir/googletest-build" -G Ninja --toolchain "$toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF -DCMAKE_INSTALL_PREFIX="$gtest_prefix" >/dev/null
  cmake --build "$dir/googletest-build" -j "$jobs" >/dev/null
  cmake --install "$dir/googletest-build" >/dev/null
fi

# -O1: fast enough to compile on 2 cores, and the tests run in seconds under qemu.
cmake -S . -B "$dir/ohm" -G Ninja --toolchain "$toolchain" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DOHM_WERROR=ON -DOHM_HUB=OFF -DOHM_TOKENIZERS=OFF \
  -DOHM_BUILD_BENCH=OFF -DGTest_DIR="$gtest_prefix/lib/cmake/GTest" >/dev/null
cmake --build "$dir/ohm" -j "$jobs"
# No SIMD table on aarch64: the reference kernels are the active ones (OHM_ISA to be explicit).
OHM_ISA=scalar ctest --test-dir "$dir/ohm" --output-on-failure -j "$jobs" --timeout 600
