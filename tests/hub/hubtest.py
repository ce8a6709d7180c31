"""Shared pieces of the Hub test scripts (tests/hub/test_hub_*.py): the check recorder, a
subprocess helper, starting `ohm hub serve` and pointing the HF clients at it, and the re-exec under build/hub-venv (scripts/hub-client-venv.sh) when the
running Python lacks the official clients."""
import importlib
import os
import select
import shutil
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

results = []  # (name, passed, error repr)


def check(name, fn):
    t0 = time.time()
    try:
        fn()
        results.append((name, True, ""))
        print(f"PASS {name} ({time.time() - t0:.1f}s)", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append((name, False, repr(e)))
        print(f"FAIL {name}: {e!r}", flush=True)
        traceback.print_exc()


def failed():
    return [r[0] for r in results if not r[1]]


def finish(tmp, keep=False):
    """The closing lines of a test script: removes tmp when every check passed (unless keep),
    prints the count, and returns the exit code (1 on a failure, or when no check ran)."""
    fails = failed()
    if fails or keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(results) - len(fails)} passed, {len(fails)} failed")
    return 1 if fails or not results else 0


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def have_modules_or_reexec(*modules):
    """True when every module imports; otherwise re-executes this script under build/hub-venv if
    that exists and is not the running interpreter (compared by sys.prefix: a venv's python is a
    symlink to the system one), else False (the caller skips)."""
    try:
        for m in modules:
            importlib.import_module(m)
        return True
    except ImportError:
        venv = os.path.join(ROOT, "build", "hub-venv")
        venv_py = os.path.join(venv, "bin", "python")
        if os.path.exists(venv_py) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(venv_py, [venv_py] + sys.argv)
        return False


def start_server(ohm, data, *extra):
    """Starts `ohm hub serve --data DATA --port 0 --quiet EXTRA...`; returns (process, base URL).
    The caller stops the process."""
    server = subprocess.Popen([ohm, "hub", "serve", "--data", data, "--port", "0", "--quiet",
                               *extra], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([server.stdout], [], [], 60)
    if not ready:
        server.kill()
        raise AssertionError("server did not start")
    return server, f"http://127.0.0.1:{int(server.stdout.readline().strip().rsplit(':', 1)[1])}"


def use_endpoint(base, tmp):
    """Points huggingface_hub at `base` (no token from the environment, no Xet, no telemetry,
    HF_HOME under tmp)."""
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        os.environ.pop(k, None)
    os.environ.update({"HF_ENDPOINT": base, "HF_HUB_DISABLE_XET": "1",
                       "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": os.path.join(tmp, "hf_home"),
                       "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
