#!/usr/bin/env python3
"""Watermark detection rate: 200-token outputs, false-positive rate 1e-3.

For each watermark configuration, two `ohm serve` instances run the same model, one with
`--watermark SPEC` and one without. The same prompts (lines of Tiny Shakespeare) are sampled
multinomially (temperature 1, no top-k/top-p, as in Kirchenbauer et al.) for 200 tokens. Every
output, and 200-token windows of human text, then go through POST /v1/watermark/detect.

Reported per configuration:
- TPR at the z threshold whose one-sided p-value is 1e-3 (z = 3.0902), with the empirical
  false-positive rates on the unwatermarked outputs and on the human text at that threshold;
- the z-score distributions;
- a ROC curve, as a PNG when matplotlib is importable.

usage: python3 bench/watermark_bench.py --ohm build/release/ohm --model models/ohm-demo
           [--samples 200] [--tokens 200] [--out bench/WATERMARK.md] [--png docs/img/watermark_roc.png]
"""
import argparse
import concurrent.futures as cf
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import urllib.request

CONFIGS = ["gamma=0.25,delta=2", "gamma=0.5,delta=2", "gamma=0.25,delta=1",
           "gamma=0.25,delta=2,seeding_scheme=selfhash,context_width=4"]
Z_1E3 = 3.090232306167813  # one-sided p = 1e-3


def start(ohm, model, spec, threads):
    args = [ohm, "serve", model, "--port", "0", "--quiet", "-t", str(threads), "--parallel", "16"]
    if spec is not None:
        args += ["--watermark", spec]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    base = p.stdout.readline().strip().split(" on ")[1].rsplit("/v1", 1)[0]
    return p, base


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def sample(base, prompts, tokens, seed0):
    def one(i):
        r = post(base, "/v1/completions", {"prompt": prompts[i], "max_tokens": tokens,
                                           "temperature": 1.0, "top_p": 1.0, "seed": seed0 + i,
                                           "ignore_eos": True})
        return r["choices"][0]["text"]
    with cf.ThreadPoolExecutor(16) as ex:
        return list(ex.map(one, range(len(prompts))))


def z_scores(base, texts, spec, ignore_repeated):
    return [post(base, "/v1/watermark/detect",
                 {"text": t, "watermark": spec, "ignore_repeated_ngrams": ignore_repeated})["z_score"]
            for t in texts]


LENGTHS = [10, 25, 50, 100, 150, 200]


def rate_by_length(base, texts, spec, threshold):
    """Fraction of texts whose first L tokens (after the BOS) are detected, per L in LENGTHS."""
    hits = {L: 0 for L in LENGTHS}
    for t in texts:
        ids = post(base, "/tokenize", {"prompt": t})["tokens"]
        for L in LENGTHS:
            z = post(base, "/v1/watermark/detect",
                     {"tokens": ids[:L + 1], "watermark": spec,
                      "ignore_repeated_ngrams": True})["z_score"]
            hits[L] += z > threshold
    return [hits[L] / len(texts) for L in LENGTHS]


