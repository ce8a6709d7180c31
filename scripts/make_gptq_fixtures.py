#!/usr/bin/env python3
"""Tiny GPTQ and AWQ checkpoints in the layouts Hugging Face publishes, with reference logits.

CPU only, deterministic.  Not run by CI; its outputs are committed under
tests/fixtures/quant_hf/.  Re-running it deletes and rewrites that directory.

Usage (from the repository root, in build/fixture-venv):
    nice -n 10 build/fixture-venv/bin/python scripts/make_gptq_fixtures.py [--out DIR]
        [--check-transformers]

The checkpoints are packed by this script, per the published formats (AutoGPTQ's
QuantLinear.pack() and AutoAWQ's WQLinear_GEMM.from_linear(), as summarised in
docs/quantization.md and ../shared/docs/runtime-formats-and-peers.md §2.1-2.2), from a
random-weight transformers model quantized round-to-nearest per group:
    GPTQ  qweight int32 [K*b/32, N] (packed along the input dim), qzeros int32 [G, N*b/32],
          scales f16 [G, N], g_idx int32 [K]; checkpoint_format "gptq" stores zero - 1 (mod 2^b),
          "gptq_v2" the zero itself; desc_act: a random input-column order stands in for the
          Hessian order, g_idx[order[j]] = j // group_size.
    AWQ   qweight int32 [K, N/8] (packed along the output dim, nibble k = column 8c + [0,2,4,6,
          1,3,5,7][k]), qzeros int32 [G, N/8] (same), scales f16 [G, N]; zeros stored as is.
The reference is the float32 transformers model whose linears hold the dequantized weights
scales[g_idx[i], n] * (q[i, n] - zero[g_idx[i], n]) (AutoGPTQ's reference forward).  With
--check-transformers the script also loads each checkpoint with transformers (its GPTQ / AWQ
integration, which needs GPTQModel) and records the largest logit difference in VERSIONS.txt.

Per fixture <name>: config.json (with quantization_config), model.safetensors,
reference.safetensors (prompt.input_ids [1, T], prompt.logits [1, T, V] f32,
greedy.input_ids, greedy.output_ids: 16 greedy tokens after the prompt).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

SHAPE = dict(vocab_size=128, hidden_size=128, intermediate_size=256, num_hidden_layers=1,
             num_attention_heads=4, num_key_value_heads=2, head_dim=32,
             max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True,
             bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.08)

# name, arch, method, bits, group_size, sym, desc_act, checkpoint_format
FIXTURES = [
    ("llama_gptq_4bit_g128_sym", "llama", "gptq", 4, 128, True, False, "gptq"),
    ("llama_gptq_4bit_g32_asym_descact", "llama", "gptq", 4, 32, False, True, "gptq"),
    ("llama_gptq_4bit_g128_sym_descact_v2", "llama", "gptq", 4, 128, True, True, "gptq_v2"),
    ("llama_gptq_4bit_gm1_sym_v2", "llama", "gptq", 4, -1, True, False, "gptq_v2"),
    ("llama_gptq_8bit_g32_sym", "llama", "gptq", 8, 32, True, False, "gptq"),
    ("llama_gptq_8bit_g128_asym_descact", "llama", "gptq", 8, 128, False, True, "gptq"),
    ("llama_awq_gemm_g128", "llama", "awq", 4, 128, False, False, None),
    ("qwen2_gptq_4bit_g128_asym", "qwen2", "gptq", 4, 128, False, False, "gptq"),
    ("qwen2_gptq_4bit_g32_sym_descact", "qwen2", "gptq", 4, 32, True, True, "gptq"),
    ("qwen2_gptq_8bit_g32_sym", "qwen2", "gptq", 8, 32, True, False, "gptq"),
    ("qwen2_awq_gemm_g32", "qwen2", "awq", 4, 32, False, False, None),
]


def make_model(arch: str, seed: int):
    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(**SHAPE)
        m = LlamaForCausalLM(cfg)
    else:
        cfg = Qwen2Config(**{k: v for k, v in SHAPE.items() if k != "head_dim"})
        m = Qwen2ForCausalLM(cfg)
    with torch.no_grad():  # biases (qwen2 q/k/v) are zero at init: give them values
        for name, p in m.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.05)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return m.float().eval()


def quantize(w: torch.Tensor, bits: int, group: int, sym: bool, desc_act: bool,
             gen: torch.Generator):
    """Round-to-nearest per (group, output column), as GPTQ's Quantizer picks scale and zero.
    w: [N, K] (nn.Linear).  Returns q int [K, N], zero int [G, N], scale f16 [G, N],
    g_idx int [K]."""
    N, K = w.shape
    G = K if group == -1 else group
    ngroups = (K + G - 1) // G
    order = torch.randperm(K, generator=gen) if desc_act else torch.arange(K)
    g_idx = torch.empty(K, dtype=torch.int32)
    g_idx[order] = (torch.arange(K) // G).to(torch.int32)
    maxq = 2**bits - 1
    wt = w.t().contiguous()  # [K, N]
    q = torch.empty(K, N, dtype=torch.int64)
    zero = torch.empty(ngroups, N, dtype=torch.int64)
    scale = torch.empty(ngroups, N, dtype=torch.float16)
    for g in range(ngroups):
        rows = order[g * G:(g + 1) * G]
        x = wt[rows]  # [G, N]
        xmin = torch.minimum(x.min(0).values, torch.zeros(N))
        xmax = torch.maximum(x.max(0).values, torch.zeros(N))
        if sym:
            xmax = torch.maximum(xmin.abs(), xmax)
            xmin = -xmax
        s = ((xmax - xmin) / maxq).clamp_min(1e-8)
        s16 = s.to(torch.float16)
        sf = s16.float()
        z = torch.full((N,), (maxq + 1) // 2, dtype=torch.int64) if sym else \
            torch.round(-xmin / sf).clamp(0, maxq).to(torch.int64)
        q[rows] = torch.clamp(torch.round(x / sf) + z, 0, maxq).to(torch.int64)
        zero[g] = z
        scale[g] = s16
    return q, zero, scale, g_idx


def dequant(q, zero, scale, g_idx):
    """[N, K] float32: scale[g_idx[i], n] * (q[i, n] - zero[g_idx[i], n])."""
    gi = g_idx.long()
    return (scale.float()[gi] * (q - zero[gi]).float()).t().contiguous()


def pack_cols_along_rows(q: torch.Tensor, bits: int) -> torch.Tensor:
    """GPTQ qweight: [K, N] -> int32 [K*bits/32, N], row r*pw + k in bits bits*k."""
    pw = 32 // bits
    K, N = q.shape
    qn = q.numpy().astype(np.uint64)
    out = np.zeros((K // pw, N), dtype=np.uint64)
    for k in range(pw):
        out |= qn[k::pw] << np.uint64(bits * k)
    return torch.from_numpy(out.astype(np.uint32).view(np.int32))


def pack_along_cols(z: torch.Tensor, bits: int, order=None) -> torch.Tensor:
    """[R, N] -> int32 [R, N*bits/32]; nibble k of word c holds column c*pw + order[k]."""
    pw = 32 // bits
    R, N = z.shape
    order = order or list(range(pw))
    out = np.zeros((R, N // pw), dtype=np.uint64)
    zn = z.numpy().astype(np.uint64)
    for k in range(pw):
        out |= zn[:, order[k]::pw] << np.uint64(bits * k)
    return torch.from_numpy(out.astype(np.uint32).view(np.int32))


def build(name, arch, method, bits, group, sym, desc_act, fmt, out_dir: Path, seed: int):
    model = make_model(arch, seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors = {}
    for layer in range(SHAPE["num_hidden_layers"]):
        for lin in LINEARS:
            prefix = f"model.layers.{layer}.{lin}"
            w = sd.pop(prefix + ".weight")
            q, zero, scale, g_idx = quantize(w, bits, group, sym, desc_act, gen)
            wd = dequant(q, zero, scale, g_idx)
            with torch.no_grad():
                model.get_submodule(prefix).weight.copy_(wd)
            if method == "gptq":
                tensors[prefix + ".qweight"] = pack_cols_along_rows(q, bits)
                stored = zero if fmt == "gptq_v2" else (zero - 1) & (2**bits - 1)
                tensors[prefix + ".qzeros"] = pack_along_cols(stored, bits)
                tensors[prefix + ".scales"] = scale
                tensors[prefix + ".g_idx"] = g_idx
            else:
                tensors[prefix + ".qweight"] = pack_along_cols(q, 4, AWQ_ORDER)
                tensors[prefix + ".qzeros"] = pack_along_cols(zero, 4, AWQ_ORDER)
                tensors[prefix + ".scales"] = scale
            if prefix + ".bias" in sd:
                tensors[prefix + ".bias"] = sd.pop(prefix + ".bias").to(torch.float16)
    # Embeddings and norms in f16 as published checkpoints have them; the reference uses the
    # same f16-rounded values.
    for k, v in sd.items():
        if k == "lm_head.weight":
            continue  # tied
        v16 = v.to(torch.float16)
        tensors[k] = v16
        with torch.no_grad():
            dict(model.named_parameters())[k].copy_(v16.float())
    for k, v in model.named_parameters():  # biases reference the f16 values too
        if k.endswith(".bias"):
            with torch.no_grad():
                v.copy_(v.to(torch.float16).float())

    d = out_dir / name
    d.mkdir(parents=True)
    cfg = model.config.to_dict()
    cfg["architectures"] = [type(model).__name__]
    cfg["torch_dtype"] = "float16"
    cfg.pop("dtype", None)
    if method == "gptq":
        cfg["quantization_config"] = {
            "quant_method": "gptq", "bits": bits, "group_size": group, "desc_act": desc_act,
            "sym": sym, "checkpoint_format": fmt, "damp_percent": 0.01, "true_sequential": True,
            "static_groups": False, "lm_head": False, "pack_dtype": "int32",
            "meta": {"quantizer": ["ohm scripts/make_gptq_fixtures.py (RTN, AutoGPTQ pack layout)"]}}
    else:
        cfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": group,
                                      "zero_point": True, "version": "gemm",
                                      "modules_to_not_convert": None}
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / "model.safetensors"),
              metadata={"format": "pt"})

    g = torch.Generator().manual_seed(seed + 7)
    ids = torch.randint(3, SHAPE["vocab_size"], (1, 12), generator=g)
    with torch.no_grad():
        logits = model(ids).logits.float()
        outs = model.generate(ids, max_new_tokens=16, do_sample=False, min_new_tokens=16,
                              eos_token_id=None, pad_token_id=0)
    ref = {"prompt.input_ids": ids.to(torch.int64).contiguous(),
           "prompt.logits": logits.contiguous(),
           "greedy.input_ids": ids[0].to(torch.int64).clone(),
           "greedy.output_ids": outs[0].to(torch.int64).contiguous()}
    save_file(ref, str(d / "reference.safetensors"))
    return d, logits, ids


def check_transformers(d: Path, logits: torch.Tensor, ids: torch.Tensor) -> str:
    try:
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained(str(d), device_map="cpu", dtype=torch.float16)
        with torch.no_grad():
            got = m(ids).logits.float()
        rng = (logits.max() - logits.min()).item()
        return f"transformers max|diff|/range {((got - logits).abs().max().item() / rng):.3g}"
    except Exception as e:  # noqa: BLE001
        return f"transformers could not load it: {type(e).__name__}: {str(e).splitlines()[0][:200]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/quant_hf")
    ap.add_argument("--check-transformers", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.set_num_threads(2)
    notes = []
    for i, f in enumerate(FIXTURES):
        d, logits, ids = build(*f, out_dir=out, seed=100 + i)
        line = f"{f[0]}: written"
        if args.check_transformers:
            line += "; " + check_transformers(d, logits, ids)
        print(line, flush=True)
        notes.append(line)
    extra = ""
    if args.check_transformers:
        from importlib.metadata import version
        extra = f", gptqmodel {version('gptqmodel')}, optimum {version('optimum')} (f16 on CPU)"
    (out / "VERSIONS.txt").write_text(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, numpy {np.__version__}{extra}\n"
        f"command: {' '.join(sys.argv)}\n" + "\n".join(notes) + "\n")


if __name__ == "__main__":
    main()
