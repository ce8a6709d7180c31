#!/usr/bin/env python3
"""`ohm chat` under a real terminal: a scripted pty session (stdlib only, no pip packages).

Usage: test_chat_pty.py OHM_BINARY MODEL_DIR
Checks: the prompt appears, a reply streams after each user line, the KV cache is reused on
the second turn, /exit ends the program with status 0; with line editing (libedit) the lines
land in the --history file.
"""
import os
import pty
import select
import sys
import tempfile
import time


_pending = b""


def read_until(fd, needle, timeout=60.0):
    """Returns everything up to and including `needle`; keeps the rest for the next call."""
    global _pending
    buf = _pending
    end = time.time() + timeout
    while needle not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if fd in r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    if needle not in buf:
        raise AssertionError(f"timed out waiting for {needle!r}; got {buf!r}")
    i = buf.index(needle) + len(needle)
    _pending = buf[i:]
    return buf[:i]


def main():
    ohm, model = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="ohm-chat-pty-")
    history = os.path.join(tmp, "history")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(ohm, [ohm, "chat", model, "--max-new-tokens", "12", "--seed", "3",
                       "--history", history])
    out = read_until(fd, b"> ")
    editing = b"line editing and history on" in out
    os.write(fd, b"Good morrow, sweet prince.\n")
    out = read_until(fd, b"context tokens reused")
    # the reply ends at --max-new-tokens 12 (the demo model does not stop earlier with seed 3)
    assert b"ohm: 12 tokens, " in out, out
    out = read_until(fd, b"> ")
    os.write(fd, b"What news?\n")
    out = read_until(fd, b"context tokens reused")
    reused = int(out.split(b"tok/s, ")[1].split(b" context")[0])
    assert reused > 5, f"second turn should reuse the cached conversation, got {reused}: {out!r}"
    read_until(fd, b"> ")
    os.write(fd, b"/exit\n")
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    if editing:
        with open(history, encoding="utf-8", errors="replace") as f:
            text = f.read()
        assert "What news?" in text or "What\\040news?" in text, text
        os.remove(history)
    os.rmdir(tmp)
    print("chat pty test: ok (second turn reused", reused, "tokens; line editing",
          "on)" if editing else "off)")


if __name__ == "__main__":
    main()