def roc(pos, neg):
    pts = []
    for thr in sorted(set(pos + neg + [Z_1E3]), reverse=True):
        pts.append((sum(z > thr for z in neg) / len(neg), sum(z > thr for z in pos) / len(pos)))
    return [(0.0, 0.0)] + pts + [(1.0, 1.0)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "shared", "data", "corpora",
                                                     "tinyshakespeare.txt"))
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/WATERMARK.md")
    ap.add_argument("--png", default="docs/img/watermark_roc.png")
    args = ap.parse_args()
    lines = [l for l in open(args.corpus, encoding="utf-8").read().splitlines() if len(l) > 20]
    step = max(1, len(lines) // args.samples)
    prompts = [lines[i * step] for i in range(args.samples)]
    # Human text: consecutive windows of the corpus' second half, about `tokens` tokens each.
    words = open(args.corpus, encoding="utf-8").read().split()
    half = words[len(words) // 2:]
    human = [" ".join(half[i * 150:(i + 1) * 150]) for i in range(args.samples)]

    plain_srv, plain = start(args.ohm, args.model, None, args.threads)
    rows, curves, by_len = [], {}, {}
    try:
        unmarked = sample(plain, prompts, args.tokens, 1000)
        for spec in CONFIGS:
            srv, base = start(args.ohm, args.model, spec, args.threads)
            try:
                marked = sample(base, prompts, args.tokens, 1000)
                for ignore in (False, True):
                    zp = z_scores(base, [p + t for p, t in zip(prompts, marked)], spec, ignore)
                    zn = z_scores(base, [p + t for p, t in zip(prompts, unmarked)], spec, ignore)
                    zh = z_scores(base, human, spec, ignore)
                    tpr = sum(z > Z_1E3 for z in zp) / len(zp)
                    fpr = sum(z > Z_1E3 for z in zn) / len(zn)
                    fph = sum(z > Z_1E3 for z in zh) / len(zh)
                    rows.append((spec, ignore, tpr, fpr, fph, statistics.median(zp),
                                 statistics.median(zn), statistics.median(zh)))
                    if ignore:
                        curves[spec] = roc(zp, zn + zh)
                        by_len[spec] = (rate_by_length(base, marked, spec, Z_1E3),
                                        rate_by_length(base, unmarked, spec, Z_1E3))
                    print(f"{spec} ignore_repeated={ignore}: TPR {tpr:.3f} at z > {Z_1E3:.2f};"
                          f" FPR model {fpr:.3f}, human {fph:.3f}; median z {rows[-1][5]:.2f} /"
                          f" {rows[-1][6]:.2f} / {rows[-1][7]:.2f}", flush=True)
            finally:
                srv.terminate()
                srv.wait()
    finally:
        plain_srv.terminate()
        plain_srv.wait()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    md = [f"# Watermark detection rate (bench/watermark_bench.py)", "",
          f"ohm {commit}, model `{args.model}`, {args.samples} prompts (Tiny Shakespeare lines), "
          f"{args.tokens} sampled tokens each (temperature 1, no top-k/top-p, `ignore_eos`), "
          f"{platform.machine()}. Threshold: z > {Z_1E3:.4f}, one-sided p = 1e-3. Negatives: "
          f"the same prompts sampled without the watermark, and {args.samples} windows of "
          f"150 words of human text (the corpus' second half).", "",
          "| --watermark | ignore_repeated_ngrams | detection rate (TPR) | FPR, unwatermarked "
          "model text | FPR, human text | median z watermarked | median z unwatermarked | "
          "median z human |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| `{r[0]}` | {str(r[1]).lower()} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} |"
                  f" {r[5]:.2f} | {r[6]:.2f} | {r[7]:.2f} |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax2, ax) = plt.subplots(1, 2, figsize=(11, 4.5))
        for spec, (tp, fp) in by_len.items():
            line, = ax2.plot(LENGTHS, tp, marker="o", label=spec)
            ax2.plot(LENGTHS, fp, ls="--", color=line.get_color())
        ax2.set_xlabel("tokens scored")
        ax2.set_ylabel("rate at z > 3.09 (p = 1e-3)")
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_title("detection rate (solid) and false positives (dashed) by length")
        ax2.legend(fontsize=7, loc="center right")
        for spec, pts in curves.items():
            xs = [max(p[0], 1e-4) for p in pts]
            ax.plot(xs, [p[1] for p in pts], label=spec, drawstyle="steps-post")
        ax.axvline(1e-3, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        ax.set_xlabel("false-positive rate (unwatermarked model + human text)")
        ax.set_ylabel("detection rate")
        ax.set_title(f"ohm watermark ROC, {args.tokens}-token outputs, repeated n-grams once")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        os.makedirs(os.path.dirname(args.png), exist_ok=True)
        fig.savefig(args.png, dpi=110)
        md += ["", f"Charts: `{args.png}` (detection and false-positive rates by number of "
               "tokens scored; ROC over all thresholds)."]
        md += ["", "| --watermark | " + " | ".join(f"TPR / FPR at {L} tokens" for L in LENGTHS) + " |",
               "| --- |" + " --- |" * len(LENGTHS)]
        for spec, (tp, fp) in by_len.items():
            md.append(f"| `{spec}` | " + " | ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(tp, fp)) + " |")
    except ImportError:
        md += ["", "(no PNG: matplotlib is not installed)"]
    open(args.out, "w").write("\n".join(md) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    sys.exit(main())
