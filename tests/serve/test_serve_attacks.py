#!/usr/bin/env python3
"""Robustness of `ohm serve` (issue 15's acceptance), standard library only:
- 200 concurrent clients against a queue of 32 get only 200s and 503s; afterwards the engine is
  idle with every KV block free, and the server still answers;
- 1,000 malformed bodies (fuzzed JSON, wrong types, huge numbers, invalid UTF-8, deep nesting)
  each get a 4xx in OpenAI's error shape, and the server keeps serving;
- a client that disconnects mid-stream has its request cancelled and its KV blocks back in the
  free pool (checked through /metrics);
- 64 half-open connections from one address do not stall a client from another;
- SIGTERM during streams: running streams end (finished, or cut at the drain deadline with an
  error event and [DONE]), and the process exits 0.
Runs under the ASan build in CI (the binary given).

Usage: test_serve_attacks.py OHM_BINARY MODEL_DIR
"""
import concurrent.futures as cf
import http.client
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time

OHM, MODEL = sys.argv[1], sys.argv[2]
failures, checks = [], 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def start(*args):
    p = subprocess.Popen([OHM, "serve", MODEL, "--port", "0", "--quiet", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r":(\d+)/v1", line)
    if not m:
        p.kill()
        raise SystemExit(f"ohm serve did not start: {line!r} {p.stderr.read()}")
    return p, int(m.group(1))


def request(port, method, path, body=None, src="127.0.0.1", timeout=120, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(src, 0))
    try:
        h = {"Content-Type": "application/json", **(headers or {})}
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def metrics(port):
    _, body = request(port, "GET", "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        out[re.sub(r"\{.*\}", "", k) if "_bucket" not in k else k] = float(v)
    return out


def wait_idle(port, seconds=10):
    end = time.time() + seconds
    m = {}
    while time.time() < end:
        m = metrics(port)
        if m.get("ohm:num_requests_running") == 0 and m.get("ohm:num_requests_waiting") == 0 \
                and m.get("ohm:kv_blocks_used") == 0:
            return m
        time.sleep(0.05)
    return m


def error_shaped(body):
    try:
        e = json.loads(body)["error"]
        return {"message", "type", "param", "code"} <= set(e)
    except Exception:  # noqa: BLE001
        return False


def concurrent_clients(port):
    body = {"prompt": "ROMEO:", "max_tokens": 24, "temperature": 0}

    def one(i):
        try:
            st, b = request(port, "POST", "/v1/completions", body, src=f"127.0.0.{2 + i % 8}")
            if st != 200 and not error_shaped(b):
                return f"{st} unshaped"
            return st
        except Exception as e:  # noqa: BLE001
            return f"exception {e!r}"
    with cf.ThreadPoolExecutor(200) as ex:
        statuses = list(ex.map(one, range(200)))
    counts = {s: statuses.count(s) for s in set(statuses)}
    print("200 clients, queue 32:", counts, flush=True)
    check(set(statuses) <= {200, 503}, f"statuses {counts}")
    check(200 in statuses and 503 in statuses, f"expected both 200 and 503: {counts}")
    m = wait_idle(port)
    check(m.get("ohm:kv_blocks_used") == 0, f"blocks left after the storm: {m}")
    check(request(port, "GET", "/health")[0] == 200, "not healthy after the storm")


def malformed(i, rng):
    good = {"model": "ohm-demo", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2}
    kind = i % 10
    if kind == 0:  # truncated or garbled JSON
        s = json.dumps(good)
        return s[: rng.randrange(len(s))].encode()
    if kind == 1:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 2:  # invalid UTF-8 inside a string
        return b'{"messages":[{"role":"user","content":"\xff\xfe\xc3"}],"max_tokens":2}'
    if kind == 3:  # deep nesting
        d = rng.choice([100, 1000, 10000])
        return ("[" * d + "]" * d).encode() if rng.random() < 0.5 else \
            ('{"a":' * d + "1" + "}" * d).encode()
    if kind == 4:  # huge numbers
        v = rng.choice(["1e400", "-1e400", "18446744073709551616", "1" * 400, "NaN", "Infinity"])
        f = rng.choice(["max_tokens", "temperature", "n", "seed", "top_p", "top_logprobs"])
        return f'{{"messages":[{{"role":"user","content":"hi"}}],"{f}":{v}}}'.encode()
    if kind == 5:  # wrong types and out-of-range values
        wrong = {"messages": [5, "x", {}, None], "max_tokens": ["x", 3.5, -1, 0, []],
                 "temperature": ["x", [], -1, 3], "stream": ["x", 3, []],
                 "stop": [5, {}, [1], ["a", "b", "c", "d", "e"]], "n": [0, "x", 3.5, 100],
                 "tools": ["x", 5, [1]], "response_format": ["x", 5, {"type": "nope"}],
                 "logprobs": ["x", 5, []], "model": [5, [], {}],
                 "tool_choice": [5, "maybe", {}], "seed": ["x", 3.5, []],
                 "top_logprobs": [-1, 21, "x"], "top_p": [0, 1.5, "x"]}
        f = rng.choice(sorted(wrong))
        b = dict(good)
        b[f] = rng.choice(wrong[f])
        if f == "top_logprobs":
            b["logprobs"] = True
        return json.dumps(b).encode()
    if kind == 6:  # bad messages
        b = dict(good)
        b["messages"] = rng.choice([[{"role": "wizard", "content": "x"}], [{"content": "x"}],
                                    [{"role": "user", "content": [{"type": "image_url"}]}],
                                    [{"role": "tool", "content": "x"}], [], [1]])
        return json.dumps(b).encode()
    if kind == 7:  # not an object
        return rng.choice([b"[]", b"1", b'"x"', b"null", b"true", b""])
    if kind == 8:  # response formats and tools that cannot work
        b = dict(good)
        b["response_format"] = rng.choice([{"type": "json_schema"}, {"type": "yaml"},
                                           {"type": "json_schema", "json_schema": {"schema": 5}},
                                           {"type": "json_schema", "json_schema": {
                                               "name": "x", "schema": {"type": "frob"}}}])
        return json.dumps(b).encode()
    b = dict(good)  # prompt over the context / unknown model
    if rng.random() < 0.5:
        b["messages"] = [{"role": "user", "content": "word " * 2000}]
    else:
        b["model"] = "no-such-model"
    return json.dumps(b).encode()


def malformed_bodies(port):
    rng = random.Random(1234)
    bad = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(1000):
        body = malformed(i, rng)
        path = "/v1/completions" if i % 7 == 0 else "/v1/chat/completions"
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if not (400 <= r.status < 500) or not error_shaped(data):
                bad.append((i, r.status, body[:80], data[:120]))
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        except Exception as e:  # noqa: BLE001
            bad.append((i, repr(e), body[:80]))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    check(not bad, f"{len(bad)} malformed bodies not answered with a shaped 4xx: {bad[:3]}")
    st, _ = request(port, "POST", "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 4})
    check(st == 200, "the server stopped serving after the malformed bodies")


def disconnect_mid_stream(port):
    before = metrics(port).get("ohm:request_success_total", 0)
    s = socket.create_connection(("127.0.0.1", port))
    body = json.dumps({"prompt": "ROMEO:", "max_tokens": 400, "stream": True,
                       "temperature": 0}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"data:") < 3:
        got += s.recv(4096)
    m = metrics(port)
    check(m.get("ohm:kv_blocks_used", 0) > 0, f"no blocks in use mid-stream: {m}")
    s.close()
    m = wait_idle(port, 5)
    check(m.get("ohm:kv_blocks_used") == 0, f"blocks not freed after the disconnect: {m}")
    text = request(port, "GET", "/metrics")[1].decode()
    cancelled = re.search(r'request_success_total\{[^}]*finished_reason="cancelled"\} (\d+)', text)
    check(cancelled and int(cancelled.group(1)) >= 1, "the request was not cancelled")
    gen = metrics(port).get("ohm:generation_tokens_total", 0)
    check(gen < 400 + 1000, f"generation went on: {gen}")
    del before


def half_open(port):
    socks = []
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # never finished
        socks.append(s)
    t0 = time.time()
    st, _ = request(port, "GET", "/health", src="127.0.0.9", timeout=5)
    dt = time.time() - t0
    check(st == 200 and dt < 1.0, f"health behind 64 half-open connections: {st} in {dt:.2f}s")
    st, _ = request(port, "POST", "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 4},
                    src="127.0.0.9", timeout=10)
    check(st == 200, f"completion behind half-open connections: {st}")
    for s in socks:
        s.close()


def sigterm_drain():
    p, port = start("--drain-timeout", "2", "--parallel", "4", "--ctx-size", "8192")
    results = []

    def stream(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/completions", body=json.dumps(
            {"prompt": "ROMEO:", "max_tokens": n, "stream": True, "temperature": 0}),
            headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read().decode(errors="replace")
        results.append((n, r.status, data.rstrip().endswith("data: [DONE]"),
                        '"finish_reason":"length"' in data, '"error"' in data))
    with cf.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(stream, n) for n in (8, 8000, 8000)]
        time.sleep(1.0)
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        for f in futs:
            f.result()
        rc = p.wait(timeout=30)
        dt = time.time() - t0
    check(rc == 0, f"exit status after SIGTERM {rc}")
    check(dt < 2 + 5, f"drain took {dt:.1f}s")
    short = [r for r in results if r[0] == 8]
    long = [r for r in results if r[0] == 8000]
    check(short and short[0][1] == 200 and short[0][2] and short[0][3],
          f"a short stream did not finish normally: {short}")
    check(all(r[1] == 200 and r[2] and r[4] for r in long),
          f"long streams not cut with an error event and [DONE]: {long}")


def main():
    p, port = start("--parallel", "4", "--max-queue", "32", "--http-threads", "64")
    try:
        concurrent_clients(port)
        malformed_bodies(port)
        disconnect_mid_stream(port)
        half_open(port)
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
        err = p.stderr.read()
        check(rc == 0, f"exit status {rc}: {err[-2000:]}")
        check("ERROR: AddressSanitizer" not in err and "runtime error" not in err,
              f"sanitizer report: {err[-3000:]}")
    sigterm_drain()
    print(f"{checks - len(failures)}/{checks} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
