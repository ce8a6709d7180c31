#!/usr/bin/env python3
"""Two models under one ohm binary, alternated rounds (e.g. a GPTQ checkpoint against the Q4_0
GGUF of the same shape, docs/quantization.md). Standard library only.

Usage (from the repository root, on a quiet machine):
    python3 bench/ab_models.py --ohm build/release/ohm --a /path/ff-gptq --b /path/ff-q4_0.gguf \\
        [--rounds 5] [--threads 2] [--json out.json]

Each round runs `ohm bench MODEL -t T -r 1 --json` at --prompt-tokens 512 --gen-tokens 128 and at
--prompt-tokens 64 --gen-tokens 0, A first in even rounds, B first in odd ones, and prints every
raw figure; the summary gives the per-round ratios A / B and their median for pp512, pp64 and
tg128.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path


def bench(ohm, model, threads, pp, tg):
    out = subprocess.run([ohm, "bench", model, "-t", str(threads), "-r", "1", "--prompt-tokens",
                          str(pp), "--gen-tokens", str(tg), "--json"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"ohm bench {model} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", default="build/release/ohm")
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    res = {"a": [], "b": []}
    for r in range(a.rounds):
        for k in (("a", "b") if r % 2 == 0 else ("b", "a")):
            model = getattr(a, k)
            long = bench(a.ohm, model, a.threads, 512, 128)
            short = bench(a.ohm, model, a.threads, 64, 0)
            row = {"pp512": long["pp_tok_s"], "tg128": long["tg_tok_s"], "pp64": short["pp_tok_s"],
                   "rss_mb": long["peak_rss_mb"], "load_s": long["load_s"]}
            res[k].append(row)
            print(f"round {r} {k} ({Path(model).name}): {row}", flush=True)
    for key in ("pp512", "pp64", "tg128"):
        ratios = [x[key] / y[key] for x, y in zip(res["a"], res["b"])]
        print(f"{key}: A {[x[key] for x in res['a']]} B {[y[key] for y in res['b']]} "
              f"ratios {[round(q, 3) for q in ratios]} median {statistics.median(ratios):.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
