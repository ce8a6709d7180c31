#!/usr/bin/env python3
"""`ohm serve` driven by the official `openai` Python client (issue 15's acceptance).

Usage: test_openai_client.py OHM_BINARY MODEL_DIR SHARED_DATA_DIR

Covers chat and completions (streamed and not), n=2, stop strings, logprobs with top_logprobs,
seed reproducibility, a json_schema reply validated with `jsonschema`, a tool-call round trip
with a tool-capable template (Hermes), batch invariance against `ohm generate --greedy` (on the
f32 demo and on a Q4_0 GGUF of it: the packed Q4_0 kernels, docs/serving.md), and
every error status in OpenAI's error shape (400, 401, 404, 429, 503), plus prompt batches,
continue_final_message and the streamed tool-call delta shape. Independent groups of checks
run at the same time (the `ohm generate` references, the key, queue and tool-template servers,
and the main server's groups as concurrent requests), which batch invariance allows. Exit 77
(skip) when the client packages are missing and OHM_REQUIRE_SERVE_CLIENT is unset.
"""
import concurrent.futures as cf
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import urllib.request

try:
    import jsonschema
    import openai
    from openai.lib.streaming.chat import ChatCompletionStreamState
except ImportError as e:  # pragma: no cover
    # Re-run with the test venv (scripts/hub-client-venv.sh) when the system python lacks them.
    venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                        "hub-venv", "bin", "python")
    if os.path.exists(venv) and not os.environ.get("OHM_SERVE_TEST_REEXEC"):
        os.environ["OHM_SERVE_TEST_REEXEC"] = "1"
        os.execv(venv, [venv, *sys.argv])
    if os.environ.get("OHM_REQUIRE_SERVE_CLIENT"):
        raise
    print(f"skip: {e} (scripts/hub-client-venv.sh installs openai and jsonschema)")
    sys.exit(77)

OHM, MODEL, SHARED = sys.argv[1], sys.argv[2], sys.argv[3]
# `ohm serve` runs the batch-invariant kernels (docs/serving.md); on AVX-512 CPUs plain `ohm
# generate` prefills with the batched GEMM, which sums in another order. So the servers and
# `ohm generate` here all run the batch-invariant table (OHM_ISA=invariant: AVX-512's invariant
# variant, else the AVX2 or scalar table, which are).
os.environ["OHM_ISA"] = "invariant"
failures = []
checks = 0
lock = threading.Lock()


def check(cond, what):
    global checks
    with lock:
        checks += 1
        if not cond:
            failures.append(what)
            print("FAIL:", what, flush=True)


