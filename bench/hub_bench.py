#!/usr/bin/env python3
"""Performance benchmark of `ohm hub serve` (not a test): starts a server on loopback and measures

  1. one 1 GiB LFS file downloaded over loopback: `curl -o /dev/null` and `ohm pull` (which also
     writes the blob to the cache and verifies its sha256), plus the `ohm push` that uploaded it;
  2. 64 concurrent clients downloading 64 different files (each verified), no error allowed;
  3. list_models (`GET /api/models`) over 10,000 repos: first page, search, sort by downloads.

Usage: python3 bench/hub_bench.py --ohm build/h-hubc-rel/ohm [--size-mib 1024] [--repos 10000]
       [--clients 64] [--keep]
Uses only the standard library and curl. Results are printed as a table (paste into docs/hub.md).
"""
import argparse
import concurrent.futures as cf
import hashlib
import http.client
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repos", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--file-mib", type=int, default=8, help="size of each concurrent client's file")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    ohm = os.path.abspath(args.ohm)
    tmp = tempfile.mkdtemp(prefix="ohm-hub-bench-")
    data = os.path.join(tmp, "data")
    sh([ohm, "hub", "user", "add", "bench", "--data", data])
    token = sh([ohm, "hub", "token", "create", "--data", data, "--user", "bench", "--scope", "write"])
    srv = subprocess.Popen([ohm, "hub", "serve", "--data", data, "--port", "0", "--quiet"],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "w"), text=True)
    ready, _, _ = select.select([srv.stdout], [], [], 60)
    assert ready, "server did not start"
    port = int(srv.stdout.readline().strip().rsplit(":", 1)[1])
    ep = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HF_ENDPOINT=ep, HF_TOKEN=token, HF_HOME=os.path.join(tmp, "home"))
    for k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
        env.pop(k, None)
    rows = []

    def row(what, value):
        rows.append((what, value))
        print(f"{what}: {value}", flush=True)

    try:
        # ---------------------------------------------------------------- 1 GiB
        up = os.path.join(tmp, "big")
        os.makedirs(up)
        size = args.size_mib << 20
        block = os.urandom(1 << 20)
        with open(os.path.join(up, "big.bin"), "wb") as f:
            for i in range(args.size_mib):
                f.write(i.to_bytes(8, "little") + block[8:])
        t0 = time.time()
        sh([ohm, "push", up, "bench/big", "--quiet"], env=env)
        dt = time.time() - t0
        row(f"ohm push of a {args.size_mib} MiB file (sha256 + LFS PUT + server verify/fsync + commit)",
            f"{dt:.2f} s ({size / dt / 1e9:.2f} GB/s)")
        url = f"{ep}/bench/big/resolve/main/big.bin"
        speeds = []
        for _ in range(3):
            out = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url])
            sp, n = out.split()
            assert int(float(n)) == size, out
            speeds.append(float(sp))
        row(f"curl -o /dev/null, {args.size_mib} MiB over loopback (best of 3)",
            f"{max(speeds) / 1e9:.2f} GB/s (runs: {', '.join(f'{s / 1e9:.2f}' for s in speeds)})")
        times = []
        for i in range(2):
            cache = os.path.join(tmp, f"pull{i}")
            t0 = time.time()
            sh([ohm, "pull", "bench/big", "--cache-dir", cache, "--quiet"], env=env)
            times.append(time.time() - t0)
            shutil.rmtree(cache)
        best = min(times)
        row(f"ohm pull, {args.size_mib} MiB into the cache incl. sha256 verify (best of 2)",
            f"{best:.2f} s ({size / best / 1e9:.2f} GB/s)")
        os.remove(os.path.join(up, "big.bin"))

        # ---------------------------------------------------------------- 64 concurrent clients
        many = os.path.join(tmp, "many")
        os.makedirs(many)
        sums = {}
        fsize = args.file_mib << 20
        for i in range(args.clients):
            b = hashlib.sha256(str(i).encode()).digest() * (fsize // 32)
            with open(os.path.join(many, f"f{i:03d}.bin"), "wb") as f:
                f.write(b)
            sums[f"f{i:03d}.bin"] = hashlib.sha256(b).hexdigest()
        sh([ohm, "push", many, "bench/many", "--quiet"], env=env)
        shutil.rmtree(many)

        def fetch(name):
            h = hashlib.sha256()
            n = 0
            with urllib.request.urlopen(f"{ep}/bench/many/resolve/main/{name}", timeout=120) as r:
                for b in iter(lambda: r.read(1 << 20), b""):
                    h.update(b)
                    n += len(b)
            return h.hexdigest() == sums[name] and n == fsize

        t0 = time.time()
        with cf.ThreadPoolExecutor(args.clients) as ex:
            futs = [ex.submit(fetch, name) for name in sums]
            ok = 0
            errors = []
            for fu in futs:
                try:
                    ok += fu.result()
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
        dt = time.time() - t0
        row(f"{args.clients} concurrent clients x {args.file_mib} MiB (different files)",
            f"{ok}/{args.clients} verified, {len(errors)} errors, {dt:.2f} s "
            f"({args.clients * fsize / dt / 1e9:.2f} GB/s aggregate)")
        assert ok == args.clients, errors[:3]

        # ---------------------------------------------------------------- 10k repos
        def create(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for j in range(i, args.repos, 16):
                c.request("POST", "/api/repos/create", json.dumps({"name": f"r{j:05d}"}),
                          {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                assert r.status == 200, r.status
            c.close()

        t0 = time.time()
        with cf.ThreadPoolExecutor(16) as ex:
            list(ex.map(create, range(16)))
        dt = time.time() - t0
        row(f"create {args.repos} repos over HTTP (16 clients)", f"{dt:.1f} s ({args.repos / dt:.0f} repos/s)")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def timed(path, n=20):
            ts = []
            body = b""
            for _ in range(n):
                t0 = time.perf_counter()
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                assert r.status == 200, (path, r.status)
                ts.append(time.perf_counter() - t0)
            return statistics.median(ts) * 1000, max(ts) * 1000, len(json.loads(body))

        for path in ("/api/models", "/api/models?limit=100", "/api/models?search=r0999&limit=20",
                     "/api/models?author=bench&sort=downloads&direction=-1&limit=100",
                     "/api/models?filter=text-generation&limit=100", "/api/models?full=true&limit=20"):
            med, mx, n = timed(path)
            row(f"GET {path} ({args.repos + 2} repos; {n} returned)", f"median {med:.1f} ms, max {mx:.1f} ms")
    finally:
        srv.terminate()
        srv.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n| measurement | result |\n| --- | --- |")
    for w, v in rows:
        print(f"| {w} | {v} |")
    print(f"\n{time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
