#!/usr/bin/env python3
"""Differential test: ohm's chat templates against transformers' apply_chat_template(...,
tokenize=False) on conversations generated from a seeded grammar: roles in valid and invalid
orders, tools and tool_calls, empty and whitespace-only content, Unicode, content that looks
like Jinja or JSON, content as a list of parts, add_generation_prompt on and off.

Every template in ../shared/data/chat-templates is installed in a copy of the GPT-2
tokenizer_config.json (so both sides see the same special tokens) and rendered by
`ohm chat-template DIR --batch FILE.jsonl` and by transformers. The two must give identical
text, or both must refuse.

  chat_template_diff.py --ohm build/.../ohm [--count 500] [--seed 1234]
  chat_template_diff.py --ohm ... --soak N     # random seed; prints each mismatch
Exit codes: 0 no mismatch, 1 mismatches, 77 the reference libraries or shared data are missing.
"""
import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time

from difftest import SHARED, hubtest, missing_shared_data, run_batch  # tests/diff/difftest.py

TEXTS = ["Hello!", "What's the weather in Paris?", "", " ", "\n", "  \t\n ", "ünïcödé ✓ 日本語 🤖",
         "{{ messages }}", "{% if true %}x{% endif %}", "{# c #}", '{"a": 1, "b": [1, 2]}', "[1, 2, 3]",
         "line one\nline two\n\nline four", "<s>", "</s>", "<|im_start|>", "[INST] x [/INST]",
         "<|eot_id|>", "null", "None", "true", "a" * 300, "tab\tsep", "quote \" and ' and \\",
         "مرحبا بالعالم", "Привет", "नमस्ते", "<think>hmm</think>answer"]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string", "description": "City name"},
                                          "unit": {"type": "string", "enum": ["c", "f"]}},
                                          "required": ["city"]}}},
    {"type": "function", "function": {"name": "search", "description": "Search the web",
                                      "parameters": {"type": "object", "properties": {
                                          "query": {"type": "string"}, "n": {"type": "integer"}},
                                          "required": ["query"]}}},
]


COHERE_TOOLS = [
    {"name": "get_weather", "description": "Get the weather",
     "parameter_definitions": {"city": {"description": "City name", "type": "str", "required": True}}},
    {"name": "search", "description": "Search the web",
     "parameter_definitions": {"query": {"description": "Query", "type": "str", "required": True}}},
]


