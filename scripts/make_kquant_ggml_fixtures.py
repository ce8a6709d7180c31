#!/usr/bin/env python3
"""K-quant fixtures from ggml itself: calls llama.cpp's libggml-base (quantize_row_q{2,3,4,5,6}_K_ref,
ggml/src/ggml-quants.c, the no-imatrix reference quantizers llama-quantize uses) through ctypes on
tests/fixtures/quant/kquant/input.f32 (24 rows x 512 with edge cases, written by
scripts/make_kquant_fixtures.py) and writes, for the types gguf-py cannot quantize:

  tests/fixtures/quant/kquant/q2_k.bin q3_k.bin q5_k.bin   ggml's bytes
  tests/fixtures/quant/kquant/q2_k.deq.f32 ...             gguf.quants.dequantize of those bytes

and, for llama-quantize --imatrix, the importance-weighted quantizers quantize_<type>(src, dst,
nrow, n_per_row, imatrix) (quantize_row_*_impl with quant_weights) for q4_0 q4_1 q5_0 q5_1 and
the five k-quants, with the per-column weights in imatrix.f32 (512 seeded positive values over
five decades):

  tests/fixtures/quant/kquant/imatrix.f32, <type>.imatrix.bin

It first checks that the library's Q4_K and Q6_K bytes equal the existing q4_k.bin / q6_k.bin
(from the numpy restatement in make_kquant_fixtures.py): a library built with FMA contraction or
another rounding would not, and the script stops.

Usage (numpy, gguf 0.19: build/fixture-venv):
  python3 scripts/make_kquant_ggml_fixtures.py [--lib /work/peers/llama.cpp/build/bin/libggml-base.so]
"""
import argparse
import ctypes
import importlib.metadata
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "quant" / "kquant"
ROWS, COLS = 24, 512
BLOCK_BYTES = {"q2_k": 84, "q3_k": 110, "q4_k": 144, "q5_k": 176, "q6_k": 210}
ROW_BYTES = {"q4_0": 18 * 16, "q4_1": 20 * 16, "q5_0": 22 * 16, "q5_1": 24 * 16,
             **{k: v * 2 for k, v in BLOCK_BYTES.items()}}


def ggml_quantize_weighted(lib, name, x, qw):
    fn = getattr(lib, "quantize_" + (name[:2] + "_K" if name.endswith("_k") else name))
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                   ctypes.c_void_p]
    x = np.ascontiguousarray(x, dtype="<f4")
    qw = np.ascontiguousarray(qw, dtype="<f4")
    out = np.zeros(x.shape[0] * ROW_BYTES[name], dtype=np.uint8)
    n = fn(x.ctypes.data, out.ctypes.data, x.shape[0], x.shape[1], qw.ctypes.data)
    assert n == out.size, (name, n, out.size)
    return out


def ggml_quantize(lib, name, x):
    fn = getattr(lib, f"quantize_row_{name[:2]}_K_ref")
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    x = np.ascontiguousarray(x, dtype="<f4")
    out = np.zeros(x.shape[0] * (x.shape[1] // 256) * BLOCK_BYTES[name], dtype=np.uint8)
    fn(x.ctypes.data, out.ctypes.data, x.size)  # rows are contiguous: one call for all
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default="/work/peers/llama.cpp/build/bin/libggml-base.so")
    a = ap.parse_args()
    import gguf
    lib = ctypes.CDLL(a.lib)
    x = np.fromfile(OUT / "input.f32", dtype="<f4").reshape(ROWS, COLS)
    for name in ("q4_k", "q6_k"):
        mine = np.fromfile(OUT / f"{name}.bin", dtype=np.uint8)
        theirs = ggml_quantize(lib, name, x)
        assert np.array_equal(mine, theirs), f"{name}: the library differs from {name}.bin"
        print(f"{name}: libggml-base equals the numpy restatement's {name}.bin")
    for name in ("q2_k", "q3_k", "q5_k"):
        q = ggml_quantize(lib, name, x)
        q.tofile(OUT / f"{name}.bin")
        t = getattr(gguf.GGMLQuantizationType, name.upper())
        back = gguf.quants.dequantize(q.reshape(ROWS, -1), t).astype("<f4")
        assert back.shape == x.shape
        back.tofile(OUT / f"{name}.deq.f32")
        rms = np.sqrt(np.mean(x[0].astype(np.float64) ** 2))
        print(f"{name}: wrote; Gaussian row 0 relative rmse "
              f"{np.sqrt(np.mean((back[0] - x[0]) ** 2)) / rms:.4f}")
    rng = np.random.default_rng(20261207)
    qw = (10.0 ** rng.uniform(-3, 2, COLS)).astype("<f4")
    qw.tofile(OUT / "imatrix.f32")
    for name in ("q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"):
        ggml_quantize_weighted(lib, name, x, qw).tofile(OUT / f"{name}.imatrix.bin")
        print(f"{name}: wrote {name}.imatrix.bin")
    commit = subprocess.run(["git", "-C", str(Path(a.lib).resolve().parents[2]), "rev-parse",
                             "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    versions = OUT / "VERSIONS.txt"
    lines = [ln for ln in versions.read_text().splitlines() if not ln.startswith("q2_k/q3_k/q5_k")]
    lines.append(f"q2_k/q3_k/q5_k and *.imatrix.bin: {Path(a.lib).name} of llama.cpp (commit {commit or 'unknown'}) "
                 f"via python3 scripts/make_kquant_ggml_fixtures.py (gguf "
                 f"{importlib.metadata.version('gguf')})")
    versions.write_text("\n".join(lines) + "\n")
    print("wrote", OUT.relative_to(ROOT).as_posix())


if __name__ == "__main__":
    main()
