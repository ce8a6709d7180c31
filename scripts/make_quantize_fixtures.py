#!/usr/bin/env python3
"""Writes tests/fixtures/quant/: reference quantizations by gguf-py (gguf.quants.quantize, bit-exact
with ggml's quantize_row_*_ref) of one deterministic f32 input (needs gguf, numpy).

  input.f32        16 rows x 256 f32 (little-endian): gaussian rows at several scales, a zero
                   row, a row with an all-zero 32-block, values on .5 quantization ties, outliers,
                   a constant row, tiny (subnormal-scale) values
  <type>.bin       gguf.quants.quantize(input, type) bytes for each of TYPES
  <type>.deq.f32   gguf.quants.dequantize(<type>.bin) (16 x 256 f32): what to_float must give
  VERSIONS.txt     the gguf / numpy versions used

Usage: python3 scripts/make_quantize_fixtures.py
"""
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "quant"

# ohm's name (QuantTraits::name) -> gguf-py's type; only types gguf-py can quantize.
TYPES = {
    "q4_0": T.Q4_0,
    "q4_1": T.Q4_1,
    "q5_0": T.Q5_0,
    "q5_1": T.Q5_1,
    "q8_0": T.Q8_0,
    "tq2_0": T.TQ2_0,
}


def main():
    rng = np.random.default_rng(1234)
    rows = [rng.standard_normal(256) * s for s in (1.0, 0.02, 50.0, 1e-3)]
    rows.append(np.zeros(256))
    r = rng.standard_normal(256)
    r[32:64] = 0
    rows.append(r)
    rows.append(np.tile(np.arange(-8, 8) * 0.5 + 0.25, 16))  # ties after scaling
    r = rng.standard_normal(256) * 0.1
    r[::37] = 30.0
    r[5] = -45.0
    rows.append(r)
    rows.append(np.full(256, 0.7))
    rows.append(rng.standard_normal(256) * 1e-6)
    rows.append(-np.abs(rng.standard_normal(256)))
    rows.append(np.abs(rng.standard_normal(256)))
    rows.append(rng.uniform(-1, 1, 256))
    rows.append(rng.standard_normal(256) ** 3)
    rows.append(np.round(rng.standard_normal(256) * 8) / 8)
    rows.append(rng.laplace(size=256))
    x = np.stack(rows).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    x.tofile(OUT / "input.f32")
    for name, t in TYPES.items():
        q = gguf.quants.quantize(x, t)
        q.tofile(OUT / f"{name}.bin")
        gguf.quants.dequantize(q, t).astype("<f4").tofile(OUT / f"{name}.deq.f32")
    import importlib.metadata as md
    (OUT / "VERSIONS.txt").write_text(
        f"gguf {md.version('gguf')}\nnumpy {np.__version__}\n"
        "command (from repository root): python3 scripts/make_quantize_fixtures.py\n")


if __name__ == "__main__":
    main()