class Server:
    def __init__(self, model, *args):
        self.proc = subprocess.Popen([OHM, "serve", model, "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://[^:]+:(\d+)/v1", line)
        if not m:
            self.proc.kill()
            raise SystemExit(f"ohm serve did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}/v1"

    def client(self, key="none", **kw):
        return openai.OpenAI(base_url=self.base, api_key=key, max_retries=0, **kw)

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as f:
            return json.load(f)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        return rc


def error_shape(e, status):
    check(e.status_code == status, f"status {e.status_code} != {status}: {e}")
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error", body)  # the client unwraps {"error": ...} into .body
    check(isinstance(err, dict) and {"message", "type", "param", "code"} <= set(err),
          f"error shape for {status}: {e.body!r}")
    return err


def generate_greedy(prompt, n, model=None):
    out = subprocess.run([OHM, "generate", model or MODEL, "--prompt", prompt, "-n", str(n),
                          "--greedy", "--json", "--quiet"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)["text"]


# Batch invariance: 32 greedy completions of different prompts and lengths, sent at once.
INVARIANCE_PROMPTS = [f"{name}:\n" for name in ("ROMEO", "JULIET", "KING RICHARD III",
                                                  "GLOUCESTER", "First Citizen", "MENENIUS",
                                                  "HAMLET", "LEAR")]
INVARIANCE_JOBS = [(INVARIANCE_PROMPTS[i % 8] + "O" * (i // 8), 8 + (i * 5) % 17)
                   for i in range(32)]
TOOL_TEMPLATES = ("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
                  "meta-llama-Llama-3.1-8B-Instruct.jinja",
                  "meta-llama-Llama-3.2-3B-Instruct.jinja",
                  "Qwen-Qwen2.5-7B-Instruct.jinja",
                  "mistralai-Mistral-Nemo-Instruct-2407.jinja")
MSGS = [{"role": "user", "content": "Speak, friend."}]


def guarded(fn, *args):
    """Runs one group of checks; an exception fails the group, not the whole run."""
    try:
        fn(*args)
    except BaseException as e:  # noqa: BLE001 - SystemExit from Server() included
        check(False, f"{fn.__name__}: {type(e).__name__}: {e}\n{traceback.format_exc()}")


def main():
    # The test is mostly waiting on processes (ohm generate references, eight servers) and on
    # generation: the independent groups of checks run at the same time, each server's checks
    # as concurrent requests (the engine batches them; batch invariance makes that safe for
    # every exact comparison).
    workers = max(2, min(8, os.cpu_count() or 2))
    refs = cf.ThreadPoolExecutor(workers)
    want = {j: refs.submit(generate_greedy, *j) for j in [("ROMEO:", 16), *INVARIANCE_JOBS]}
    # The demo as a Q4_0 GGUF (mapped, its Q4_0 matrices packed at load for the invariant
    # kernels): the same check on the Q4_0 kernels of `ohm serve`.
    tmp = tempfile.mkdtemp(prefix="ohm-serve-q4_0-")
    q4 = os.path.join(tmp, "demo-q4_0.gguf")
    subprocess.run([OHM, "quantize", MODEL, "--type", "q4_0", q4], capture_output=True,
                   check=True)
    want_q4 = {j: refs.submit(generate_greedy, *j, q4) for j in INVARIANCE_JOBS}
    side = cf.ThreadPoolExecutor(3 + len(TOOL_TEMPLATES))
    side_done = [side.submit(guarded, keys_checks), side.submit(guarded, queue_checks)]
    side_done.append(side.submit(guarded, q4_0_invariance, q4, want_q4))
    side_done += [side.submit(guarded, tool_round_trip, t) for t in TOOL_TEMPLATES]

    srv = Server(MODEL, "--parallel", "16", "--quiet")
    c = srv.client()
    try:
        groups = [chat_checks, continue_checks, completion_checks, batch_prompt_checks,
                  seed_checks, stop_checks, logprob_checks, schema_checks, error_checks]
        with cf.ThreadPoolExecutor(len(groups)) as ex:
            list(ex.map(lambda g: guarded(g, srv, c), groups))
        guarded(invariance_checks, c, want)
    finally:
        rc = srv.stop()
        check(rc == 0, f"SIGTERM exit status {rc}")
    for f in side_done:
        f.result()
    shutil.rmtree(tmp, ignore_errors=True)
    refs.shutdown()
    side.shutdown()
    print(f"{checks - len(failures)}/{checks} checks passed")
    return 1 if failures else 0


def chat_checks(srv, c):
    models = c.models.list()
    check([m.id for m in models.data] == ["ohm-demo"], f"models: {models}")
    # Chat, not streamed and streamed: the same greedy text.
    r = c.chat.completions.create(model="ohm-demo", messages=MSGS, max_tokens=24, temperature=0)
    text = r.choices[0].message.content
    check(r.object == "chat.completion" and r.choices[0].finish_reason == "length",
          f"chat reply: {r}")
    check(r.usage.completion_tokens == 24 and r.usage.prompt_tokens > 0, f"usage: {r.usage}")
    parts, usage, finish = [], None, None
    for ch in c.chat.completions.create(model="ohm-demo", messages=MSGS, max_tokens=24,
                                        temperature=0, stream=True,
                                        stream_options={"include_usage": True}):
        if ch.usage:
            usage = ch.usage
        for choice in ch.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    check("".join(parts) == text, f"streamed chat {''.join(parts)!r} != {text!r}")
    check(finish == "length" and usage and usage.completion_tokens == 24,
          f"stream end: {finish} {usage}")


def continue_checks(srv, c):
    # continue_final_message: the final assistant message is left open (no end of turn) and
    # the reply continues it; greedy, it is the completion of the same prompt's tokens.
    cont = [{"role": "user", "content": "Speak, friend."},
            {"role": "assistant", "content": "Nay, my lord"}]
    extra = {"continue_final_message": True, "add_generation_prompt": False}
    ids = srv.post("/tokenize", {"messages": cont, **extra})["tokens"]
    opened = srv.post("/detokenize", {"tokens": ids})["prompt"]
    check(opened.endswith("ASSISTANT: Nay, my lord"), f"continued prompt {opened!r}")
    r = c.chat.completions.create(model="ohm-demo", messages=cont, max_tokens=12,
                                  temperature=0, extra_body=extra)
    want = c.completions.create(model="ohm-demo", prompt=ids, max_tokens=12, temperature=0)
    check(r.choices[0].message.content == want.choices[0].text
          and r.usage.prompt_tokens == len(ids), f"continued reply: {r}")
    try:
        c.chat.completions.create(model="ohm-demo", messages=MSGS, max_tokens=2,
                                  extra_body=extra)
        check(False, "continue_final_message after a user message accepted")
    except openai.BadRequestError as e:
        check(error_shape(e, 400).get("param") == "continue_final_message",
              f"continue_final_message error: {e}")


def completion_checks(srv, c):
    # Completions, streamed and not.
    r = c.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=16, temperature=0)
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model="ohm-demo", prompt="ROMEO:", max_tokens=16, temperature=0, stream=True)
        if ch.choices)
    check(streamed == r.choices[0].text, f"streamed completion {streamed!r}")
    check(r.choices[0].text == generate_greedy("ROMEO:", 16),
          "completion != ohm generate --greedy")


def batch_prompt_checks(srv, c):
    # A list of prompts is a batch: choice p*n + i is sample i of prompt p, usage summed.
    batch = ["ROMEO:", "First Citizen:", "HAMLET:\nO"]
    alone = [c.completions.create(model="ohm-demo", prompt=p, max_tokens=8, temperature=0)
             for p in batch]
    r = c.completions.create(model="ohm-demo", prompt=batch, max_tokens=8, temperature=0, n=2)
    check([x.index for x in r.choices] == list(range(6)), f"batch indices: {r.choices}")
    check([x.text for x in r.choices] == [a.choices[0].text for a in alone for _ in (0, 1)],
          f"batch texts: {[x.text for x in r.choices]}")
    check(r.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
          and r.usage.completion_tokens == 48, f"batch usage: {r.usage}")
    ids = [srv.post("/tokenize", {"prompt": p})["tokens"] for p in batch]
    texts, usage = {}, None
    for ch in c.completions.create(model="ohm-demo", prompt=ids, max_tokens=8, temperature=0,
                                   stream=True, stream_options={"include_usage": True}):
        usage = ch.usage or usage
        for x in ch.choices:
            texts[x.index] = texts.get(x.index, "") + x.text
    check(texts == {i: a.choices[0].text for i, a in enumerate(alone)},
          f"streamed token-id batch: {texts}")
    check(usage and usage.prompt_tokens == r.usage.prompt_tokens
          and usage.completion_tokens == 24, f"streamed batch usage: {usage}")


def seed_checks(srv, c):
    # n=2 and seed reproducibility (the three requests at once).
    kw = dict(model="ohm-demo", messages=MSGS, max_tokens=16, temperature=1.0, seed=7, n=2)
    with cf.ThreadPoolExecutor(3) as ex:
        a, b, d = ex.map(lambda k: c.chat.completions.create(**k), [kw, kw, {**kw, "seed": 8}])
    check(len(a.choices) == 2 and [x.index for x in a.choices] == [0, 1], f"n=2: {a}")
    check([x.message.content for x in a.choices] == [x.message.content for x in b.choices],
          "seed 7 is not reproducible")
    check([x.message.content for x in d.choices] != [x.message.content for x in a.choices],
          "seeds 7 and 8 gave the same samples")


def stop_checks(srv, c):
    # Stop strings: cut before the stop, finish_reason stop.
    full = c.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=30,
                                temperature=0).choices[0].text
    stop = full[10:13]
    r = c.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=30, temperature=0,
                             stop=[stop])
    check(r.choices[0].finish_reason == "stop" and r.choices[0].text == full[:full.find(stop)],
          f"stop {stop!r}: {r.choices[0]}")


