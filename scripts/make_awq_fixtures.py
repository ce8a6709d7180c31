#!/usr/bin/env python3
"""Tiny AWQ checkpoints quantized by GPTQModel's own AWQ quantizer, with transformers' reference.

CPU only, deterministic.  Not run by CI; its outputs are committed under
tests/fixtures/quant_hf/ (llama_awq_gptqmodel_g32, qwen2_awq_gptqmodel_g128).  Re-running it
deletes and rewrites those two directories and appends its lines to
tests/fixtures/quant_hf/VERSIONS.txt.

Unlike scripts/make_gptq_fixtures.py, which packs round-to-nearest weights itself, this runs the
library: the same tiny random llama and qwen2 models (hidden 128, intermediate 256, 1 layer,
vocab 128, qwen2 with q/k/v biases; f16 checkpoints with a 128-word WordLevel tokenizer) are
saved to a temporary directory and quantized by GPTQModel (gptqmodel/looper/awq_processor.py:
activation-aware scale search, then clip search) with QuantizeConfig(quant_method AWQ, format
GEMM, bits 4, sym False, i.e. zero_point) on 32 random calibration sequences of 64 tokens, and
saved with GPTQModel's own writer.  config.json and model.safetensors are kept as written.

The reference is transformers loading that directory (its AWQ integration through GPTQModel) in
float32 on CPU.  As loaded, GPTQModel's CPU AWQ module (TorchCpuAvx512AwqLinear, f32 activations)
keeps the f16 scales and dequantizes each weight to f16 (dequantize_gemm: (q - zero) * scale in
the scales' dtype) before an f32 matmul, so every weight is rounded to f16: 3.0e-4 to 3.5e-4 of
the logit range away from the exact scale * (q - zero).  The reference therefore upcasts those
modules' scales to f32 after loading (the same transformers / GPTQModel code then dequantizes
exactly, since a 4-bit integer times an f16 value is exact in f32) and keeps the as-loaded logits
beside it; the script checks that both give the same greedy tokens and records their difference
in VERSIONS.txt.
    reference.safetensors: prompt.input_ids [1, 32] int64, prompt.logits [1, 32, 128] f32
    (exact dequantization), greedy.input_ids [12], greedy.output_ids [28] (the prompt and 16
    greedy tokens), transformers_as_loaded.logits [1, 32, 128] f32 (f16-rounded weights).

Usage (from the repository root, in build/fixture-venv with gptqmodel 7.7.0 and optimum 2.3.0):
    nice -n 19 build/fixture-venv/bin/python scripts/make_awq_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

# The same tiny random models as the RTN fixtures (this directory is on sys.path when the script
# runs): random init, nonzero biases, norms near 1, float32 (build() casts them to f16).
from make_gptq_fixtures import SHAPE, make_model  # noqa: E402

# name, arch, group_size, seed
FIXTURES = [
    ("llama_awq_gptqmodel_g32", "llama", 32, 300),
    ("qwen2_awq_gptqmodel_g128", "qwen2", 128, 301),
]
KEEP = ["config.json", "model.safetensors"]
N_CALIB, CALIB_LEN, PROMPT_LEN, GREEDY_PROMPT, GREEDY_NEW = 32, 64, 32, 12, 16


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer over the 128 ids ("<pad>", "<s>", "</s>", "<unk>", "t4".."t127"),
    for GPTQModel's loader, which expects one next to the model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({f"t{i}": i for i in range(4, SHAPE["vocab_size"])})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")


def build(name: str, arch: str, group: int, seed: int, out_dir: Path, tmp: Path) -> str:
    from gptqmodel import GPTQModel, QuantizeConfig
    from gptqmodel.quantization import FORMAT, METHOD

    src = tmp / f"{name}-src"
    qdir = tmp / f"{name}-awq"
    model = make_model(arch, seed).to(torch.float16)
    model.config.dtype = torch.float16
    model.save_pretrained(str(src))
    make_tokenizer().save_pretrained(str(src))

    g = torch.Generator().manual_seed(seed + 1)
    calib = [{"input_ids": torch.randint(4, SHAPE["vocab_size"], (1, CALIB_LEN), generator=g),
              "attention_mask": torch.ones(1, CALIB_LEN, dtype=torch.long)}
             for _ in range(N_CALIB)]
    qc = QuantizeConfig(quant_method=METHOD.AWQ, format=FORMAT.GEMM, bits=4, group_size=group,
                        sym=False, desc_act=False, offload_to_disk=False)
    gm = GPTQModel.load(str(src), qc, device="cpu", dtype=torch.float16)
    gm.quantize(calib, batch_size=1)
    gm.save(str(qdir))
    del gm

    d = out_dir / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in KEEP:
        shutil.copy(qdir / f, d / f)

    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(str(d), device_map="cpu", dtype=torch.float32).eval()
    ids = torch.randint(4, SHAPE["vocab_size"], (1, PROMPT_LEN), generator=g)
    loaded_logits, loaded_outs = run(m, ids)
    kernels = set()
    for mod in m.modules():  # exact dequantization: f32 scales (see the module docstring)
        if hasattr(mod, "qweight") and isinstance(getattr(mod, "scales", None), torch.Tensor):
            kernels.add(type(mod).__name__)
            mod.scales = mod.scales.float()
    logits, outs = run(m, ids)
    save_file({"prompt.input_ids": ids.to(torch.int64).contiguous(),
               "prompt.logits": logits.contiguous(),
               "greedy.input_ids": ids[0, :GREEDY_PROMPT].to(torch.int64).clone(),
               "greedy.output_ids": outs[0].to(torch.int64).contiguous(),
               "transformers_as_loaded.logits": loaded_logits.contiguous()},
              str(d / "reference.safetensors"))
    rng = (logits.max() - logits.min()).item()
    rel = (loaded_logits - logits).abs().max().item() / rng
    same = torch.equal(loaded_outs, outs)
    if not same:
        print(f"WARNING {name}: as-loaded greedy tokens differ from the reference's", flush=True)
    qcfg = json.loads((d / "config.json").read_text())["quantization_config"]
    size = sum(f.stat().st_size for f in d.iterdir())
    brief = {k: qcfg.get(k) for k in ("quant_method", "format", "version", "bits", "group_size",
                                       "zero_point", "sym")}
    return (f"{name}: written ({size} bytes); quantization_config {json.dumps(brief)}; "
            f"transformers as loaded ({'/'.join(sorted(kernels))}, f16-rounded weights) vs "
            f"reference max|diff|/range {rel:.3g}, greedy tokens {'identical' if same else 'DIFFER'}")


def run(m, ids):
    """Prompt logits [1, T, V] f32 and the prompt's first GREEDY_PROMPT tokens + GREEDY_NEW
    greedy ones."""
    with torch.no_grad():
        logits = m(ids).logits.float()
        outs = m.generate(ids[:, :GREEDY_PROMPT], max_new_tokens=GREEDY_NEW,
                          min_new_tokens=GREEDY_NEW, do_sample=False, eos_token_id=None,
                          pad_token_id=0)
    return logits, outs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/quant_hf")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    notes = []
    with tempfile.TemporaryDirectory(prefix="ohm-awq-") as tmp:
        for f in FIXTURES:
            line = build(*f, out_dir=out, tmp=Path(tmp))
            print(line, flush=True)
            notes.append(line)
    from importlib.metadata import version
    with open(out / "VERSIONS.txt", "a") as fh:
        fh.write(f"python {platform.python_version()}, torch {torch.__version__}, "
                 f"transformers {transformers.__version__}, numpy {np.__version__}, "
                 f"gptqmodel {version('gptqmodel')}, optimum {version('optimum')} "
                 f"(GPTQModel's AWQ quantizer on CPU, GEMM, 4-bit, zero point, f16 model; "
                 f"reference: transformers float32 load of the saved checkpoint, scales upcast "
                 f"to f32)\n"
                 f"command: {' '.join(sys.argv)}\n" + "\n".join(notes) + "\n")


if __name__ == "__main__":
    main()
