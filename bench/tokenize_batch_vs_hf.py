#!/usr/bin/env python3
"""`ohm tokenize` against HF tokenizers, side by side in one run (a benchmark, not a test).

--mode batch (default): for each tokenizer, N short lines (the non-empty lines of wiki.test.raw,
cycled, cut at 200 characters) encoded without special tokens.
  - ohm: the whole `ohm tokenize DIR --raw --batch LINES.jsonl --threads T` process, so its time
    includes start-up, loading the tokenizer, parsing the JSON lines and writing the JSON answers
    (ids, offsets, tokens) into a pipe (decoding them to Python strings is not timed);
  - HF: `Tokenizer.encode_batch(lines)` alone (loading excluded), with RAYON_NUM_THREADS=T.
--mode single: wiki.test.raw as one string, one thread.
  - ohm: the whole `ohm tokenize DIR --raw --file wiki.test.raw --json` process;
  - HF: `Tokenizer.encode(text)` alone, with RAYON_NUM_THREADS=1.
Both outputs are compared id for id. HF and ohm alternate, --rounds times; the table gives the
median time of each and the median of the per-round ratios (HF time / ohm time).

  python3 bench/tokenize_batch_vs_hf.py --ohm build/release/ohm [--lines 100000] [--threads 2]
  python3 bench/tokenize_batch_vs_hf.py --ohm build/release/ohm --mode single
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OHM_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--mode", choices=["batch", "single"], default="batch")
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokenizers", default="llama3,gpt2,gpt4o")
    args = ap.parse_args()
    threads = args.threads if args.mode == "batch" else 1
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # before tokenizers starts its pool
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    from tokenizers import Tokenizer

    raw_path = os.path.join(SHARED, "corpora", "wikitext-2-raw", "wiki.test.raw")
    tmp = tempfile.mkdtemp(prefix="ohm-batch-bench-")
    if args.mode == "batch":
        src = [l.strip()[:200] for l in open(raw_path, encoding="utf-8") if l.strip()]
        lines = [src[i % len(src)] for i in range(args.lines)]
        inp = os.path.join(tmp, "lines.jsonl")
        with open(inp, "w", encoding="utf-8") as f:
            for l in lines:
                f.write(json.dumps(l) + "\n")
        print(f"{len(lines)} lines, {sum(len(l) for l in lines) / 1e6:.1f} M characters, "
              f"{threads} threads, {args.rounds} rounds")
        print("| tokenizer | ohm --batch (whole process) | HF encode_batch | ratio |")
    else:
        text = open(raw_path, encoding="utf-8", newline="").read()
        print(f"wiki.test.raw, {len(text.encode()) / 1e6:.2f} MB, 1 thread, {args.rounds} rounds")
        print("| tokenizer | ohm --file (whole process) | HF encode | ratio |")
    print("| --- | --- | --- | --- |")
    for name in args.tokenizers.split(","):
        d = os.path.join(SHARED, "tokenizers", name)
        tj = next(os.path.join(d, f) for f in sorted(os.listdir(d)) if f.startswith("tokenizer.json"))
        text_json = gzip.open(tj, "rt", encoding="utf-8").read() if tj.endswith(".gz") else open(tj, encoding="utf-8").read()
        hf = Tokenizer.from_str(text_json)
        t_hf, t_ohm = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            if args.mode == "batch":
                want = [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
            else:
                want = hf.encode(text, add_special_tokens=False).ids
            t_hf.append(time.perf_counter() - t0)
            if args.mode == "batch":
                cmd = [args.ohm, "tokenize", d, "--raw", "--batch", inp, "--no-special",
                       "--threads", str(threads)]
            else:
                cmd = [args.ohm, "tokenize", d, "--raw", "--file", raw_path, "--json", "--no-special"]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, check=True)  # decoded after timing
            t_ohm.append(time.perf_counter() - t0)
        out = p.stdout.decode("utf-8")
        if args.mode == "batch":
            got = [json.loads(l)["ids"] for l in out.split("\n") if l]
        else:
            got = json.loads(out)
        same = got == want
        ratio = statistics.median(h / o for h, o in zip(t_hf, t_ohm))
        print(f"| {name} | {statistics.median(t_ohm):.2f} s | {statistics.median(t_hf):.2f} s | "
              f"{ratio:.2f}x{'' if same else ' (IDS DIFFER)'} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