def logprob_checks(srv, c):
    # logprobs with top_logprobs.
    r = c.chat.completions.create(model="ohm-demo", messages=MSGS, max_tokens=5,
                                  temperature=0, logprobs=True, top_logprobs=3)
    lp = r.choices[0].logprobs.content
    check(len(lp) == 5 and all(len(t.top_logprobs) == 3 for t in lp), f"logprobs: {lp}")
    check(all(t.logprob == t.top_logprobs[0].logprob for t in lp),
          "greedy token is not the top logprob")
    check(all(t.logprob <= 0 for t in lp), "a logprob above 0")


def schema_checks(srv, c):
    # json_schema: the reply parses and validates (three seeds at once).
    schema = {"type": "object",
              "properties": {"name": {"type": "string", "maxLength": 12},
                             "age": {"type": "integer", "minimum": 0, "maximum": 150},
                             "roles": {"type": "array", "items": {"enum": ["king", "fool"]},
                                       "maxItems": 3}},
              "required": ["name", "age", "roles"], "additionalProperties": False}

    def one(seed):
        r = c.chat.completions.create(
            model="ohm-demo", messages=[{"role": "user", "content": "Who are you?"}],
            max_tokens=120, temperature=0.8, seed=seed,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "person", "schema": schema}})
        out = r.choices[0].message.content
        try:
            jsonschema.validate(json.loads(out), schema)
            ok = r.choices[0].finish_reason == "stop"
        except Exception as e:  # noqa: BLE001
            ok = False
            out += f" ({e})"
        check(ok, f"json_schema reply (seed {seed}): {out!r}")

    def obj(_):
        r = c.chat.completions.create(model="ohm-demo", messages=MSGS, max_tokens=60,
                                      temperature=0, response_format={"type": "json_object"})
        check(isinstance(json.loads(r.choices[0].message.content), dict), "json_object reply")
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda f: f[0](f[1]), [(one, 1), (one, 2), (one, 3), (obj, None)]))


