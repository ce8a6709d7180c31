#!/usr/bin/env python3
"""Attacks on `ohm hub serve`'s transport, as a hostile client would make them (issue 12):
slow and half-open connections, bad request lengths and heads, pipelining, the port, and what
the access log reveals. Standard library only; every connection goes to loopback addresses
(127.0.0.x), every loop is bounded.

Usage: test_hub_attacks.py --ohm build/.../ohm
Exit codes: 0 passed, 1 a check failed.
"""
import argparse
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check, results, run  # noqa: E402

HEADER_TIMEOUT = 3
BODY_TIMEOUT = 3


def start_server(ohm, data, log_path, *extra):
    log = open(log_path, "w")
    server = subprocess.Popen([ohm, "hub", "serve", "--data", data, "--port", "0",
                               "--header-timeout", str(HEADER_TIMEOUT),
                               "--body-timeout", str(BODY_TIMEOUT), *extra],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    ready, _, _ = select.select([server.stdout], [], [], 60)
    assert ready, "server did not start"
    line = server.stdout.readline().strip()
    port = int(line.rsplit(":", 1)[1])
    return server, port


def connect(port, src="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(s, deadline_s=5.0):
    """Reads one HTTP response (head + Content-Length body) from s; returns (status, headers,
    body, rest) or raises on timeout/EOF."""
    buf = b""
    end = time.time() + deadline_s
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, end - time.time()))
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed after {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        s.settimeout(max(0.01, end - time.time()))
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed in the body")
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def raw(port, data, src="127.0.0.1", deadline_s=2.0):
    """Sends data (ignoring a reset while sending: the server may refuse early) and returns the
    first response's status and body, with the seconds it took."""
    t0 = time.time()
    s = connect(port, src)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body, _ = read_response(s, deadline_s)
        return status, headers, body, time.time() - t0
    finally:
        s.close()


def timed_get(base, path="/api/models", timeout=5.0):
    t0 = time.time()
    with urllib.request.urlopen(base + path, timeout=timeout) as r:
        r.read()
        return r.status, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    args = ap.parse_args()
    ohm = os.path.abspath(args.ohm)
    tmp = tempfile.mkdtemp(prefix="ohm-hub-attacks-")
    data = os.path.join(tmp, "data")
    log_path = os.path.join(tmp, "access.log")
    run([ohm, "hub", "user", "add", "alice", "--data", data])
    token = run([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "write"])
    server, port = start_server(ohm, data, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        req = urllib.request.Request(base + "/api/repos/create", method="POST",
                                     data=b'{"name": "target", "type": "model"}',
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()

        def t_half_open(n, sources):
            def t():
                held = []
                try:
                    for i in range(n):
                        s = connect(port, sources[i % len(sources)])
                        s.sendall(b"GET /api/mod")  # half a request line, never finished
                        held.append(s)
                    time.sleep(0.2)
                    for _ in range(3):
                        status, dt = timed_get(base)
                        assert status == 200 and dt < 1.0, (status, dt)
                    # the held connections are still open (not refused), and are cut after the
                    # header timeout with 408
                    s = held[0]
                    status, _, body, _ = read_response(s, HEADER_TIMEOUT + 3)
                    assert status == 408, (status, body)
                finally:
                    for s in held:
                        s.close()
            return t

        # 64 (the default worker count) from two other loopback addresses, then 256 from eight
        # (32 each: the per-IP cap); the normal client is 127.0.0.1
        check("64 half-open connections: a normal client is served within 1 s",
              t_half_open(64, ["127.0.0.2", "127.0.0.3"]))
        check("256 half-open connections: a normal client is served within 1 s",
              t_half_open(256, [f"127.0.0.{k}" for k in range(4, 12)]))

        def t_reconnect_storm():
            # reconnecting half-open clients, as an attacker keeping the Hub down would
            stop = time.time() + 2.5
            errors = []

            def storm(src):
                socks = []
                while time.time() < stop:
                    try:
                        s = connect(port, src, timeout=1.0)
                        s.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n")
                        socks.append(s)
                    except OSError as e:
                        errors.append(e)
                    if len(socks) >= 16:
                        socks.pop(0).close()
                    time.sleep(0.005)
                for s in socks:
                    s.close()
            ths = [threading.Thread(target=storm, args=(f"127.0.0.{20 + k}",)) for k in range(4)]
            for th in ths:
                th.start()
            worst = 0.0
            while time.time() < stop:
                status, dt = timed_get(base)
                assert status == 200
                worst = max(worst, dt)
                time.sleep(0.1)
            for th in ths:
                th.join()
            assert worst < 1.0, worst

        check("a reconnecting half-open storm does not stop a normal client", t_reconnect_storm)

        def t_per_ip_cap():
            held = [connect(port, "127.0.0.50") for _ in range(32)]
            try:
                time.sleep(0.1)
                status, _, body, dt = raw(port, b"", src="127.0.0.50")
                assert status == 429 and b"too many connections" in body, (status, body)
                status, _ = timed_get(base)  # other addresses are not affected
                assert status == 200
            finally:
                for s in held:
                    s.close()

        check("connections per client IP are capped (33rd: 429)", t_per_ip_cap)

        def expect(data, status_want, fragment, src="127.0.0.1"):
            status, headers, body, dt = raw(port, data, src)
            assert status == status_want, (status, body)
            assert fragment.encode() in body, body
            assert dt < 1.0, dt
            assert headers.get("connection") == "close", headers

        check("POST without Content-Length: 411 at once", lambda: expect(
            b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"))
        check("Content-Length 10^15: 413 at once", lambda: expect(
            b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n",
            413, "limit"))
        check("Content-Length -5: 400 at once", lambda: expect(
            b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400,
            "Content-Length"))
        check("Content-Length given twice: 400 at once", lambda: expect(
            b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Content-Length: 2\r\n\r\n{}", 400, "more than once"))
        check("Content-Length with Transfer-Encoding: 400 (no smuggling)", lambda: expect(
            b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n{}", 400, "Transfer-Encoding"))
        check("a 1 MiB header: 431 at once", lambda: expect(
            b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
            431, "larger than"))
        check("20,000 headers: 431 at once", lambda: expect(
            b"GET /api/models HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n",
            431, "larger than"))
        check("101 small headers: 431 (count)", lambda: expect(
            b"GET /api/models HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
            431, "header fields"))
        check("bare LF line ends: 400", lambda: expect(
            b"GET /api/models HTTP/1.1\nHost: x\n\n" + b"\r\n\r\n", 400, "CRLF"))

        def t_slow_body():
            s = connect(port)
            try:
                s.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
                t0 = time.time()
                status, _, body, _ = read_response(s, BODY_TIMEOUT + 3)
                assert status == 408 and b"body" in body, (status, body)
                assert time.time() - t0 < BODY_TIMEOUT + 2
            finally:
                s.close()

        check("a body that never completes: 408 after --body-timeout", t_slow_body)

        def t_slow_uploads():
            # large bodies are read by the workers: 48 commits (by a user with a write token)
            # that stall after their head, from six addresses, take at most half the workers (8
            # per address); a normal client is still served, and the uploads waiting for a slot
            # are answered 503 in time
            held = []
            try:
                for i in range(48):
                    s = connect(port, f"127.0.0.{60 + i % 6}")
                    s.sendall(b"POST /api/models/alice/target/commit/main HTTP/1.1\r\nHost: x\r\n"
                              b"Authorization: Bearer " + token.encode() + b"\r\n"
                              b"Content-Type: application/x-ndjson\r\n"
                              b"Content-Length: 1048576\r\n\r\n" + b"{" * 100)
                    held.append(s)
                t0 = time.time()
                time.sleep(0.3)
                for _ in range(3):
                    status, dt = timed_get(base)
                    assert status == 200 and dt < 1.0, (status, dt)
                # when does each answer arrive? a slot holder's body read times out after
                # --body-timeout (400 "could not read the request body"); a waiting one gets the
                # slot then (and times out one --body-timeout later) or 503
                when = {}
                pending = set(held)
                while pending and time.time() - t0 < 3 * BODY_TIMEOUT + 5:
                    ready, _, _ = select.select(list(pending), [], [], 0.5)
                    for s in ready:
                        try:
                            st = read_response(s, 2)[0]
                        except (EOFError, OSError) as e:
                            st = repr(e)
                        when[s] = (st, time.time() - t0)
                        pending.discard(s)
                assert not pending, f"{len(pending)} uploads never answered"
                # exactly 32 held a worker from the start (their 400 comes after one body
                # timeout); the other 16 waited: 503 when their wait ran out, or a slot freed by
                # then and a 400 one body timeout later (which comes first is a race)
                ordered = sorted(when.values(), key=lambda x: x[1])
                assert {st for st, _ in ordered} <= {400, 503}, ordered
                early_400 = [t for st, t in ordered if st == 400 and t < BODY_TIMEOUT + 1.5]
                assert len(early_400) == 32, ordered
                assert all(t >= 2 * BODY_TIMEOUT - 0.5 for st, t in ordered if st == 400
                           and t >= BODY_TIMEOUT + 1.5), ordered
            finally:
                for s in held:
                    s.close()

        check("stalled uploads take at most half the workers; a normal client is served",
              t_slow_uploads)

        def t_anonymous_large_body():
            # refused before the body is read (401): answered at once, connection closed,
            # nothing of the body waited for
            s = connect(port)
            try:
                s.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 10000000\r\n\r\n{")
                t0 = time.time()
                status, headers, body, _ = read_response(s, 2)
                assert status == 401 and time.time() - t0 < 1.0, (status, body)
                assert headers.get("connection") == "close", headers
            finally:
                s.close()

        check("an anonymous large body is answered at once, not drained", t_anonymous_large_body)

        def t_pipelining():
            s = connect(port)
            try:
                s.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /api/models/nobody/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                          + token.encode() + b"\r\n\r\n"
                          b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                          + token.encode() + b"\r\n\r\n")
                got, rest = [], b""
                for _ in range(4):
                    # responses after the first may already be in `rest`
                    if rest:
                        s2 = _Prefixed(s, rest)
                        status, _, body, rest = read_response(s2, 3)
                    else:
                        status, _, body, rest = read_response(s, 3)
                    got.append(status)
                assert got == [200, 401, 404, 200], got
            finally:
                s.close()

        check("pipelined requests in one packet are answered in order", t_pipelining)

        def t_keepalive_and_chunked():
            s = connect(port)
            try:
                body = b'{"name": "chunky", "type": "model"}'
                chunked = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
                s.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                          + token.encode() + b"\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
                status, _, b1, rest = read_response(s, 3)
                assert status == 200, (status, b1)
                assert rest == b""
                s.sendall(b"GET /api/models/alice/chunky HTTP/1.1\r\nHost: x\r\n\r\n")
                status, _, b2, _ = read_response(s, 3)
                assert status == 200 and b"alice/chunky" in b2, (status, b2)
            finally:
                s.close()

        check("a chunked body and a keep-alive request on the same connection", t_keepalive_and_chunked)

        def t_port_conflict():
            p = subprocess.run([ohm, "hub", "serve", "--data", data, "--port", str(port), "--quiet"],
                               capture_output=True, text=True, timeout=20)
            assert p.returncode != 0, p
            assert "port in use" in p.stderr, p.stderr
            status, _ = timed_get(base)  # the first server still answers
            assert status == 200

        check("a second server on the same port fails with 'port in use'", t_port_conflict)

        def t_port_range():
            for bad in ("70000", "-1", "65536"):
                p = subprocess.run([ohm, "hub", "serve", "--data", data, "--port", bad, "--quiet"],
                                   capture_output=True, text=True, timeout=20)
                assert p.returncode == 2, (bad, p.returncode, p.stderr)
                assert "--port" in p.stderr, p.stderr

        check("an out-of-range port is refused (exit 2)", t_port_range)

        def t_log():
            secret_q = "hf_querysecret0123456789"
            req = urllib.request.Request(base + "/api/whoami-v2",
                                         headers={"Authorization": "Bearer " + token})
            urllib.request.urlopen(req, timeout=5).read()
            try:
                urllib.request.urlopen(base + "/api/models?token=" + secret_q + "&search=x",
                                       timeout=5).read()
            except urllib.error.HTTPError:
                pass
            try:
                urllib.request.urlopen(urllib.request.Request(
                    base + "/api/lfs-upload/" + "0" * 64 + "?size=1&exp=1&sig=deadbeefcafe",
                    data=b"x", method="PUT"), timeout=5).read()
            except urllib.error.HTTPError:
                pass
            time.sleep(0.3)
            text = open(log_path).read()
            for secret in (token, secret_q, "deadbeefcafe"):
                assert secret not in text, f"{secret} in the access log"
            lines = [l for l in text.splitlines() if "whoami-v2" in l]
            assert lines, text[-2000:]
            # 2026-12-05T21:58:01.123Z 127.0.0.1 "GET /api/whoami-v2" 200 512 1.2ms
            pat = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ "(\S+) (\S+)" (\d{3}) (\d+) [\d.]+ms')
            for l in text.splitlines():
                if l.startswith("ohm hub"):
                    continue
                m = pat.match(l)
                assert m, f"log line without the fields: {l!r}"
            assert any('"GET /api/models?token=REDACTED&search=x"' in l for l in text.splitlines())
            assert any('sig=REDACTED' in l for l in text.splitlines())
            assert any(' 127.0.0.1 "GET /api/whoami-v2" 200 ' in l for l in lines), lines

        check("the access log: timestamp, client, method, path, status, bytes, time; no secrets", t_log)

        def t_still_alive():
            status, dt = timed_get(base)
            assert status == 200 and dt < 1.0
            assert server.poll() is None

        check("the server is still up after every attack", t_still_alive)

        def t_stop_with_stalled_upload():
            # a worker waits in the middle of a body (the client stalls): SIGTERM must not wait
            # for the body timeout
            s = connect(port)
            try:
                s.sendall(b"POST /api/models/alice/target/commit/main HTTP/1.1\r\nHost: x\r\n"
                          b"Authorization: Bearer " + token.encode() + b"\r\n"
                          b"Content-Length: 1048576\r\n\r\n" + b"{" * 10)
                time.sleep(0.3)
                t0 = time.time()
                server.terminate()
                server.wait(timeout=10)
                assert time.time() - t0 < 1.5, time.time() - t0  # the body timeout is 3 s
                assert server.returncode == 0, server.returncode
            finally:
                s.close()

        check("SIGTERM stops the server at once although a client stalls mid-upload",
              t_stop_with_stalled_upload)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            results.append(("server stops on SIGTERM within 30 s", False, "timeout"))
    return hubtest.finish(tmp)


class _Prefixed:
    """A socket whose first reads come from bytes already received."""

    def __init__(self, s, prefix):
        self.s, self.prefix = s, prefix

    def settimeout(self, t):
        self.s.settimeout(t)

    def recv(self, n):
        if self.prefix:
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return self.s.recv(n)


if __name__ == "__main__":
    sys.exit(main())
