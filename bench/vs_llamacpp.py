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
        [--out bench/RESULTS.md] [--depths 0,4096,8192,16384 --fa off,on --chart depth.png]

Per model and round the two programs run alternately (llama.cpp first in even rounds, ohm first
in odd ones), one repetition each; the report gives every raw figure and the median of the
per-round ratios ohm/llama.cpp. The decode bound is the triad bandwidth divided by the bytes
of weights a token reads (every tensor except the token embedding table, of which one row is
read) at the read-only bandwidth (stream_triad's read_gb_s: integer sums with 16 independent
accumulators, a ceiling a decode kernel can reach; the triad is reported beside it). Both run
before every round (the machines are shared and their bandwidth drifts); ohm's tg in a round is
set against that round's bound, and the report gives the median.

--depths D1,D2,...: the pp and tg rows are measured after D tokens of context (llama-bench -d,
ohm bench --depth), one table row per (model, depth); --fa lists llama.cpp's flash-attention
settings (llama-bench -fa), each measured in every round: the ratio is against llama.cpp's better
setting in that round, and every setting's raw figures are reported. --chart PATH writes a PNG of
tokens/s against depth for both programs (matplotlib; the script runs without it otherwise).
--json PATH keeps every raw figure; --from-json A.json [B.json ...] writes the report (and chart)
from such files instead of measuring (e.g. to join a 16k-depth run made with other rounds or
--fa settings to the rest). The report header records the ohm commit, the llama.cpp build
and the CPU's flags.
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
    """(bytes a token reads plus the embedding table, bytes of token_embd.weight) from the GGUF
    header. A mixture-of-experts file's expert tensors (`*_exps`) count expert_used_count /
    expert_count of their bytes: a token reads only its experts' rows."""
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

        ints = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
        experts = {}

        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        u32()
        n_t, n_kv = u64(), u64()
        for _ in range(n_kv):
            key = string()
            t = u32()
            if key.endswith((".expert_count", ".expert_used_count")) and t in ints:
                fmt = ints[t]
                experts[key.rsplit(".", 1)[1]] = struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
            else:
                skip_value(t)
        share = (experts.get("expert_used_count", 1) / experts["expert_count"]
                 if experts.get("expert_count") else 1.0)
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
            total += int(b * share) if "_exps" in name else b
            if name == "token_embd.weight":
                embd = b
        return total, embd


def run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


LLAMA_BUILD = {}


def llama_bench(exe, model, threads, pp, tg, depth=0, fa=None):
    cmd = [exe, "-m", str(model), "-t", str(threads), "-p", str(pp), "-n", str(tg), "-r", "1",
           "-o", "json"]
    if depth:
        cmd += ["-d", str(depth)]
    if fa:
        cmd += ["-fa", fa]
    out = json.loads(run(cmd))
    res = {}
    for row in out:
        LLAMA_BUILD.setdefault("build", f"{row.get('build_commit', '?')} ({row.get('build_number', '?')})")
        if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
            res["pp"] = row["avg_ts"]
        elif row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            res["tg"] = row["avg_ts"]
    return res


def ohm_bench(exe, model, threads, pp, tg, depth=0):
    cmd = [exe, "bench", str(model), "--threads", str(threads), "--prompt-tokens", str(pp),
           "--gen-tokens", str(tg), "--repetitions", "1", "--json"]
    # --past-context: speed only, so a prompt (or depth + tokens) past the model's context length
    # is measured as llama-bench does (it sizes the context to the test)
    cmd += ["--past-context"]
    if depth:
        cmd += ["--depth", str(depth)]
    out = json.loads(run(cmd))
    return {"pp": out["pp_tok_s"], "tg": out["tg_tok_s"], "ttft": out["ttft_s"],
            "rss": out["peak_rss_mb"], "load": out["load_s"]}


def cpu_flags() -> str:
    """The CPU model and the flags that select kernels (AVX-512 family, VNNI, AMX, F16C, FMA)."""
    model, flags = "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    keep = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c"))
    return f"{model}; flags: {' '.join(keep) or '?'}; amx: {'yes' if any(f.startswith('amx') for f in flags) else 'no'}"


COMMIT = {}
MEASURED_BY = []  # --from-json: the commands that measured the rows


def meta(a):
    return {"commit": ohm_commit(), "llama_build": LLAMA_BUILD.get("build", "?"), "cpu": cpu_flags(),
            "pp": a.pp, "tg": a.tg, "threads": a.threads,
            "command": "python3 bench/vs_llamacpp.py " + " ".join(sys.argv[1:])}


