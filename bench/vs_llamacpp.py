#!/usr/bin/env python3
"""ohm vs llama.cpp, side by side on the same GGUF files; writes bench/RESULTS.md.

Standard library only. llama.cpp is built locally from its public source, outside this
repository (its code never enters it), e.g.:
    cmake -S llama.cpp -B llama.cpp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF
    ninja -C llama.cpp/build llama-bench

Usage (from the repository root, on a quiet machine):
    python3 bench/vs_llamacpp.py --llama-bench PATH/llama-bench --ohm build/release/ohm \
        --models bench/models/tinyllama-1.1b-{f16,q8_0,q4_0,q4_k}.gguf [--threads 2] \
        [--rounds 3] [--pp 512] [--tg 128] [--triad build/release/bench/stream_triad] \
        [--out bench/RESULTS.md]

Per model and round the two programs run alternately (llama.cpp first in even rounds, ohm first
in odd ones), one repetition each; the report gives every raw figure and the median of the
per-round ratios ohm/llama.cpp. The decode bound is the triad bandwidth divided by the bytes
of weights a token reads (every tensor except the token embedding table, of which one row is
read). The triad runs before every round (the machines are shared and their bandwidth drifts);
ohm's tg in a round is set against that round's bound, and the report gives the median.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
from pathlib import Path

GGML_BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 12: (256, 144),
              14: (256, 210), 3: (32, 20), 6: (32, 22), 7: (32, 24), 13: (256, 176)}


def gguf_weight_bytes(path: Path) -> tuple[int, int]:
    """(bytes of all tensors, bytes of token_embd.weight) from the GGUF header."""
    with open(path, "rb") as f:
        def u32():
            return struct.unpack("<I", f.read(4))[0]

        def u64():
            return struct.unpack("<Q", f.read(8))[0]

        def string():
            return f.read(u64()).decode("utf-8", "replace")

        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

        def skip_value(t):
            if t == 8:
                string()
            elif t == 9:
                et, n = u32(), u64()
                for _ in range(n):
                    skip_value(et)
            else:
                f.read(sizes[t])

        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        u32()
        n_t, n_kv = u64(), u64()
        for _ in range(n_kv):
            string()
            skip_value(u32())
        total = embd = 0
        for _ in range(n_t):
            name = string()
            nd = u32()
            dims = [u64() for _ in range(nd)]
            t = u32()
            u64()
            n = 1
            for d in dims:
                n *= d
            blk, bb = GGML_BLOCK.get(t, (1, 4))
            b = n // blk * bb
            total += b
            if name == "token_embd.weight":
                embd = b
        return total, embd


def run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def llama_bench(exe, model, threads, pp, tg):
    out = json.loads(run([exe, "-m", str(model), "-t", str(threads), "-p", str(pp), "-n", str(tg),
                          "-r", "1", "-o", "json"]))
    res = {}
    for row in out:
        if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
            res["pp"] = row["avg_ts"]
        elif row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            res["tg"] = row["avg_ts"]
    return res


def ohm_bench(exe, model, threads, pp, tg):
    out = json.loads(run([exe, "bench", str(model), "--threads", str(threads), "--prompt-tokens",
                          str(pp), "--gen-tokens", str(tg), "--repetitions", "1", "--json"]))
    return {"pp": out["pp_tok_s"], "tg": out["tg_tok_s"], "ttft": out["ttft_s"],
            "rss": out["peak_rss_mb"], "load": out["load_s"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--ohm", default="build/release/ohm")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--triad", default="build/release/bench/stream_triad")
    ap.add_argument("--out", default="bench/RESULTS.md")
    a = ap.parse_args()

    def measure_triad():
        if not Path(a.triad).exists():
            return None
        line = run([a.triad, "--threads", str(a.threads)]).strip().split()
        return float(dict(kv.split("=", 1) for kv in line if "=" in kv)["triad_gb_s"])

    rows = []
    for m in map(Path, a.models):
        lc, oh, triads = [], [], []
        for r in range(a.rounds):
            triads.append(measure_triad())
            print(f"{m.name} round {r} triad: {triads[-1]} GB/s", flush=True)
            order = [("llama", llama_bench, a.llama_bench), ("ohm", ohm_bench, a.ohm)]
            if r % 2:
                order.reverse()
            got = {}
            for name, fn, exe in order:
                got[name] = fn(exe, m, a.threads, a.pp, a.tg)
                print(f"{m.name} round {r} {name}: {got[name]}", flush=True)
            lc.append(got["llama"])
            oh.append(got["ohm"])
        total, embd = gguf_weight_bytes(m)
        per_token = total - embd
        rows.append({
            "model": m.name, "size_gb": m.stat().st_size / 1e9, "bytes_per_token": per_token,
            "llama": lc, "ohm": oh, "triad": triads,
            "pp_ratio": statistics.median(o["pp"] / l["pp"] for o, l in zip(oh, lc)),
            "tg_ratio": statistics.median(o["tg"] / l["tg"] for o, l in zip(oh, lc)),
        })

    def fmt(xs):
        return " / ".join(f"{x:.1f}" for x in xs)

    lines = [
        "# ohm vs llama.cpp (CPU)", "",
        f"Written by `bench/vs_llamacpp.py` on {datetime.date.today().isoformat()}; "
        f"{platform.machine()}, {os.cpu_count()} cores, {a.threads} threads, pp{a.pp} / tg{a.tg}, "
        f"{a.rounds} alternating rounds per model. Ratios are ohm / llama.cpp, median of the "
        "per-round ratios; the raw tokens/s of every round follow.", "",
        f"Command: `python3 bench/vs_llamacpp.py {' '.join(sys.argv[1:])}`", "",
    ]
    have_triad = all(t for r in rows for t in r["triad"])
    if have_triad:
        lines += [f"Triad bandwidth (bench/stream_triad, {a.threads} threads), measured before every "
                  "round: " + ", ".join(f"{r['model']} {fmt(r['triad'])}" for r in rows) + " GB/s. "
                  "The tg bound column uses the median triad of the model's rounds; the % of bound "
                  "is the median over rounds of ohm's tg / that round's bound.", ""]
    lines += ["| model | size GB | pp ratio | tg ratio | tg bound tok/s | ohm tg % of bound |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if have_triad:
            bound = statistics.median(r["triad"]) * 1e9 / r["bytes_per_token"]
            pct = statistics.median(o["tg"] * r["bytes_per_token"] / (t * 1e9)
                                    for o, t in zip(r["ohm"], r["triad"]))
            tail = f"{bound:.1f} | {100 * pct:.0f}% |"
        else:
            tail = "- | - |"
        lines.append(f"| {r['model']} | {r['size_gb']:.2f} | {r['pp_ratio']:.2f} | {r['tg_ratio']:.2f} | "
                     + tail)
    lines += ["", "Raw tokens/s per round:", "",
              "| model | llama.cpp pp | ohm pp | llama.cpp tg | ohm tg | ohm ttft s (pp512 prompt) | ohm peak RSS MB |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ttft = " / ".join("%.3f" % x["ttft"] for x in r["ohm"])
        lines.append(f"| {r['model']} | {fmt(x['pp'] for x in r['llama'])} | {fmt(x['pp'] for x in r['ohm'])} | "
                     f"{fmt(x['tg'] for x in r['llama'])} | {fmt(x['tg'] for x in r['ohm'])} | {ttft} | "
                     f"{max(x['rss'] for x in r['ohm']):.0f} |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
