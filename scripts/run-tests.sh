#!/usr/bin/env bash
# Builds ohm with AddressSanitizer + UndefinedBehaviorSanitizer (warnings are errors) and runs
# the whole test suite (but the `gpu` label), runs clang-tidy on the C++ files changed against
# the merge base, cross-compiles the portable runtime for aarch64 and runs its scalar unit tests
# under qemu-user, then builds the libFuzzer targets and runs each for a bounded time.
#   OHM_FUZZ_SECONDS=30 (default)  seconds per fuzzer; 0 skips fuzzing
#   OHM_TIDY=0 / OHM_CROSS=0       skip clang-tidy / the aarch64 build
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# The preset links without PIE (-no-pie: ~40% less work for the dynamic loader at each of the
# ~1,900 test processes' start). Where lld is installed it links too: ~4x less CPU than ld.bfd
# for the 300 MB ASan executables.
link=()
if command -v ld.lld >/dev/null; then link=(-DCMAKE_EXE_LINKER_FLAGS="-no-pie -fuse-ld=lld"); fi
cmake --preset asan -DOHM_WERROR=ON "${link[@]}" >/dev/null
cmake --build --preset asan -j "$jobs"
# With ../shared/data beside the checkout (as in CI), tests that read it must find it: a missing
# file fails them instead of skipping them (tests/unit/test_util.h, tests/diff).
if [ -d ../shared/data ]; then export OHM_REQUIRE_SHARED_DATA=1; fi
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
  ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE gpu
if [ "${OHM_TIDY:-1}" != "0" ]; then
  scripts/clang-tidy-changed.sh
fi
if [ "${OHM_CROSS:-1}" != "0" ]; then
  scripts/cross-aarch64.sh
fi
fuzz_seconds=${OHM_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != "0" ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$jobs" --target fuzz_safetensors fuzz_gguf
  scripts/run-fuzz.sh "$fuzz_seconds"
fi
