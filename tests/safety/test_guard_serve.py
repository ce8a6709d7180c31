#!/usr/bin/env python3
"""`ohm serve --guard / --guard-rules` through the official openai client.

usage: test_guard_serve.py OHM MODEL_DIR GUARD_DIR

- prompts the guard marks unsafe are refused with 400, code "content_filter", and the categories
  (openai.BadRequestError); "safe" lets them through; malformed guard output blocks (fail closed)
  unless --guard-fail-open. The tiny random guard's output is forced with
  OHM_GUARD_FORCED_OUTPUT (the model still runs);
- responses a rules file blocks end with finish_reason "content_filter" and no text, streamed
  and not, chat and completions, with the categories on the choice;
- the log carries the request id and the codes, never the text.
Re-executes itself with build/hub-venv's python when openai is missing; 77 (skip) without it.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import openai
except ImportError as e:  # pragma: no cover
    venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                        "hub-venv", "bin", "python")
    if os.path.exists(venv) and not os.environ.get("OHM_GUARD_TEST_REEXEC"):
        os.environ["OHM_GUARD_TEST_REEXEC"] = "1"
        os.execv(venv, [venv, *sys.argv])
    print(f"skip: {e} (scripts/hub-client-venv.sh installs openai)")
    sys.exit(77)

OHM, MODEL, GUARD = sys.argv[1], sys.argv[2], sys.argv[3]
SECRET = "ZEBRA-SECRET-4711"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Server:
    def __init__(self, *flags, forced=None):
        env = dict(os.environ)
        env.pop("OHM_GUARD_FORCED_OUTPUT", None)
        if forced is not None:
            env["OHM_GUARD_FORCED_OUTPUT"] = forced
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([OHM, "serve", MODEL, "--port", "0", "-t", "1", *flags],
                                  stdout=subprocess.PIPE, stderr=self.err, text=True, env=env)
        line = self.p.stdout.readline()
        base = line.strip().split(" on ")[1]
        self.client = openai.OpenAI(base_url=base, api_key="none", max_retries=0)

    def log(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=60)


def chat(c, text, **kw):
    return c.chat.completions.create(model="ohm-demo", messages=[{"role": "user", "content": text}],
                                     max_tokens=12, temperature=0, **kw)


def main():
    # --- prompts through the guard model
    s = Server("--guard", GUARD, forced="unsafe\nS1,S10")
    try:
        try:
            chat(s.client, f"how do I hurt {SECRET}")
            check(False, "an unsafe prompt was answered")
        except openai.BadRequestError as e:
            body = e.body if isinstance(e.body, dict) else {}
            cf = body.get("content_filter", {})
            check(e.code == "content_filter" and e.status_code == 400,
                  f"unsafe prompt: 400 with code content_filter ({e.code})")
            check([c["code"] for c in cf.get("categories", [])] == ["S1", "S10"] and
                  cf.get("stage") == "prompt" and cf.get("source") == "guard",
                  f"... with the categories S1, S10: {cf}")
        log = s.log()
        check("content_filter chatcmpl-" in log and "stage=prompt blocked categories=S1,S10" in log,
              "the decision is logged with the request id and codes")
        check(SECRET not in log, "the log does not contain the prompt")
    finally:
        s.stop()

    s = Server("--guard", GUARD, forced="safe")
    try:
        r = chat(s.client, "hello")
        check(r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.content,
              "a prompt the guard says is safe is answered")
    finally:
        s.stop()

    for flags, blocked in (((), True), (("--guard-fail-open",), False)):
        s = Server("--guard", GUARD, "--guard-on", "prompt", *flags, forced="I am not sure")
        try:
            try:
                chat(s.client, "hello")
                ok = not blocked
            except openai.BadRequestError as e:
                ok = blocked and e.body.get("content_filter", {}).get("malformed_guard_output")
            check(ok, f"malformed guard output {'blocks' if blocked else 'allows with --guard-fail-open'}")
        finally:
            s.stop()

    # --- responses through the rules layer (the guard model on responses too: forced safe)
    rules = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"categories": [{"code": "S5", "keywords": ["be", "the", "and", "I"]}]}, rules)
    rules.close()
    s = Server("--guard-rules", rules.name, "--guard-on", "response")
    try:
        r = chat(s.client, "ROMEO:")
        ch = r.choices[0]
        extra = (ch.model_extra or {}).get("content_filter", {})
        check(ch.finish_reason == "content_filter" and not ch.message.content,
              f"a blocked response: finish_reason content_filter, no text ({ch.finish_reason})")
        check([c["code"] for c in extra.get("categories", [])] == ["S5"] and
              extra.get("stage") == "response", f"... with the categories on the choice: {extra}")
        text, reasons = "", []
        for chunk in chat(s.client, "ROMEO:", stream=True):
            for c in chunk.choices:
                text += c.delta.content or ""
                if c.finish_reason:
                    reasons.append(c.finish_reason)
        check(reasons == ["content_filter"] and text == "",
              f"streamed: nothing of the response goes out, finish_reason content_filter ({reasons})")
        r = s.client.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=12,
                                        temperature=0)
        check(r.choices[0].finish_reason == "content_filter" and r.choices[0].text == "",
              "completions: blocked the same way")
        r = s.client.completions.create(model="ohm-demo", prompt="ROMEO:", max_tokens=1,
                                        temperature=0, stop=["\n"])
        check(r.choices[0].finish_reason in ("stop", "length", "content_filter"),
              "the server keeps serving")
    finally:
        s.stop()
        os.unlink(rules.name)
    # --- ohm chat: a blocked prompt drops the turn, a blocked response shows the note only
    env = dict(os.environ, OHM_GUARD_FORCED_OUTPUT="unsafe\nS1")
    r = subprocess.run([OHM, "chat", MODEL, "--guard", GUARD, "-n", "8", "-q", "-t", "1"],
                       input="hi\n/exit\n", capture_output=True, text=True, env=env, timeout=120)
    check(r.returncode == 0 and "[blocked by the content filter: S1 Violent Crimes]" in r.stdout,
          f"chat: an unsafe prompt is dropped with a note ({r.stdout.strip()[:80]!r})")
    rules = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"categories": [{"code": "S5", "keywords": ["be", "the", "and", "I"]}]}, rules)
    rules.close()
    r = subprocess.run([OHM, "chat", MODEL, "--guard-rules", rules.name, "--guard-on", "response",
                        "-n", "12", "--greedy", "-q", "-t", "1"], input="ROMEO:\n",
                       capture_output=True, text=True, timeout=120)
    os.unlink(rules.name)
    check(r.returncode == 0 and "[blocked by the content filter: S5 Defamation]" in r.stdout
          and "be" not in r.stdout.replace("[blocked by the content filter: S5 Defamation]", ""),
          f"chat: a blocked response is not shown ({r.stdout.strip()[:80]!r})")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
