#!/usr/bin/env python3
"""`ohm eval --data-repo`: task data read from a dataset repo on `ohm hub serve` (HF_ENDPOINT),
downloaded into the HF cache, then again offline (HF_HUB_OFFLINE=1) from that cache; the
results equal those of the same files through --data-dir.

Usage: test_hub_eval_data.py --ohm build/.../ohm
Exit codes: 0 all checks passed, 1 a check failed.
"""
import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "models", "ohm-demo")
DATA = os.path.join(ROOT, "tests", "fixtures", "eval", "data")
TASKS = "arc_easy,winogrande,truthfulqa_mc2,lambada_openai"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    args = ap.parse_args()
    ohm = os.path.abspath(args.ohm)
    tmp = tempfile.mkdtemp(prefix="ohm-hub-eval-")
    data = os.path.join(tmp, "data")
    proc = None
    try:
        def out(cmd, env=None):
            e = dict(os.environ)
            e.update(env or {})
            r = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=600)
            if r.returncode != 0:
                raise AssertionError(f"{cmd} -> {r.returncode}: {r.stderr[-2000:]}")
            return r

        out([ohm, "hub", "user", "add", "alice", "--data", data])
        token = out([ohm, "hub", "token", "create", "--data", data, "--user", "alice",
                     "--scope", "write"]).stdout.strip()
        proc = subprocess.Popen([ohm, "hub", "serve", "--data", data, "--port", "0"],
                                stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "log"), "w"),
                                text=True)
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "server did not start"
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                  "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OHM_EVAL_DATA"):
            os.environ.pop(k, None)
        env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_TOKEN": token,
               "HF_HOME": os.path.join(tmp, "hf_home")}
        out([ohm, "push", DATA, "alice/eval-data", "--repo-type", "dataset", "-q"], env)

        common = [ohm, "eval", DEMO, "--tasks", TASKS, "--limit", "3", "-q"]
        local = os.path.join(tmp, "local.json")
        out(common + ["--data-dir", DATA, "-o", local])
        hub = os.path.join(tmp, "hub.json")
        r = out(common[:-1] + ["--data-repo", "alice/eval-data", "-o", hub], env)
        assert "data from dataset alice/eval-data" in r.stderr, r.stderr
        snaps = os.path.join(tmp, "hf_home", "hub", "datasets--alice--eval-data", "snapshots")
        assert os.path.isdir(snaps) and os.listdir(snaps), "no snapshot in the HF cache"
        offline = os.path.join(tmp, "offline.json")
        out(common + ["--data-repo", "alice/eval-data", "-o", offline],
            dict(env, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:1"))
        want = json.load(open(local))["results"]
        for path in (hub, offline):
            got = json.load(open(path))["results"]
            assert got == want, (path, got, want)
        r = subprocess.run(common + ["--data-repo", "alice/no-such-data"], capture_output=True,
                           text=True, env=dict(os.environ, **env), timeout=600)
        assert r.returncode != 0 and "alice/no-such-data" in r.stderr, r.stderr
        print("ok: ohm eval --data-repo (online, offline, missing repo)")
        return 0
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
