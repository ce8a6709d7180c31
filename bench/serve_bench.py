#!/usr/bin/env python3
"""Serving benchmark in the style of vLLM's benchmarks/benchmark_serving.py: fixed prompts,
streaming /v1/completions, concurrency levels, per-request TTFT / ITL / E2E, output tokens/s.

Two ways to run it:
  # against a running OpenAI-compatible server
  bench/serve_bench.py --base-url http://127.0.0.1:8000 --concurrency 1,4,16
  # ohm serve and llama-server on the same GGUF and threads, alternated, writing bench/SERVING.md
  bench/serve_bench.py --ohm build/release/ohm --llama-server /path/llama-server \
      --gguf /work/benchmodels/tinyllama-1.1b-q4_0.gguf --threads 2 --rounds 2 \
      --out bench/SERVING.md

Every request streams with ignore_eos, so each produces exactly --max-tokens tokens; prompts are
--prompt-tokens long (measured with the server's /tokenize) and differ from each other in their
first words (the request number and the concurrency level), so no request shares a cached prefix
with another, in its level or an earlier one. Standard library only.
"""
import argparse
import concurrent.futures as cf
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse

WORDS = ("the quick brown fox jumps over a lazy dog while seven bold knights ride north to "
         "find an old castle where kings once kept their gold and silver under stone").split()


def post(base, path, body, timeout=600):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def count_tokens(base, text):
    st, data = post(base, "/tokenize", {"prompt": text, "content": text, "add_special": False,
                                        "add_special_tokens": False})
    if st != 200:
        raise SystemExit(f"/tokenize failed: {st} {data[:200]!r}")
    return len(json.loads(data)["tokens"])


def make_prompts(base, n, tokens, tag=""):
    """n prompts of about `tokens` tokens, each starting with its own number (and `tag`: each
    concurrency level has its own, so no prompt is served from an earlier level's prefix cache:
    both servers keep finished requests' KV for reuse)."""
    prompts = []
    for i in range(n):
        words = [f"Request {tag}{i}:"]
        j = i
        while True:
            words.append(WORDS[j % len(WORDS)])
            j += 7
            if len(words) % 8 == 0 and count_tokens(base, " ".join(words)) >= tokens:
                break
        while count_tokens(base, " ".join(words)) > tokens and len(words) > 2:
            words.pop()
        prompts.append(" ".join(words))
    return prompts


def one_request(base, model, prompt, max_tokens):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "ignore_eos": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        err = r.read()[:200]
        c.close()
        return {"error": f"{r.status} {err!r}"}
    times, tokens, usage = [], 0, None
    buf = b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            line = ev.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            j = json.loads(payload)
            if j.get("usage"):
                usage = j["usage"]
            for ch in j.get("choices") or []:
                if ch.get("text"):
                    times.append(time.perf_counter())
                    tokens += 1
    end = time.perf_counter()
    c.close()
    if not times:
        return {"error": "no tokens"}
    out_tokens = (usage or {}).get("completion_tokens") or tokens
    itl = [b - a for a, b in zip(times, times[1:])]
    return {"ttft": times[0] - t0, "e2e": end - t0, "itl": itl, "tokens": out_tokens}


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run_level(base, model, prompts, conc, max_tokens):
    # warm-up, as benchmark_serving does (a prompt of its own: not a cached prefix of prompts[0])
    one_request(base, model, f"Warm-up for {conc} concurrent requests.", 4)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(conc) as ex:
        res = list(ex.map(lambda p: one_request(base, model, p, max_tokens), prompts))
    wall = time.perf_counter() - t0
    ok = [r for r in res if "error" not in r]
    errors = [r["error"] for r in res if "error" in r]
    itl = [x for r in ok for x in r["itl"]]
    return {
        "concurrency": conc, "requests": len(res), "errors": len(errors),
        "first_error": errors[0] if errors else None, "wall_s": wall,
        "output_tok_s": sum(r["tokens"] for r in ok) / wall,
        "ttft_p50": pct([r["ttft"] for r in ok], 50), "ttft_p99": pct([r["ttft"] for r in ok], 99),
        "itl_p50": pct(itl, 50), "itl_p99": pct(itl, 99),
        "e2e_p50": pct([r["e2e"] for r in ok], 50),
    }


def bench(base, model, levels, prompt_tokens, max_tokens, requests_per_level):
    out = []
    for conc in levels:
        n = requests_per_level or (max(conc * 2, 8) if conc < 16 else max(conc, 16))
        prompts = make_prompts(base, n, prompt_tokens, f"c{conc}-")
        r = run_level(base, model, prompts, conc, max_tokens)
        print(f"  {model}: c={conc:3d}  {r['output_tok_s']:7.1f} tok/s  TTFT p50 "
              f"{r['ttft_p50']:.2f}s p99 {r['ttft_p99']:.2f}s  ITL p50 {r['itl_p50'] * 1e3:.0f}ms "
              f"p99 {r['itl_p99'] * 1e3:.0f}ms  errors {r['errors']}", flush=True)
        out.append(r)
    return out


def prefix_test(base, model, prefix_tokens=1000):
    """TTFT of a request with a fresh ~1,000-token prefix, then of one sharing that prefix."""
    prefix = make_prompts(base, 1, prefix_tokens)[0]
    a = one_request(base, model, prefix + " First question: what is it?", 8)
    b = one_request(base, model, prefix + " Second question: where is it?", 8)
    return {"ttft_first": a.get("ttft"), "ttft_shared": b.get("ttft"),
            "ratio": (b["ttft"] / a["ttft"]) if "ttft" in a and "ttft" in b else None}


