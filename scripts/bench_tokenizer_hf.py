#!/usr/bin/env python3
"""HF tokenizers throughput on the same text as bench/bench_tokenizer.cpp.

  build/release/bench/bench_tokenizer --write-text /tmp/bench.txt
  python3 scripts/bench_tokenizer_hf.py /tmp/bench.txt [TOKENIZER_FILE...]
"""
import gzip, lzma, os, sys, time
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OHM_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def load(path):
    raw = open(path, "rb").read()
    if path.endswith(".gz"): raw = gzip.decompress(raw)
    if path.endswith(".xz"): raw = lzma.decompress(raw)
    return Tokenizer.from_str(raw.decode())


def main():
    text = open(sys.argv[1], "rb").read().decode("utf-8")
    files = sys.argv[2:] or [os.path.join(SHARED, "tokenizers/mistral-7b-v0.1/tokenizer.json"),
                             os.path.join(SHARED, "tokenizers/llama3/tokenizer.json.gz"),
                             os.path.join(SHARED, "tokenizers/gpt2/tokenizer.json")]
    lines = text.splitlines(keepends=True)
    mb = len(text.encode()) / 1e6
    print(f"text: {mb:.3f} MB, {len(lines)} lines, RAYON threads {os.environ.get('RAYON_NUM_THREADS', 'all')}")
    print(f"{'tokenizer':48s} {'single MB/s':>12s} {'batch MB/s':>12s}")
    for f in files:
        tk = load(f)
        for l in lines: tk.encode(l)
        best_s = best_b = 1e9
        for _ in range(3):
            t0 = time.perf_counter(); [tk.encode(l) for l in lines]; best_s = min(best_s, time.perf_counter() - t0)
            t0 = time.perf_counter(); tk.encode_batch(lines); best_b = min(best_b, time.perf_counter() - t0)
        print(f"{os.path.basename(os.path.dirname(f)):48s} {mb / best_s:12.2f} {mb / best_b:12.2f}", flush=True)


if __name__ == "__main__":
    main()
