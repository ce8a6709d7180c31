#!/usr/bin/env python3
"""Runs a command and passes only when it exits 0 and its stdout contains the expected text (a
PASS_REGULAR_EXPRESSION alone would pass a run that printed the text and then aborted, e.g. on a
sanitizer report).

Usage: expect_output.py EXPECTED -- COMMAND [ARGS...]
"""
import subprocess
import sys


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__)
        return 2
    expected, cmd = sys.argv[1].encode().decode("unicode_escape"), sys.argv[3:]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        print(f"FAIL: exit code {p.returncode}")
        return 1
    if expected not in p.stdout:
        print(f"FAIL: the output does not contain {expected!r}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
