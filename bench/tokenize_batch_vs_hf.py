#!/usr/bin/env python3
"""`ohm tokenize --batch` against HF tokenizers' encode_batch, side by side in one run (a
benchmark, not a test).

For each tokenizer: N short lines (the non-empty lines of wiki.test.raw, cycled, cut at 200
characters) encoded without special tokens.
  - ohm: the whole `ohm tokenize DIR --raw --batch LINES.jsonl --threads T` process, so its time
    includes start-up, loading the tokenizer, parsing the JSON lines and writing the JSON answers;
  - HF: `Tokenizer.encode_batch(lines)` alone (loading excluded), with RAYON_NUM_THREADS=T.
Both outputs are compared id for id. Best of --rounds.

  python3 bench/tokenize_batch_vs_hf.py --ohm build/release/ohm [--lines 100000] [--threads 2]
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OHM_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokenizers", default="llama3,gpt2,gpt4o")
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # before tokenizers starts its pool
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    from tokenizers import Tokenizer

    src = [l.strip()[:200] for l in open(os.path.join(SHARED, "corpora", "wikitext-2-raw", "wiki.test.raw"),
                                         encoding="utf-8") if l.strip()]
    lines = [src[i % len(src)] for i in range(args.lines)]
    tmp = tempfile.mkdtemp(prefix="ohm-batch-bench-")
    inp = os.path.join(tmp, "lines.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for l in lines:
            f.write(json.dumps(l) + "\n")
    print(f"{len(lines)} lines, {sum(len(l) for l in lines) / 1e6:.1f} M characters, {args.threads} threads")
    print("| tokenizer | ohm --batch (whole process) | HF encode_batch | ratio |")
    print("| --- | --- | --- | --- |")
    for name in args.tokenizers.split(","):
        d = os.path.join(SHARED, "tokenizers", name)
        tj = next(os.path.join(d, f) for f in sorted(os.listdir(d)) if f.startswith("tokenizer.json"))
        text = gzip.open(tj, "rt", encoding="utf-8").read() if tj.endswith(".gz") else open(tj, encoding="utf-8").read()
        hf = Tokenizer.from_str(text)
        best_hf = best_ohm = float("inf")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            encs = hf.encode_batch(lines, add_special_tokens=False)
            best_hf = min(best_hf, time.perf_counter() - t0)
            t0 = time.perf_counter()
            p = subprocess.run([args.ohm, "tokenize", d, "--raw", "--batch", inp, "--no-special",
                                "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            best_ohm = min(best_ohm, time.perf_counter() - t0)
        got = [json.loads(l)["ids"] for l in p.stdout.split("\n") if l]
        same = got == [e.ids for e in encs]
        print(f"| {name} | {best_ohm:.2f} s | {best_hf:.2f} s | {best_hf / best_ohm:.2f}x{'' if same else ' (IDS DIFFER)'} |",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
