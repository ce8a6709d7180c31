#!/usr/bin/env python3
"""Quantize the demo model with GPTQModel itself (CPU) and write transformers' reference.

Not run by CI; the outputs (6.3 MB) are not committed. Writes OUT/ as GPTQModel saves it plus
OUT/reference.safetensors in tests/fixtures/quant_hf's layout (prompt.input_ids / prompt.logits
for 48 held-out tokens from transformers' float32 load of OUT, greedy.input_ids /
greedy.output_ids for 16 greedy tokens), so that linking OUT into tests/fixtures/quant_hf runs
test_quant_hf on it (docs/quantization.md, "Checkpoints written by GPTQModel itself").

Usage (from the repository root, in build/fixture-venv with gptqmodel and optimum installed):
    GPTQMODEL_CPU_WORKERS=2 build/fixture-venv/bin/python scripts/check_gptqmodel_demo.py OUT \\
        [--desc-act] [--sym] [--group-size 128]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

import torch  # noqa: E402
from gptqmodel import GPTQModel, QuantizeConfig  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

SRC = "models/ohm-demo"
TEXT = "tests/fixtures/demo/heldout.txt"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--desc-act", action="store_true")
    ap.add_argument("--sym", action="store_true")
    ap.add_argument("--group-size", type=int, default=128)
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(SRC)
    ids = tok(open(TEXT).read())["input_ids"]
    calib = [{"input_ids": torch.tensor([ids[i:i + 128]]),
              "attention_mask": torch.ones(1, 128, dtype=torch.long)}
             for i in range(0, len(ids) - 128, 128)]
    qc = QuantizeConfig(bits=4, group_size=args.group_size, desc_act=args.desc_act, sym=args.sym)
    model = GPTQModel.load(SRC, qc, device="cpu")
    model.quantize(calib, batch_size=1)
    model.save(args.out)

    prompt = torch.tensor([ids[:48]])
    m = AutoModelForCausalLM.from_pretrained(args.out, device_map="cpu", dtype=torch.float32)
    with torch.no_grad():
        logits = m(prompt).logits.float()
        out = m.generate(prompt[:, :12], max_new_tokens=16, min_new_tokens=16, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    save_file({"prompt.input_ids": prompt.contiguous(), "prompt.logits": logits.contiguous(),
               "greedy.input_ids": prompt[0, :12].clone(), "greedy.output_ids": out[0].contiguous()},
              os.path.join(args.out, "reference.safetensors"))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
