#!/usr/bin/env python3
"""Reference safetensors fixtures written by the real `safetensors` / `huggingface_hub` libraries.

Run on a developer machine (pip install torch safetensors huggingface_hub); CI never runs it.
Writes tests/fixtures/safetensors/:
  all_dtypes.safetensors   one small tensor per dtype HF writes, plus __metadata__
  all_dtypes.json          the expected values (as floats/ints) and shapes, read back by torch
  sharded/                 a 3-shard checkpoint + model.safetensors.index.json (huggingface_hub)
  sharded.json             expected tensor list of the sharded checkpoint
"""
import json
import os
import shutil
import sys

import huggingface_hub
import safetensors
import torch
from safetensors.torch import save_file, load_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "safetensors")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(3, 5, generator=g) * 4
    tensors = {
        "f64": base.double(),
        "f32": base.clone(),
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f8_e4m3": base.to(torch.float8_e4m3fn),
        "f8_e5m2": base.to(torch.float8_e5m2),
        "i64": (base * 1000).long(),
        "i32": (base * 1000).int(),
        "i16": (base * 100).short(),
        "i8": (base * 10).to(torch.int8),
        "u8": (base.abs() * 10).to(torch.uint8),
        "bool": base > 0,
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "nested.name.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4),
    }
    path = os.path.join(OUT, "all_dtypes.safetensors")
    save_file(tensors, path, metadata={"format": "pt", "note": "ohm fixture"})
    back = load_file(path)
    expected = {}
    with safetensors.safe_open(path, "pt") as f:
        meta = f.metadata()
    for name, t in back.items():
        expected[name] = {
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "values": t.double().flatten().tolist() if t.dtype != torch.bool else t.int().flatten().tolist(),
        }
    with open(os.path.join(OUT, "all_dtypes.json"), "w") as f:
        json.dump({"metadata": meta, "tensors": expected}, f, indent=1, sort_keys=True)

    # A sharded checkpoint as transformers/huggingface_hub write it.
    state = {f"layers.{i}.weight": torch.randn(16, 16, generator=g).bfloat16() for i in range(6)}
    state["embed.weight"] = torch.randn(32, 16, generator=g)
    sdir = os.path.join(OUT, "sharded")
    os.makedirs(sdir)
    huggingface_hub.save_torch_state_dict(state, sdir, max_shard_size=1500)
    with open(os.path.join(sdir, "model.safetensors.index.json")) as f:
        index = json.load(f)
    listing = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                   "file": index["weight_map"][k], "sum": float(v.double().sum())}
               for k, v in state.items()}
    with open(os.path.join(OUT, "sharded.json"), "w") as f:
        json.dump({"tensors": listing, "files": sorted(set(index["weight_map"].values())),
                   "versions": {"torch": torch.__version__, "safetensors": safetensors.__version__,
                                "huggingface_hub": huggingface_hub.__version__,
                                "python": sys.version.split()[0]}}, f, indent=1, sort_keys=True)
    print("wrote", OUT, sorted(os.listdir(OUT)), sorted(os.listdir(sdir)))


if __name__ == "__main__":
    main()
