#!/usr/bin/env bash
# Runs every libFuzzer target for N seconds (default 60) from its seed corpus. A finding
# (crash, leak, sanitizer report, timeout) fails the script and leaves the reproducer in
# build/fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
mkdir -p build/fuzz/findings
for target in safetensors gguf; do
  corpus=build/fuzz/corpus-$target
  mkdir -p "$corpus"
  echo "fuzz_$target: ${seconds}s"
  build/fuzz/tests/fuzz/fuzz_$target -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/findings/ \
    "$corpus" tests/fuzz/seeds/$target 2>&1 | tail -n 12
done
echo "fuzz: no findings"