def ohm_commit() -> str:
    if "commit" in COMMIT:
        return COMMIT["commit"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def write_chart(path, rows, threads):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "pp", "prompt processing"), (axes[1], "tg", "generation")):
        for model in sorted({r["model"] for r in rows}):
            rs = sorted((r for r in rows if r["model"] == model), key=lambda r: r["depth"])
            depths = [r["depth"] for r in rs]
            ax.plot(depths, [statistics.median(x[key] for x in r["ohm"]) for r in rs], "o-",
                    label=f"ohm ({model})")
            ax.plot(depths, [statistics.median(x[key] for x in r["llama"]) for r in rs], "s--",
                    label=f"llama.cpp, better -fa ({model})")
        ax.set_xlabel("depth (tokens of context)")
        ax.set_ylabel("tokens/s (median of rounds)")
        ax.set_title(f"{title}, {threads} threads")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--ohm", default="build/release/ohm")
    ap.add_argument("--models", nargs="+", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--triad", default="build/release/bench/stream_triad")
    ap.add_argument("--out", default="bench/RESULTS.md")
    ap.add_argument("--depths", default="0", help="comma-separated context depths (default 0)")
    ap.add_argument("--fa", default="", help="llama-bench -fa settings, comma-separated (e.g. off,on)")
    ap.add_argument("--chart", default="", help="PNG of tokens/s against depth (matplotlib)")
    ap.add_argument("--json", default="", help="write every raw figure here")
    ap.add_argument("--from-json", nargs="+", default=[], help="report from these --json files")
    a = ap.parse_args()
    if a.from_json:
        a.models = []
    else:
        COMMIT["commit"] = ohm_commit()  # at the start: the tree may move during a long run
    depths = [int(d) for d in a.depths.split(",") if d.strip()]
    fas = [f for f in a.fa.split(",") if f.strip()] or [None]

    def measure_bw():
        if not Path(a.triad).exists():
            return None
        line = run([a.triad, "--threads", str(a.threads)]).strip().split()
        kv = dict(x.split("=", 1) for x in line if "=" in x)
        return {"triad": float(kv["triad_gb_s"]), "read": float(kv["read_gb_s"])}

    rows = []
    for m in map(Path, a.models):
        for depth in depths:
            lc, lc_fa, oh, bws = [], [], [], []
            for r in range(a.rounds):
                bws.append(measure_bw())
                print(f"{m.name} d{depth} round {r} bandwidth: {bws[-1]}", flush=True)
                order = [("llama", fa) for fa in fas] + [("ohm", None)]
                if r % 2:
                    order.reverse()
                got = {}
                for name, fa in order:
                    if name == "ohm":
                        got["ohm"] = ohm_bench(a.ohm, m, a.threads, a.pp, a.tg, depth)
                    else:
                        got[("llama", fa)] = llama_bench(a.llama_bench, m, a.threads, a.pp, a.tg,
                                                         depth, fa)
                    print(f"{m.name} d{depth} round {r} {name} {fa or ''}: "
                          f"{got[name if name == 'ohm' else (name, fa)]}", flush=True)
                per_fa = {fa or "default": got[("llama", fa)] for fa in fas}
                lc_fa.append(per_fa)
                lc.append({k: max(v[k] for v in per_fa.values()) for k in ("pp", "tg")})
                oh.append(got["ohm"])
            total, embd = gguf_weight_bytes(m)
            rows.append({
                "model": m.name, "depth": depth, "size_gb": m.stat().st_size / 1e9,
                "bytes_per_token": total - embd, "llama": lc, "llama_by_fa": lc_fa, "ohm": oh,
                "bandwidth": bws,
                "pp_ratio": statistics.median(o["pp"] / l["pp"] for o, l in zip(oh, lc)),
                "tg_ratio": statistics.median(o["tg"] / l["tg"] for o, l in zip(oh, lc)),
            })
            if a.json:
                Path(a.json).write_text(json.dumps({"meta": meta(a), "rows": rows}, indent=1))
    for f in a.from_json:
        data = json.loads(Path(f).read_text())
        rows += data["rows"]
        LLAMA_BUILD.setdefault("build", data["meta"]["llama_build"])
        COMMIT.setdefault("commit", data["meta"]["commit"])
        a.pp, a.tg, a.threads = data["meta"]["pp"], data["meta"]["tg"], data["meta"]["threads"]
        MEASURED_BY.append(data["meta"].get("command", ""))
    fas = sorted({k for r in rows for x in r["llama_by_fa"] for k in x}) if a.from_json else fas
    fas = [None] if fas == ["default"] else fas
    depths = sorted({r["depth"] for r in rows})

    def fmt(xs):
        return " / ".join(f"{x:.1f}" for x in xs)

    def name(r):
        return r["model"] + (f" @ d{r['depth']}" if r["depth"] else "")

    lines = [
        "# ohm vs llama.cpp (CPU)", "",
        f"Written by `bench/vs_llamacpp.py` on {datetime.date.today().isoformat()}; "
        f"{platform.machine()}, {os.cpu_count()} cores, {a.threads} threads, pp{a.pp} / tg{a.tg}, "
        + (f"{a.rounds} alternating rounds per row" if not a.from_json else
           "alternating rounds (as many per row as its raw figures list)")
        + ". Ratios are ohm / llama.cpp, median of the per-round ratios; the raw tokens/s of "
        "every round follow.", "",
        f"ohm commit {ohm_commit()}; llama.cpp build {LLAMA_BUILD.get('build', '?')}"
        + (f", flash attention {' and '.join(f or 'default' for f in fas)} (each round's better one "
           "for the ratio, where a row has both)" if fas != [None] else "") + ".", "",
        f"CPU: {cpu_flags()}.", "",
        f"Command: `python3 bench/vs_llamacpp.py {' '.join(sys.argv[1:])}`", "",
    ]
    if a.from_json:
        lines += ["Measured by: " + "; ".join(
            f"`{c}`" for c in dict.fromkeys(MEASURED_BY) if c) + ".", ""]
    have_bw = all(b for r in rows for b in r["bandwidth"])
    if have_bw:
        lines += [f"Bandwidth (bench/stream_triad, {a.threads} threads), read-only / triad GB/s, measured "
                  "before every round: " + ", ".join(
                      f"{name(r)} " + " / ".join(f"{b['read']:.1f}-{b['triad']:.1f}" for b in r["bandwidth"])
                      for r in rows) + ". "
                  "The tg bound column is the median read-only bandwidth of the row's rounds over the "
                  "bytes a token reads; the % of bound is the median over rounds of ohm's tg / that "
                  "round's bound.", ""]
    lines += ["| model | size GB | pp ratio | tg ratio | tg bound tok/s | ohm tg % of bound |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if have_bw:
            reads = [b["read"] for b in r["bandwidth"]]
            bound = statistics.median(reads) * 1e9 / r["bytes_per_token"]
            pct = statistics.median(o["tg"] * r["bytes_per_token"] / (t * 1e9)
                                    for o, t in zip(r["ohm"], reads))
            tail = f"{bound:.1f} | {100 * pct:.0f}% |"
        else:
            tail = "- | - |"
        lines.append(f"| {name(r)} | {r['size_gb']:.2f} | {r['pp_ratio']:.2f} | {r['tg_ratio']:.2f} | "
                     + tail)
    lines += ["", "Raw tokens/s per round:", "",
              f"| model | llama.cpp pp | ohm pp | llama.cpp tg | ohm tg | ohm ttft s (pp{a.pp} prompt) | ohm peak RSS MB |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ttft = " / ".join("%.3f" % x["ttft"] for x in r["ohm"])
        if fas != [None]:
            lpp = "; ".join(f"-fa {f}: " + fmt(x[f]["pp"] for x in r["llama_by_fa"])
                            for f in fas if f in r["llama_by_fa"][0])
            ltg = "; ".join(f"-fa {f}: " + fmt(x[f]["tg"] for x in r["llama_by_fa"])
                            for f in fas if f in r["llama_by_fa"][0])
        else:
            lpp, ltg = fmt(x["pp"] for x in r["llama"]), fmt(x["tg"] for x in r["llama"])
        lines.append(f"| {name(r)} | {lpp} | {fmt(x['pp'] for x in r['ohm'])} | "
                     f"{ltg} | {fmt(x['tg'] for x in r['ohm'])} | {ttft} | "
                     f"{max(x['rss'] for x in r['ohm']):.0f} |")
    if a.chart and len(depths) > 1 and write_chart(a.chart, rows, a.threads):
        lines += ["", f"Chart: `{a.chart}` (tokens/s against depth, median of the rounds)."]
        print(f"wrote {a.chart}")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