def invariance_checks(c, want):
    # Batch invariance: 32 concurrent greedy completions = ohm generate --greedy alone.
    with cf.ThreadPoolExecutor(32) as ex:
        got = list(ex.map(lambda j: c.completions.create(
            model="ohm-demo", prompt=j[0], max_tokens=j[1], temperature=0).choices[0].text,
            INVARIANCE_JOBS))
    bad = [j for j, g in zip(INVARIANCE_JOBS, got) if g != want[j].result()]
    check(not bad, f"batched != alone for {bad[:3]}")


def q4_0_invariance(gguf, want):
    srv = Server(gguf, "--parallel", "16", "--quiet", "--served-model-name", "ohm-demo")
    try:
        invariance_checks(srv.client(), want)
    finally:
        rc = srv.stop()
        check(rc == 0, f"Q4_0 server: SIGTERM exit status {rc}")


def error_checks(srv, c):
    # 400: bad body, wrong types, prompt over the context (says by how much).
    try:
        c.chat.completions.create(model="ohm-demo", messages=MSGS, temperature=5)
        check(False, "temperature 5 accepted")
    except openai.BadRequestError as e:
        err = error_shape(e, 400)
        check(err.get("param") == "temperature", f"param: {err}")
    try:
        c.completions.create(model="ohm-demo", prompt="word " * 600, max_tokens=4)
        check(False, "prompt over the context accepted")
    except openai.BadRequestError as e:
        err = error_shape(e, 400)
        check(re.search(r"\d+", err.get("message", "")) is not None, f"no count: {err}")
    # 404: unknown model.
    try:
        c.chat.completions.create(model="gpt-17", messages=MSGS, max_tokens=2)
        check(False, "unknown model accepted")
    except openai.NotFoundError as e:
        error_shape(e, 404)


def keys_checks():
    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, "keys")
        with open(keys, "w") as f:
            f.write("# test keys\nsk-test-one-1234 rpm=2 name=one\nsk-test-two-1234 tpd=10\n")
        ks = Server(MODEL, "--api-keys", keys, "--quiet")
        try:
            try:  # 401
                ks.client("sk-wrong-key-0000").models.list()
                check(False, "wrong key accepted")
            except openai.AuthenticationError as e:
                error_shape(e, 401)
            one = ks.client("sk-test-one-1234")
            one.models.list()
            one.models.list()
            try:  # 429 with Retry-After
                one.models.list()
                check(False, "rpm=2 allowed a third request")
            except openai.RateLimitError as e:
                error_shape(e, 429)
                check(int(e.response.headers.get("retry-after", "0")) > 0, "no Retry-After")
            two = ks.client("sk-test-two-1234")
            two.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=12)
            try:  # the day's 10 tokens are spent
                two.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=2)
                check(False, "tpd=10 allowed more")
            except openai.RateLimitError as e:
                error_shape(e, 429)
        finally:
            ks.stop()


def queue_checks():
    # 503: a queue of 1 behind one running request. The first request streams, so it holds the
    # running slot while it generates; once its first chunk is in, seven more arrive at once:
    # one waits in the queue, the others are refused.
    qs = Server(MODEL, "--parallel", "1", "--max-queue", "1", "--quiet")
    try:
        c = qs.client(timeout=600)

        def one(_):
            try:
                c.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=8,
                                     temperature=0)
                return 200
            except openai.APIStatusError as e:
                if e.status_code == 503:
                    error_shape(e, 503)
                return e.status_code
        stream = c.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=100,
                                      temperature=0, stream=True)
        it = iter(stream)
        next(it)  # running now
        with cf.ThreadPoolExecutor(7) as ex:
            statuses = [200] + list(ex.map(one, range(7)))
        for _ in it:
            pass
        check(set(statuses) <= {200, 503} and 503 in statuses and statuses.count(200) >= 2,
              f"queue statuses {statuses}")
    finally:
        qs.stop()


