"""Shared pieces of the differential tests (tests/diff/*.py): where the shared data is, what a
missing input means, and running an `ohm ... --batch` command over JSON lines."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "hub"))
import hubtest  # noqa: E402,F401  (the venv re-exec, for the callers)

__all__ = ["HERE", "ROOT", "SHARED", "hubtest", "missing_shared_data", "run_batch"]

SHARED = os.environ.get("OHM_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def missing_shared_data():
    """The exit code for missing shared data: a failure where the run requires it
    (OHM_REQUIRE_SHARED_DATA, set by scripts/run-tests.sh when ../shared is there), else skip."""
    if os.environ.get("OHM_REQUIRE_SHARED_DATA"):
        print(f"FAIL: no shared data at {SHARED}")
        return 1
    print(f"SKIP: no shared data at {SHARED}")
    return 77


def run_batch(cmd, items, path):
    """Writes items as JSON lines to path, runs cmd + ["--batch", path] and returns one parsed
    answer per item (RuntimeError when ohm fails or answers a different number of lines)."""
    with open(path, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")
    cmd = cmd + ["--batch", path]
    p = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8",
                       errors="surrogateescape", timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-2000:]}")
    lines = p.stdout.split("\n")  # not splitlines(): U+2028 and U+0085 are in the JSON
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(items):
        raise RuntimeError(f"ohm answered {len(lines)} lines for {len(items)} inputs")
    return [json.loads(l) for l in lines]
