#!/usr/bin/env python3
"""`ohm quantize IN --report DIR`: files, figures and escaping (standard library only).

Usage: test_quantize_report.py OHM MODEL_DIR TEXT
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600)


def main() -> int:
    ohm, model, text = sys.argv[1:4]
    failures = []

    def check(cond: bool, what: str) -> None:
        if not cond:
            failures.append(what)
            print("FAIL:", what, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # A --compare model whose name needs escaping in the SVG and Markdown.
        hostile = os.path.join(tmp, 'x<b>&"|y')
        os.symlink(os.path.abspath(model), hostile)
        out = os.path.join(tmp, "report")
        r = run(ohm, "quantize", model, "--report", out, "--types", "q8_0,q4_0", "--compare",
                hostile, "--text", text, "-c", "128", "--chunks", "2", "-q", "-t", "2")
        check(r.returncode == 0, f"report run: rc {r.returncode}: {r.stderr[-2000:]}")
        if r.returncode == 0:
            j = json.load(open(os.path.join(out, "report.json")))
            labels = [row["label"] for row in j["rows"]]
            check(labels == ["input", "q8_0", "q4_0", 'x<b>&"|y'], f"rows {labels}")
            base = j["rows"][0]
            ppl = run(ohm, "perplexity", model, "-f", text, "-c", "128", "--chunks", "2",
                      "--json", "-t", "2")
            check(ppl.returncode == 0, "ohm perplexity")
            if ppl.returncode == 0:
                want = json.loads(ppl.stdout)["ppl"]
                check(abs(base["ppl"] - want) <= 1e-9 * want,
                      f"input perplexity {base['ppl']} vs ohm perplexity {want}")
            # The --compare model is the input itself: the same figure.
            check(abs(j["rows"][3]["ppl"] - base["ppl"]) <= 1e-9 * base["ppl"], "compare ppl")
            for row in j["rows"][1:3]:
                path = row["path"]
                check(os.path.getsize(path) == row["bytes"], f"{row['label']} bytes")
                check(row["bytes"] < base["bytes"], f"{row['label']} smaller than the input")
                check(abs(row["ppl_delta_pct"]) < 5, f"{row['label']} perplexity {row['ppl']}")
                check(os.path.exists(os.path.join(out, f"quantize-{row['label']}.txt")),
                      f"quantize-{row['label']}.txt")
            svg = open(os.path.join(out, "report.svg")).read()
            check("x&lt;b&gt;&amp;&quot;|y" in svg and 'x<b>' not in svg, "SVG escaping")
            md = open(os.path.join(out, "report.md")).read()
            check("| x<b>&\"\\|y |" in md, "Markdown cell escaping of |")
            png = os.path.join(out, "report.png")
            if "report.png" in md:
                check(open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "PNG signature")
            else:
                check(not os.path.exists(png) and "report.svg" in md, "SVG-only build")

        # Bad input: clear usage errors, nothing written.
        bad = os.path.join(tmp, "bad")
        for args, needle in [
            (["--types", "q9_9"], "q9_9"),
            ([], "--text"),
            (["--text", text, "-c", "100000"], "shorter than one chunk"),
            (["--text", text, "--compare", os.path.join(tmp, "nope")], "nope"),
        ]:
            r = run(ohm, "quantize", model, "--report", bad, *args)
            check(r.returncode in (1, 2) and needle in r.stderr,
                  f"{args}: rc {r.returncode}, stderr {r.stderr[-500:]}")
            check(not os.path.exists(bad) or not os.listdir(bad), f"{args}: files left in {bad}")
        r = run(ohm, "quantize", model, os.path.join(tmp, "x.gguf"), "--report", bad, "--text", text)
        check(r.returncode == 2 and "OUT" in r.stderr, "OUT with --report")
    print("quantize_report:", "FAILED" if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