def tool_round_trip(template):
    """A tool-capable template on the demo weights: a forced call (required and named), parsed
    into tool_calls, streamed as tool_call deltas, and the tool's answer sent back."""
    tmpl_path = os.path.join(SHARED, "chat-templates", template)
    if not os.path.exists(tmpl_path):
        if os.environ.get("OHM_REQUIRE_SHARED_DATA"):
            check(False, f"missing {tmpl_path}")
        else:
            print("skip tool round trip: no", tmpl_path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "demo-tools")
        shutil.copytree(MODEL, model)
        cfg_path = os.path.join(model, "tokenizer_config.json")
        cfg = json.load(open(cfg_path))
        cfg["chat_template"] = open(tmpl_path).read()
        json.dump(cfg, open(cfg_path, "w"))
        srv = Server(model, "--quiet", "--ctx-size", "2048")
        try:
            c = srv.client()
            # The required, named and streamed requests at once; the tool result after.
            with cf.ThreadPoolExecutor(3) as ex:
                named = ex.submit(named_tool_call, c, template)
                streamed = ex.submit(streamed_tool_call, c)
                calls = required_tool_call(c, template)
                named.result()
                acc, names, shape_ok, final = streamed.result()
            check(names == ["get_weather"], f"{template}: streamed tool calls: {names}")
            check(shape_ok and len(acc) == 1 and len(acc[0]["arguments"]) > 0,
                  f"{template}: streamed tool-call deltas: {acc}")
            if calls and acc:
                check(acc[0]["arguments"] == calls[0].function.arguments,
                      f"{template}: streamed arguments {acc[0]} != {calls[0].function.arguments}")
                check([(f.function.name, f.function.arguments) for f in final]
                      == [("get_weather", calls[0].function.arguments)],
                      f"{template}: openai stream state: {final}")
        finally:
            srv.stop()


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "maxLength": 16}},
                   "required": ["city"], "additionalProperties": False}}}]
TOOL_MSGS = [{"role": "user", "content": "Weather in Verona?"}]


def required_tool_call(c, template):
    r = c.chat.completions.create(model="demo-tools", messages=TOOL_MSGS, tools=TOOLS,
                                  tool_choice="required", max_tokens=200, temperature=0)
    ch = r.choices[0]
    calls = ch.message.tool_calls or []
    check(ch.finish_reason == "tool_calls" and len(calls) == 1
          and calls[0].function.name == "get_weather", f"{template}: tool call: {ch}")
    if calls:
        args = json.loads(calls[0].function.arguments)
        check(isinstance(args.get("city"), str), f"{template}: arguments: {args}")
        msgs = TOOL_MSGS + [{"role": "assistant", "content": None,
                             "tool_calls": [c2.model_dump() for c2 in calls]},
                            {"role": "tool", "tool_call_id": calls[0].id, "name": "get_weather",
                             "content": json.dumps({"temperature_c": 21})}]
        r2 = c.chat.completions.create(model="demo-tools", messages=msgs, tools=TOOLS,
                                       max_tokens=12, temperature=0)
        check(r2.choices[0].message.content is not None or r2.choices[0].message.tool_calls,
              f"{template}: after the tool result: {r2}")
    return calls


def named_tool_call(c, template):
    named = c.chat.completions.create(
        model="demo-tools", messages=TOOL_MSGS, tools=TOOLS, max_tokens=200, temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    check(named.choices[0].message.tool_calls and
          named.choices[0].message.tool_calls[0].function.name == "get_weather",
          f"{template}: named tool_choice: {named.choices[0]}")


def streamed_tool_call(c):
    """Streamed: the call arrives as OpenAI streams it, a head delta (index, id, type,
    function.name, arguments "") then argument fragments; accumulated by index as clients do
    (and by the openai package's own stream state). Returns (by index, names, shape ok, the
    stream state's tool calls)."""
    names, acc, shape_ok = [], {}, True
    state = ChatCompletionStreamState()
    for chunk in c.chat.completions.create(model="demo-tools", messages=TOOL_MSGS, tools=TOOLS,
                                           tool_choice="required", max_tokens=200,
                                           temperature=0, stream=True):
        state.handle_chunk(chunk)
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                if tc.index not in acc:
                    shape_ok &= (tc.id is not None and tc.type == "function"
                                 and tc.function.arguments == "")
                    acc[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": ""}
                else:
                    shape_ok &= tc.id is None and not tc.function.name
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                acc[tc.index]["arguments"] += tc.function.arguments or ""
    final = state.get_final_completion().choices[0].message.tool_calls or []
    return acc, names, shape_ok, final


if __name__ == "__main__":
    sys.exit(main())
