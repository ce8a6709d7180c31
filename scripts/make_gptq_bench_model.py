#!/usr/bin/env python3
"""A random GPTQ 4-bit checkpoint of a benchmark shape, for speed runs (docs/quantization.md).

Takes a directory written by `ohm make-bench-model --format safetensors-bf16` (config.json +
model.safetensors) and writes beside it a GPTQ checkpoint of the same shape in AutoGPTQ's layout
(checkpoint_format gptq, sym, desc_act false): every linear of the decoder layers becomes
qweight int32 [K/8, N] (random nibbles), qzeros 0x77777777 (zero 8 stored minus 1), scales f16
[K/G, N] (random, ~0.01) and g_idx = i // G; embeddings, norms and lm_head are copied as f16.
The values are random (speed only; the output text is noise).

Needs numpy and safetensors only (no torch; build/hub-venv has both): the bf16 source is read
from the safetensors header and converted here.

Usage:
    ohm make-bench-model --shape tinyllama-1.1b --format safetensors-bf16 --out /tmp/tl-bf16
    build/hub-venv/bin/python scripts/make_gptq_bench_model.py /tmp/tl-bf16 /tmp/tl-gptq \\
        [--group-size 128] [--desc-act]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32,
           "I64": np.int64, "U8": np.uint8}


def read_safetensors(path: Path):
    """name -> numpy array (BF16 as uint16 bit patterns, with the dtype name beside it)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = int(np.frombuffer(raw[:8].tobytes(), dtype="<u8")[0])
    header = json.loads(raw[8 : 8 + n].tobytes())
    header.pop("__metadata__", None)
    for name, info in header.items():
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=_DTYPES[info["dtype"]])
        yield name, info["dtype"], arr.reshape(info["shape"])


def to_f16(dtype: str, a: np.ndarray) -> np.ndarray:
    if dtype == "BF16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--desc-act", action="store_true")
    args = ap.parse_args()
    src, out = Path(args.src), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    G = args.group_size
    tensors = {}
    for name, dtype, t in read_safetensors(src / "model.safetensors"):
        if t.ndim == 2 and ".layers." in name and name.endswith(".weight"):
            N, K = t.shape
            prefix = name[: -len(".weight")]
            g = K if G == -1 else G
            qw = rng.integers(0, 2**32, size=(K // 8, N), dtype=np.uint64).astype(np.uint32)
            tensors[prefix + ".qweight"] = qw.view(np.int32)
            qz = np.full(((K + g - 1) // g, N // 8), 0x77777777, dtype=np.uint32)
            tensors[prefix + ".qzeros"] = qz.view(np.int32)
            sc = (0.01 * (1 + rng.random(((K + g - 1) // g, N)))).astype(np.float16)
            tensors[prefix + ".scales"] = sc
            gi = np.arange(K, dtype=np.int32) // g
            if args.desc_act:
                perm = rng.permutation(K)
                gi = np.empty(K, dtype=np.int32)
                gi[perm] = np.arange(K, dtype=np.int32) // g
            tensors[prefix + ".g_idx"] = gi
        else:
            tensors[name] = to_f16(dtype, t)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    cfg["torch_dtype"] = "float16"
    cfg["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": G,
                                  "desc_act": args.desc_act, "sym": True,
                                  "checkpoint_format": "gptq"}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    for extra in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if (src / extra).exists():
            shutil.copy(src / extra, out / extra)


if __name__ == "__main__":
    main()
