#!/usr/bin/env python3
"""The dataset viewer's parquet conversion and /first-rows latency, side by side with the peer.

Usage: bench/dataviewer_bench.py --ohm build/release/ohm [--rows 40000] [--repeat 3]
Run under build/hub-venv (PyPI datasets). Writes a jsonl of --rows rows (~134 bytes each), then
  ohm:  pushes it to `ohm hub serve` and takes the worker's conversion time (status duration_ms:
        blob copy-out, Arrow json read, parquet write, LFS store, commit), best of --repeat
        (a new repo each time), and 200 /datasets-server/first-rows requests;
  peer: what HF's parquet-converter does per split with `datasets`: load_dataset("json") into a
        fresh cache and Dataset.to_parquet(), best of --repeat.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "hub"))
import hubtest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--rows", type=int, default=40000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ohm-dv-bench-")
    path = os.path.join(tmp, "train.jsonl")
    rnd = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    with open(path, "w") as f:
        for i in range(a.rows):
            f.write(json.dumps({"text": " ".join(rnd.choice(words) for _ in range(14)),
                                "label": i % 5, "score": rnd.random()}) + "\n")
    mb = os.path.getsize(path) / 1e6
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(a.ohm)
    hubtest.run([ohm, "hub", "user", "add", "alice", "--data", data])
    tok = hubtest.run([ohm, "hub", "token", "create", "--data", data, "--user", "alice",
                       "--scope", "write"])
    server, base = hubtest.start_server(ohm, data)
    try:
        hubtest.use_endpoint(base, tmp)
        os.environ["HF_DATASETS_CACHE"] = os.path.join(tmp, "cache")
        import datasets
        from huggingface_hub import HfApi
        datasets.disable_progress_bars()
        api = HfApi(endpoint=base, token=tok)
        ohm_ms = []
        for k in range(a.repeat):
            repo = f"alice/bench{k}"
            api.create_repo(repo, repo_type="dataset")
            api.upload_file(path_or_fileobj=path, path_in_repo="train.jsonl", repo_id=repo,
                            repo_type="dataset")
            end = time.time() + 300
            while True:
                try:
                    urllib.request.urlopen(f"{base}/datasets-server/splits?dataset={repo}").read()
                    break
                except urllib.error.HTTPError:
                    assert time.time() < end
                    time.sleep(0.02)
            for f in os.listdir(os.path.join(data, "viewer", "status")):
                st = json.load(open(os.path.join(data, "viewer", "status", f)))
                if st.get("repo") == repo:
                    ohm_ms.append(st["duration_ms"])
        lat = []
        url = f"{base}/datasets-server/first-rows?dataset=alice/bench0&config=default&split=train"
        for _ in range(200):
            t = time.perf_counter()
            urllib.request.urlopen(url).read()
            lat.append((time.perf_counter() - t) * 1000)
        peer_ms = []
        for k in range(a.repeat):
            t = time.perf_counter()
            ds = datasets.load_dataset("json", data_files=path, split="train",
                                       cache_dir=os.path.join(tmp, f"peer{k}"))
            ds.to_parquet(os.path.join(tmp, f"peer{k}.parquet"))
            peer_ms.append((time.perf_counter() - t) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat.sort()
    o, p = min(ohm_ms), min(peer_ms)
    print(f"{a.rows} rows, {mb:.2f} MB jsonl; loadavg {open('/proc/loadavg').read().split()[:3]}")
    print(f"ohm conversion (worker): best {o:.0f} ms of {[round(x) for x in ohm_ms]}")
    print(f"peer datasets load_dataset(json)+to_parquet: best {p:.0f} ms of {[round(x) for x in peer_ms]}")
    print(f"ratio peer/ohm: {p / o:.2f}x")
    print(f"/first-rows: median {statistics.median(lat):.2f} ms, p90 {lat[int(len(lat) * 0.9)]:.2f} ms, "
          f"p99 {lat[int(len(lat) * 0.99)]:.2f} ms over {len(lat)} requests")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
