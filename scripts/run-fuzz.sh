#!/usr/bin/env bash
# Runs every libFuzzer target for N seconds (default 60) from its seed corpus. A finding
# (crash, leak, sanitizer report, timeout) fails the script and leaves the reproducer in
# build/fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
mkdir -p build/fuzz/findings
targets=(safetensors gguf)
fuzz() {
  local target=$1 corpus=build/fuzz/corpus-$1
  mkdir -p "$corpus"
  build/fuzz/tests/fuzz/fuzz_$target -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/findings/ \
    "$corpus" tests/fuzz/seeds/$target 2>&1 | tail -n 12
}
# With two cores or more the targets run side by side, one core each: each still gets its N
# seconds, in N seconds of wall time instead of 2N (CI has 2 cores).
if [ "$(nproc)" -ge 2 ]; then
  pids=()
  for target in "${targets[@]}"; do
    fuzz "$target" >"build/fuzz/fuzz_$target.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for i in "${!targets[@]}"; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    echo "fuzz_${targets[$i]}: ${seconds}s"
    cat "build/fuzz/fuzz_${targets[$i]}.log"
    [ "$rc" = 0 ] || failed=$rc
  done
  [ "$failed" = 0 ] || exit "$failed"
else
  for target in "${targets[@]}"; do
    echo "fuzz_$target: ${seconds}s"
    fuzz "$target"
  done
fi
echo "fuzz: no findings"