class Grammar:
    """Conversations for one template. The template's source tunes the mix so that most
    conversations are ones it accepts (tools in the shape it reads, the variables it needs), and
    the rest probe its refusals."""

    def __init__(self, rng, name="", src=""):
        self.r = rng
        self.n_call = 0
        self.tool_use = "tool_use" in name  # templates that iterate over `tools` unguarded
        self.cohere_tools = "parameter_definitions" in src
        self.needs_functions = re.search(r"[+(]\s*functions\b|\bfunctions\s*[|}]", src) is not None

    def text(self):
        r = self.r
        t = r.choice(TEXTS)
        if r.random() < 0.3:
            t += " " + r.choice(TEXTS)
        return t

    def content(self):
        r = self.r
        k = r.random()
        if k < 0.08:
            return [{"type": "text", "text": self.text()}]
        return self.text()

    def tool_call(self):
        r = self.r
        self.n_call += 1
        name = r.choice(["get_weather", "search"])
        args = {"city": r.choice(["Paris", "東京", ""])} if name == "get_weather" else {"query": self.text(), "n": r.randint(1, 5)}
        if r.random() < 0.4:  # OpenAI-style: arguments as a JSON string
            args = json.dumps(args, ensure_ascii=r.random() < 0.5)
        call = {"type": "function", "function": {"name": name, "arguments": args}}
        if r.random() < 0.8:
            call["id"] = f"call{self.n_call:07d}"[:9]
        return call

    def message(self, role):
        r = self.r
        m = {"role": role, "content": self.content()}
        if role == "assistant" and r.random() < 0.3:
            m["tool_calls"] = [self.tool_call() for _ in range(r.choice([1, 1, 2]))]
            if r.random() < 0.5:
                m["content"] = r.choice(["", None]) if r.random() < 0.5 else m["content"]
        if role == "tool":
            m["tool_call_id"] = f"call{self.n_call:07d}"[:9]
            m["name"] = r.choice(["get_weather", "search"])
            if r.random() < 0.5:
                m["content"] = json.dumps({"temperature": r.randint(-10, 35), "unit": "c"})
        return m

    def conversation(self):
        r = self.r
        msgs = []
        if r.random() < 0.85:  # a valid order
            if r.random() < 0.5:
                msgs.append(self.message("system"))
            for _ in range(r.choice([1, 1, 2, 3])):
                msgs.append(self.message("user"))
                if r.random() < 0.25:
                    a = self.message("assistant")
                    a["tool_calls"] = [self.tool_call()]
                    msgs.append(a)
                    msgs.append(self.message("tool"))
                msgs.append(self.message("assistant"))
            if r.random() < 0.6:
                msgs.append(self.message("user"))
        else:  # anything goes
            for _ in range(r.choice([0, 1, 2, 3, 5])):
                msgs.append(self.message(r.choice(["system", "user", "assistant", "tool", "developer"])))
        conv = {"messages": msgs, "add_generation_prompt": r.random() < 0.5}
        if r.random() < (0.85 if self.tool_use else 0.3):
            conv["tools"] = (COHERE_TOOLS if self.cohere_tools else TOOLS)[: r.choice([1, 2])]
        if self.needs_functions and r.random() < 0.9:  # firefunction-v2's own variables
            conv["extra"] = {"functions": json.dumps([t["function"] for t in TOOLS], indent=r.choice([None, 2])),
                             "datetime": r.choice(["2024-07-26", "26 Jul 2024", ""])}
        return conv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--count", type=int, default=500, help="conversations per template")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--soak", type=int, default=0)
    ap.add_argument("--only", default="", help="substring of the template file names")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("transformers", "jinja2"):
        print("SKIP: transformers/jinja2 are not installed (run scripts/hub-client-venv.sh)")
        return 77
    tdir = os.path.join(SHARED, "chat-templates")
    gpt2 = os.path.join(SHARED, "tokenizers", "gpt2")
    if not os.path.isdir(tdir) or not os.path.isdir(gpt2):
        return missing_shared_data()
    from transformers import AutoTokenizer

    ohm = os.path.abspath(args.ohm)
    seed = args.seed if not args.soak else random.SystemRandom().randrange(1 << 30)
    count = args.soak or args.count
    print(f"seed {seed}, {count} conversations per template", flush=True)
    tmp = tempfile.mkdtemp(prefix="ohm-chatdiff-")
    base_cfg = json.load(open(os.path.join(gpt2, "tokenizer_config.json"), encoding="utf-8"))
    passed = failed = 0
    for name in sorted(os.listdir(tdir)):
        if not name.endswith(".jinja") or (args.only and args.only not in name):
            continue
        t0 = time.time()
        src = open(os.path.join(tdir, name), encoding="utf-8").read()
        g = Grammar(random.Random(f"{seed}/{name}"), name, src)
        convs = [g.conversation() for _ in range(count)]
        work = os.path.join(tmp, name[:-6])
        os.makedirs(work, exist_ok=True)
        shutil.copy(os.path.join(gpt2, "tokenizer.json"), os.path.join(work, "tokenizer.json"))
        cfg = dict(base_cfg, chat_template=src)
        with open(os.path.join(work, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        tok = AutoTokenizer.from_pretrained(work)
        want = []
        for c in convs:
            try:
                want.append({"text": tok.apply_chat_template(
                    c["messages"], tools=c.get("tools"), add_generation_prompt=c["add_generation_prompt"],
                    tokenize=False, **c.get("extra", {}))})
            except Exception as e:  # noqa: BLE001  (jinja2 TemplateError, TypeError, ...)
                want.append({"error": f"{type(e).__name__}: {e}"})
        try:
            got = run_batch([ohm, "chat-template", os.path.join(work, "tokenizer_config.json")],
                            convs, os.path.join(tmp, name[:-6] + ".jsonl"))
        except RuntimeError as e:
            print(f"FAIL {name}: {e}")
            failed += 1
            continue
        bad = []
        for c, a, b in zip(convs, want, got):
            if ("error" in a) != ("error" in b) or a.get("text") != b.get("text"):
                bad.append((c, a, b))
        dt = time.time() - t0
        n_err = sum("error" in a for a in want)
        if n_err > len(convs) * 0.8:  # a test that only sees refusals shows nothing
            print(f"FAIL {name}: {n_err} of {len(convs)} conversations refused by transformers; "
                  "the grammar does not reach this template")
            failed += 1
            continue
        if not bad:
            passed += 1
            print(f"PASS {name}: {len(convs)} conversations ({n_err} refused by both), 0 mismatches ({dt:.1f}s)",
                  flush=True)
            continue
        failed += 1
        print(f"FAIL {name}: {len(bad)} of {len(convs)} differ ({dt:.1f}s)", flush=True)
        bad.sort(key=lambda x: len(json.dumps(x[0])))  # the smallest first
        for c, a, b in bad[:(10 if args.soak else 3)]:
            print(f"  conversation: {json.dumps(c, ensure_ascii=True)[:1500]}")
            print(f"    transformers: {json.dumps(a, ensure_ascii=True)[:600]}")
            print(f"    ohm         : {json.dumps(b, ensure_ascii=True)[:600]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
