#!/usr/bin/env python3
"""Reference renders for `continue_final_message` (ohm serve's chat prompts; run by hand, the
output is committed).

Writes tests/fixtures/chat_templates/continue_final_cases.json: a few templates from
../shared/data/chat-templates, each rendered for a few conversations that end in an assistant
message with transformers' render_jinja_template(continue_final_message=True,
add_generation_prompt=False) and the special tokens {"bos_token": "<s>", "eos_token": "</s>"}.
A conversation the template cannot continue records transformers' error instead.

Needs transformers and jinja2 (build/fixture-venv has them; the versions are recorded).
Usage: build/fixture-venv/bin/python scripts/make_continue_final_fixtures.py [--shared DIR]
"""
import argparse
import json
import os

import jinja2
import transformers
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat_templates", "continue_final_cases.json")
TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}

TEMPLATES = [
    "meta-llama-Llama-3.1-8B-Instruct.jinja",      # trims content: the trailing-space branch
    "Qwen-Qwen2.5-7B-Instruct.jinja",               # keeps content verbatim
    "mistralai-Mistral-Nemo-Instruct-2407.jinja",   # the final assistant turn ends with eos
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",  # drops <think>...</think>: an error
]

CONVERSATIONS = {
    "plain": [{"role": "user", "content": "Write a haiku about the sea."},
              {"role": "assistant", "content": "Waves fold into foam"}],
    "trailing_space": [{"role": "system", "content": "You are terse."},
                       {"role": "user", "content": "Name a colour."},
                       {"role": "assistant", "content": "The colour is "}],
    "multi_turn": [{"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Count to three."},
                   {"role": "assistant", "content": "One, two,"}],
    "think": [{"role": "user", "content": "2+2?"},
              {"role": "assistant", "content": "<think>easy</think>It is"}],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "data"))
    args = ap.parse_args()
    cases = []
    for name in TEMPLATES:
        src = open(os.path.join(args.shared, "chat-templates", name)).read()
        for conv_name, messages in CONVERSATIONS.items():
            case = {"template": name, "conversation": conv_name, "messages": messages}
            try:
                out, _ = render_jinja_template(conversations=[messages], chat_template=src,
                                               continue_final_message=True,
                                               add_generation_prompt=False, **TOKENS)
                case["expected"] = out[0]
            except Exception as e:  # noqa: BLE001 - the error is the expectation
                case["error"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            cases.append(case)
    doc = {"generator": "scripts/make_continue_final_fixtures.py",
           "transformers": transformers.__version__, "jinja2": jinja2.__version__,
           "special_tokens": TOKENS, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
