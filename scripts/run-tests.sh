#!/usr/bin/env bash
# Builds ohm with AddressSanitizer + UndefinedBehaviorSanitizer (warnings are errors) and runs
# the whole test suite, then builds the libFuzzer targets and runs each for a bounded time.
#   OHM_FUZZ_SECONDS=60 (default)  set to 0 to skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake --preset asan -DOHM_WERROR=ON >/dev/null
cmake --build --preset asan -j "$jobs"
# With ../shared/data beside the checkout (as in CI), tests that read it must find it: a missing
# file fails them instead of skipping them (tests/unit/test_util.h, tests/diff).
if [ -d ../shared/data ]; then export OHM_REQUIRE_SHARED_DATA=1; fi
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$jobs"
fuzz_seconds=${OHM_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" != "0" ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$jobs" --target fuzz_safetensors fuzz_gguf
  scripts/run-fuzz.sh "$fuzz_seconds"
fi
