#!/usr/bin/env python3
"""Watermarking through the CLI and the server (standard library only).

usage: test_watermark_cli.py OHM MODEL_DIR

- `ohm generate --watermark [SPEC]` output is detected by `ohm watermark detect` (ids and text),
  unwatermarked output is not;
- `ohm serve --watermark`: completions are detected by POST /v1/watermark/detect with the same
  figures as the CLI; bad detection requests get OpenAI-shaped 400s;
- bad --watermark values are usage errors (exit 2) naming the key.
(Parity with transformers is tests/unit/test_watermark.cpp.)
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

OHM, MODEL = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def ohm(*args):
    return subprocess.run([OHM, *args], capture_output=True, text=True, timeout=300)


def gen(spec, n=80):
    args = ["generate", MODEL, "-p", "ROMEO:", "-n", str(n), "--greedy", "--json", "-q", "-t", "1"]
    if spec is not None:
        args += ["--watermark"] + ([spec] if spec else [])
    r = ohm(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def detect(spec, *what):
    r = ohm("watermark", "detect", "--model", MODEL, "--json", *what,
            *(["--watermark", spec] if spec else []))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def main():
    for spec in ("", "seeding_scheme=selfhash,gamma=0.5,delta=1.5,context_width=4"):
        wm, plain = gen(spec), gen(None)
        ids = " ".join(map(str, wm["tokens"]))
        d = detect(spec, "--ids", ids)
        check(d["prediction"] and d["z_score"] > 4, f"[{spec or 'defaults'}] watermarked output "
              f"detected from its ids (z {d['z_score']:.2f})")
        d = detect(spec, "--text", wm["text"])
        check(d["prediction"], f"[{spec or 'defaults'}] ... and from its text (z {d['z_score']:.2f})")
        d = detect(spec, "--ids", " ".join(map(str, plain["tokens"])))
        check(not d["prediction"] and d["z_score"] < 2,
              f"[{spec or 'defaults'}] unwatermarked output is not detected (z {d['z_score']:.2f})")
        check(wm["tokens"] != plain["tokens"], f"[{spec or 'defaults'}] the watermark changes the output")

    for args, frag in ((["generate", MODEL, "-p", "x", "--watermark", "gamma=2"], "gamma"),
                       (["generate", MODEL, "-p", "x", "--watermark", "seeding_scheme=minhash"], "seeding_scheme"),
                       (["generate", MODEL, "-p", "x", "--watermark", "context_width=0"], "context_width"),
                       (["serve", MODEL, "--watermark", "delta=-1"], "delta"),
                       (["watermark", "detect", "--model", MODEL, "--text", "a", "--ids", "1 2"], "exactly one"),
                       (["watermark", "detect", "--model", MODEL, "--ids", "1 99999"], "99999")):
        r = ohm(*args)
        check(r.returncode == 2 and frag in r.stderr, f"usage error for {' '.join(args[2:])}: {r.stderr.strip()[:120]}")

    # The server: every output watermarked, detection endpoint agrees with the CLI.
    srv = subprocess.Popen([OHM, "serve", MODEL, "--port", "0", "--quiet", "-t", "1",
                            "--watermark", "gamma=0.5,delta=2"], stdout=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        base = line.strip().split(" on ")[1].rsplit("/v1", 1)[0]

        def post(path, body):
            req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    return r.status, json.load(r)
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)

        st, c = post("/v1/completions", {"prompt": "ROMEO:", "max_tokens": 80, "temperature": 0})
        text = c["choices"][0]["text"]
        st, d = post("/v1/watermark/detect", {"text": "ROMEO:" + text})
        check(st == 200 and d["prediction"] and d["object"] == "watermark.detection",
              f"serve output detected by /v1/watermark/detect (z {d.get('z_score')})")
        cli = detect("gamma=0.5,delta=2", "--text", "ROMEO:" + text)
        check(abs(cli["z_score"] - d["z_score"]) < 1e-9 and
              cli["num_green_tokens"] == d["num_green_tokens"], "the endpoint equals the CLI")
        for body, param in (({"text": "x", "tokens": [1]}, "text"), ({"tokens": [1, -5]}, "tokens"),
                            ({"text": "a b c", "watermark": "gamma=9"}, "watermark"),
                            ({"text": "a b c", "z_threshold": "high"}, "z_threshold"),
                            ({"text": 5}, "text"), ({"tokens": [1] * 5000}, "tokens")):
            st, e = post("/v1/watermark/detect", body)
            check(st == 400 and "error" in e and param in (e["error"].get("param") or ""),
                  f"400 for {str(body)[:80]}: {str(e)[:200]}")
        st, _ = post("/v1/completions", {"prompt": "x", "max_tokens": 2})
        check(st == 200, "the server keeps serving")
    finally:
        srv.terminate()
        srv.wait(timeout=60)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
