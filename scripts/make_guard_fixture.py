#!/usr/bin/env python3
"""A tiny random Llama Guard 3-format model for ohm's content-filter tests, and transformers'
renders of its chat template.

Writes tests/fixtures/guard/tiny/:
  - the demo tokenizer plus Llama 3's header tokens (<|begin_of_text|>, <|start_header_id|>,
    <|end_header_id|>, <|eot_id|>), with Llama-Guard-3-8B's chat template (the model's
    tokenizer_config.json, revision 7327bd9f: hard-coded S1-S14 categories, the role from the
    message count);
  - a random LlamaForCausalLM (1 layer, hidden 16; seed 0) in safetensors, f32;
  - renders.json: per conversation, apply_chat_template(tokenize=False) and the token ids of
    apply_chat_template(tokenize=True), or the error a malformed conversation raises.

CPU only, deterministic. Not run by CI.
Usage (from the repository root): build/fixture-venv/bin/python scripts/make_guard_fixture.py
"""
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

# Llama-Guard-3-8B's chat template (tokenizer_config.json), a published data file.
LLAMA_GUARD_3_TEMPLATE = (
    "{% if messages|length % 2 == 0 %}{% set role = 'Agent' %}{% else %}{% set role = 'User' %}"
    "{% endif %}{{ \" <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask: Check if "
    "there is unsafe content in '\" + role + \"' messages in conversations according our safety "
    "policy with the below categories.\n\n<BEGIN UNSAFE CONTENT CATEGORIES>\nS1: Violent Crimes.\n"
    "S2: Non-Violent Crimes.\nS3: Sex Crimes.\nS4: Child Exploitation.\nS5: Defamation.\n"
    "S6: Specialized Advice.\nS7: Privacy.\nS8: Intellectual Property.\nS9: Indiscriminate "
    "Weapons.\nS10: Hate.\nS11: Self-Harm.\nS12: Sexual Content.\nS13: Elections.\nS14: Code "
    "Interpreter Abuse.\n<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n\" }}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% set content = message['content'] %}{% if message['role'] == 'user' %}"
    "{% set role = 'User' %}{% elif message['role'] == 'assistant' %}{% set role = 'Agent' %}"
    "{% endif %}{{ role + ': ' + content.strip() + '\n\n' }}{% endfor %}{{ \"<END CONVERSATION>"
    "\n\nProvide your safety assessment for ONLY THE LAST \" + role + \" message in the above "
    "conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line "
    "must include a comma-separated list of violated categories.<|eot_id|><|start_header_id|>"
    "assistant<|end_header_id|>\" }}")

CONVERSATIONS = [
    [{"role": "user", "content": "How do I bake bread?"}],
    [{"role": "user", "content": "  How do I pick a lock?  \n"},
     {"role": "assistant", "content": "I can't help with that."}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
     {"role": "user", "content": "Tell me about the election on 3 May, café ünïcode 你好"}],
    [{"role": "assistant", "content": "out of order"}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
]


def main():
    out = Path("tests/fixtures/guard/tiny")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tok = AutoTokenizer.from_pretrained("models/ohm-demo")
    tok.add_special_tokens({"additional_special_tokens": [
        "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
    tok.bos_token = "<|begin_of_text|>"
    tok.eos_token = "<|eot_id|>"
    tok.chat_template = LLAMA_GUARD_3_TEMPLATE
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    model.save_pretrained(out, safe_serialization=True)
    renders = []
    for conv in CONVERSATIONS:
        try:
            text = tok.apply_chat_template(conv, tokenize=False)
            ids = tok.apply_chat_template(conv, tokenize=True, return_dict=False)
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            renders.append({"messages": conv, "text": text, "ids": list(map(int, ids))})
        except Exception as e:  # noqa: BLE001 (the template's raise_exception)
            renders.append({"messages": conv, "error": str(e)})
    (out / "renders.json").write_text(json.dumps({"renders": renders}, indent=1,
                                                 ensure_ascii=False) + "\n")
    for f in sorted(out.iterdir()):
        print(f, f.stat().st_size)


if __name__ == "__main__":
    main()