def wait_ready(base, proc, timeout=600):
    end = time.time() + timeout
    u = urllib.parse.urlparse(base)
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready")


def start(cmd, port):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, proc)
    return proc, base


def cpu_info():
    flags = ""
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8") if
           f in flags.split()]
    return f"{model}, {os.cpu_count()} vCPUs, flags: {' '.join(isa) or 'none of avx2/avx512/amx'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="")
    ap.add_argument("--ohm")
    ap.add_argument("--llama-server")
    ap.add_argument("--gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--prompt-tokens", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--requests", type=int, default=0, help="per level (default: 2x conc, >= 8, below 16; conc, >= 16, from 16)")
    ap.add_argument("--prefix", action="store_true", help="also run the prefix-cache TTFT test")
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--out", help="write a markdown report here (with --ohm/--llama-server)")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    if a.base_url:
        res = bench(a.base_url, a.model, levels, a.prompt_tokens, a.max_tokens, a.requests)
        extra = prefix_test(a.base_url, a.model) if a.prefix else None
        if a.json:
            json.dump({"levels": res, "prefix": extra}, open(a.json, "w"), indent=1)
        if extra:
            print("prefix cache:", extra)
        return 0
    if not (a.gguf and (a.ohm or a.llama_server)):
        ap.error("give --base-url, or --gguf with --ohm and/or --llama-server")
    servers = []
    if a.ohm:
        servers.append(("ohm", [a.ohm, "serve", a.gguf, "--port", "18231", "--served-model-name", "ohm", "--threads",
                                str(a.threads), "--parallel", "64", "--ctx-size", "2048",
                                "--max-queue", "256", "--quiet"], 18231))
    if a.llama_server:
        servers.append(("llama-server", [a.llama_server, "-m", a.gguf, "--port", "18232",
                                         "-t", str(a.threads), "-tb", str(a.threads),
                                         "-np", "16", "-c", "8192"], 18232))
    results = {name: [] for name, _, _ in servers}
    prefix = {}
    for rnd in range(a.rounds):
        for name, cmd, port in (servers if rnd % 2 == 0 else servers[::-1]):
            print(f"round {rnd + 1}: {name}", flush=True)
            proc, base = start(cmd, port)
            try:
                results[name].append(bench(base, name, levels, a.prompt_tokens, a.max_tokens,
                                           a.requests))
                if a.prefix and rnd == 0 and name == "ohm":
                    prefix[name] = prefix_test(base, name)
                    print(f"  prefix cache: {prefix[name]}", flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if a.json:
        json.dump({"results": results, "prefix": prefix}, open(a.json, "w"), indent=1)
    if a.out:
        write_report(a, levels, results, prefix)
    return 0


def write_report(a, levels, results, prefix):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = ["# Serving benchmark: ohm serve vs llama-server", "",
             f"Written by `bench/serve_bench.py` (ohm commit {commit}). Host: {cpu_info()}.",
             f"Model: `{os.path.basename(a.gguf)}`; {a.threads} threads each; "
             f"{a.prompt_tokens}-token prompts, {a.max_tokens} output tokens (ignore_eos), "
             f"streaming /v1/completions; {a.rounds} alternated round(s). ohm: `--parallel 64 "
             f"--ctx-size 2048`; llama-server: `-np 16 -c 8192`.", "",
             "| server | round | concurrency | output tok/s | TTFT p50 (s) | TTFT p99 (s) | "
             "ITL p50 (ms) | ITL p99 (ms) | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rounds in results.items():
        for i, rr in enumerate(rounds):
            for r in rr:
                lines.append(f"| {name} | {i + 1} | {r['concurrency']} | {r['output_tok_s']:.1f} | "
                             f"{r['ttft_p50']:.2f} | {r['ttft_p99']:.2f} | "
                             f"{r['itl_p50'] * 1e3:.0f} | {r['itl_p99'] * 1e3:.0f} | "
                             f"{r['errors']} |")
    if "ohm" in results and "llama-server" in results:
        lines += ["", "Ratios (ohm / llama-server, median over rounds):", "",
                  "| concurrency | output tok/s | TTFT p50 |", "| --- | --- | --- |"]
        for k, conc in enumerate(levels):
            tps = statistics.median(o[k]["output_tok_s"] / l[k]["output_tok_s"] for o, l in
                                    zip(results["ohm"], results["llama-server"]))
            ttft = statistics.median(o[k]["ttft_p50"] / l[k]["ttft_p50"] for o, l in
                                     zip(results["ohm"], results["llama-server"]))
            lines.append(f"| {conc} | {tps:.2f}x | {ttft:.2f}x |")
    if prefix:
        lines += ["", "Prefix cache (TTFT of a ~1,000-token prompt, then of one sharing it):", ""]
        for name, p in prefix.items():
            if p.get("ratio") is None:
                lines.append(f"- {name}: failed ({p})")
                continue
            lines.append(f"- {name}: first {p['ttft_first']:.2f} s, shared {p['ttft_shared']:.2f} s"
                         f" ({p['ratio'] * 100:.0f}%)")
    lines.append("")
    open(a.out, "w").write("\n".join(lines))
    print("wrote", a.out)


if __name__ == "__main__":
    sys.exit(main())
