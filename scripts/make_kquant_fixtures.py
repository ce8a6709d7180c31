#!/usr/bin/env python3
"""Reference K-quant fixtures: ggml's Q4_K and Q6_K reference quantizers (quantize_row_q4_K_ref
with make_qkx2_quants, quantize_row_q6_K_ref with make_qx_quants, rmse_type 1, no importance
weights; ggml/src/ggml-quants.c), restated in numpy, and a 256-wide llama model quantized with
them. gguf-py 0.19 can dequantize Q4_K/Q6_K but not quantize them, hence the restatement.

Exactness: ggml computes in float32, one operation at a time (no FMA contraction), with its sums
accumulated left to right. Here every value is a float32 numpy array holding one lane per
(sub-)block, every sum is a Python loop over the block's elements in C's order, and each binary
operation is one float32 numpy operation, so every intermediate is rounded as in C. numpy's
pairwise reductions (np.sum, @) are never used on values that reach the bytes. nearest_int is the
same 1.5 * 2^23 bit trick; f16 conversions are numpy's (round to nearest even, as ggml's).

  quant   tests/fixtures/quant/kquant/: input.f32 (ROWS x COLS f32: seeded rows with edge cases),
          q4_k.bin / q6_k.bin (the restated reference's bytes), q4_k.deq.f32 / q6_k.deq.f32
          (gguf.quants.dequantize of those bytes), VERSIONS.txt. Also checks the round trip: the
          gguf-py dequantization is within the format's error of the input.
  model   tests/fixtures/models/llama_kquant/gguf/: model-q4_k_m.gguf, a random 1-layer llama
          (hidden 256, 4 heads of 64, 2 KV heads, intermediate 256, vocab 256) written with
          gguf-py's GGUFWriter as convert_hf_to_gguf.py writes a llama (q/k rows permuted), its
          matrices quantized by the restated reference in llama.cpp's Q4_K_M pattern (Q6_K for
          attn_v, ffn_down and output, Q4_K for the others; norms F32); and
          reference-q4_k_m.safetensors: transformers' logits for three prompts and 32 greedy
          tokens, computed on the file's weights (gguf.quants.dequantize, permutation undone).
          The transformers step runs in a subprocess with --torch-python (default: this
          python; build/fixture-venv has torch and transformers too).

Usage (numpy, gguf 0.19, safetensors; torch and transformers for `model`: build/fixture-venv):
  python3 scripts/make_kquant_fixtures.py [quant] [model] [--torch-python PY]
"""
import argparse
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUANT_OUT = ROOT / "tests" / "fixtures" / "quant" / "kquant"
MODEL_OUT = ROOT / "tests" / "fixtures" / "models" / "llama_kquant" / "gguf"

F = np.float32
QK_K = 256
GROUP_MAX_EPS = F(1e-15)


# ---- ggml helpers --------------------------------------------------------------------------

def nearest_int(v):
    """ggml's nearest_int: (v + 1.5 * 2^23) in float32, low mantissa bits minus 2^22."""
    s = (np.asarray(v, dtype=F) + F(12582912.0)).astype(F)
    i = s.view(np.int32)
    return (i & 0x007FFFFF) - 0x00400000


def to_f16(v):
    """GGML_FP32_TO_FP16 (round to nearest even) as uint16 bits."""
    return np.asarray(v, dtype=F).astype(np.float16).view(np.uint16)


def from_f16(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(F)


def where(c, a, b):
    """np.where that keeps float32 (C's `cond ? a : b` on floats)."""
    return np.where(c, a, b).astype(F) if np.asarray(a).dtype.kind == "f" else np.where(c, a, b)


# ---- Q4_K ----------------------------------------------------------------------------------

def make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep):
    """make_qkx2_quants (use_mad false) on rows of x [B, n] with weights w [B, n]: per row the
    scale, the_min (= -min, >= 0) and L [B, n]."""
    B, n = x.shape
    mn = x[:, 0].copy()
    mx = x[:, 0].copy()
    sum_w = w[:, 0].copy()
    sum_x = sum_w * x[:, 0]
    for i in range(1, n):
        mn = where(x[:, i] < mn, x[:, i], mn)
        mx = where(x[:, i] > mx, x[:, i], mx)
        sum_w = sum_w + w[:, i]
        sum_x = sum_x + w[:, i] * x[:, i]
    mn = where(mn > 0, F(0), mn)
    flat = mx == mn
    mn0 = mn.copy()
    with np.errstate(all="ignore"):
        iscale = F(nmax) / (mx - mn)
        scale = F(1) / iscale
        L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
        best = np.zeros(B, F)
        for i in range(n):
            diff = scale * L[:, i].astype(F) + mn - x[:, i]
            diff = diff * diff
            best = best + w[:, i] * diff
        for step in range(nstep + 1):
            # min is the best fit's so far: C's loop updates it and reads max - min afresh
            iscale = (F(rmin) + F(rdelta) * F(step) + F(nmax)) / (mx - mn)
            Laux = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
            sum_l = np.zeros(B, F)
            sum_l2 = np.zeros(B, F)
            sum_xl = np.zeros(B, F)
            for i in range(n):
                l = Laux[:, i].astype(F)
                wl = w[:, i] * l
                sum_l = sum_l + wl
                sum_l2 = sum_l2 + wl * l
                sum_xl = sum_xl + wl * x[:, i]
            D = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            pos = this_min > 0
            this_min = where(pos, F(0), this_min)
            this_scale = where(pos, sum_xl / sum_l2, this_scale)
            cur = np.zeros(B, F)
            for i in range(n):
                diff = this_scale * Laux[:, i].astype(F) + this_min - x[:, i]
                diff = diff * diff
                cur = cur + w[:, i] * diff
            take = (D > 0) & (cur < best)
            L = np.where(take[:, None], Laux, L)
            best = where(take, cur, best)
            scale = where(take, this_scale, scale)
            mn = where(take, this_min, mn)
    L = np.where(flat[:, None], 0, L)
    scale = where(flat, F(0), scale)
    return scale, -where(flat, mn0, mn), L


def quantize_q4_k(x):
    """quantize_row_q4_K_ref on x [nb, 256] -> [nb, 144] uint8
    ({f16 d; f16 dmin; u8 scales[12]; u8 qs[128]})."""
    x = np.ascontiguousarray(x, dtype=F).reshape(-1, QK_K)
    nb = x.shape[0]
    sub = x.reshape(nb * 8, 32)
    sum_x2 = np.zeros(nb * 8, F)
    for l in range(32):
        sum_x2 = sum_x2 + sub[:, l] * sub[:, l]
    av_x = np.sqrt(sum_x2 / F(32)).astype(F)
    weights = av_x[:, None] + np.abs(sub)
    scales, mins, L = make_qkx2_quants(sub, weights, 15, -1.0, 0.1, 20)
    scales = scales.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    L = L.reshape(nb, 256)
    max_scale = np.zeros(nb, F)
    max_min = np.zeros(nb, F)
    for j in range(8):  # "if (scale > max_scale) max_scale = scale", from +0
        max_scale = where(scales[:, j] > max_scale, scales[:, j], max_scale)
        max_min = where(mins[:, j] > max_min, mins[:, j], max_min)
    with np.errstate(all="ignore"):
        inv_scale = where(max_scale > 0, F(63) / max_scale, F(0))
        inv_min = where(max_min > 0, F(63) / max_min, F(0))
    # uint8_t ls = nearest_int(...) (modulo 256), then MIN(63, ls)
    ls = np.minimum(63, nearest_int(inv_scale[:, None] * scales) & 0xFF)
    lm = np.minimum(63, nearest_int(inv_min[:, None] * mins) & 0xFF)
    sc = np.zeros((nb, 12), np.int64)
    for j in range(8):
        if j < 4:
            sc[:, j] = ls[:, j]
            sc[:, j + 4] = lm[:, j]
        else:
            sc[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            sc[:, j - 4] |= (ls[:, j] >> 4) << 6
            sc[:, j] |= (lm[:, j] >> 4) << 6
    d16 = to_f16(max_scale / F(63))
    dmin16 = to_f16(max_min / F(63))
    d, dmin = from_f16(d16), from_f16(dmin16)
    for j in range(8):  # get_scale_min_k4(j, scales) gives back ls[j], lm[j] (6 bits each)
        if j < 4:
            s, m = sc[:, j] & 63, sc[:, j + 4] & 63
        else:
            s = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
            m = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
        dd = d * s.astype(F)
        dm = dmin * m.astype(F)
        xs = x[:, 32 * j: 32 * j + 32]
        with np.errstate(all="ignore"):
            l = np.clip(nearest_int((xs + dm[:, None]) / dd[:, None]), 0, 15)
        L[:, 32 * j: 32 * j + 32] = np.where((dd != 0)[:, None], l, L[:, 32 * j: 32 * j + 32])
    out = np.zeros((nb, 144), np.uint8)
    out[:, 0:2] = d16[:, None].view(np.uint8)
    out[:, 2:4] = dmin16[:, None].view(np.uint8)
    out[:, 4:16] = sc
    for k, j in enumerate(range(0, 256, 64)):
        out[:, 16 + 32 * k: 16 + 32 * k + 32] = L[:, j: j + 32] | (L[:, j + 32: j + 64] << 4)
    return out


# ---- Q6_K ----------------------------------------------------------------------------------

def make_qx_quants_rmse1(x, nmax):
    """make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL) on rows of x [B, n]."""
    B, n = x.shape
    mx = np.zeros(B, F)
    amax = np.zeros(B, F)
    for i in range(n):
        ax = np.abs(x[:, i])
        gt = ax > amax
        amax = where(gt, ax, amax)
        mx = where(gt, x[:, i], mx)
    zero = amax < GROUP_MAX_EPS
    w = x * x  # rmse_type 1: weights x^2 (one rounding, as C's x[i] * x[i])
    with np.errstate(all="ignore"):
        iscale = F(-nmax) / mx
        li = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1)
        L = li + nmax
        sumlx = np.zeros(B, F)
        suml2 = np.zeros(B, F)
        for i in range(n):
            l = li[:, i].astype(F)
            sumlx = sumlx + w[:, i] * x[:, i] * l
            suml2 = suml2 + w[:, i] * l * l
        scale = where(suml2 != 0, sumlx / suml2, F(0))
        best = scale * sumlx
        for step in range(-9, 10):
            if step == 0:
                continue
            iscale = -(F(nmax) + F(0.1) * F(step)) / mx
            li = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1)
            sumlx = np.zeros(B, F)
            suml2 = np.zeros(B, F)
            for i in range(n):
                l = li[:, i].astype(F)
                sumlx = sumlx + w[:, i] * x[:, i] * l
                suml2 = suml2 + w[:, i] * l * l
            take = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            L = np.where(take[:, None], li + nmax, L)
            scale = where(take, sumlx / suml2, scale)
            best = where(take, scale * sumlx, best)
    L = np.where(zero[:, None], 0, L)
    scale = where(zero, F(0), scale)
    return scale, L


def quantize_q6_k(x):
    """quantize_row_q6_K_ref on x [nb, 256] -> [nb, 210] uint8
    ({u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d})."""
    x = np.ascontiguousarray(x, dtype=F).reshape(-1, QK_K)
    nb = x.shape[0]
    scales, L = make_qx_quants_rmse1(x.reshape(nb * 16, 16), 32)
    scales = scales.reshape(nb, 16)
    L = L.reshape(nb, 256)
    max_scale = np.zeros(nb, F)
    max_abs = np.zeros(nb, F)
    for ib in range(16):
        a = np.abs(scales[:, ib])
        gt = a > max_abs
        max_abs = where(gt, a, max_abs)
        max_scale = where(gt, scales[:, ib], max_scale)
    zero = max_abs < GROUP_MAX_EPS
    with np.errstate(all="ignore"):
        iscale = F(-128) / max_scale
        d16 = to_f16(F(1) / iscale)
    # y[i].scales[ib] = MIN(127, nearest_int(...)): an int8 store
    with np.errstate(all="ignore"):
        sc = (np.minimum(127, nearest_int(iscale[:, None] * scales)) & 0xFF).astype(np.uint8)
    sc8 = sc.view(np.int8)
    d = from_f16(d16)
    for j in range(16):
        dd = d * sc8[:, j].astype(F)
        xs = x[:, 16 * j: 16 * j + 16]
        with np.errstate(all="ignore"):
            l = np.clip(nearest_int(xs / dd[:, None]), -32, 31) + 32
        L[:, 16 * j: 16 * j + 16] = np.where((dd != 0)[:, None], l, L[:, 16 * j: 16 * j + 16])
    out = np.zeros((nb, 210), np.uint8)
    for h, j in enumerate((0, 128)):
        q = [L[:, j + 32 * t: j + 32 * t + 32] for t in range(4)]
        out[:, 64 * h: 64 * h + 32] = (q[0] & 0xF) | ((q[2] & 0xF) << 4)
        out[:, 64 * h + 32: 64 * h + 64] = (q[1] & 0xF) | ((q[3] & 0xF) << 4)
        out[:, 128 + 32 * h: 128 + 32 * h + 32] = ((q[0] >> 4) | ((q[1] >> 4) << 2) |
                                                   ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6))
    out[:, 192:208] = sc
    out[:, 208:210] = d16[:, None].view(np.uint8)
    out[zero] = 0  # memset(&y[i], 0, ...); d = +0
    return out


QUANTIZERS = {"q4_k": quantize_q4_k, "q6_k": quantize_q6_k}


def quantize(t, name):
    """A [rows, cols] f32 matrix (cols % 256 == 0) -> [rows, cols / 256 * block bytes] uint8,
    the layout gguf-py's writer takes for raw_dtype."""
    q = QUANTIZERS[name](t.reshape(-1, QK_K))
    return q.reshape(t.shape[0], -1)


# ---- quant fixtures ------------------------------------------------------------------------

ROWS, COLS = 24, 512


def fixture_input():
    rng = np.random.default_rng(20261206)
    g = lambda: rng.standard_normal(COLS)  # noqa: E731
    rows = [g(), g() * 0.02, g() * 1e-3, g() * 50.0]
    rows.append(np.zeros(COLS))                                    # all zero
    r = g()
    r[32:64] = 0                                                   # a zero Q4_K sub-block
    r[256 + 16: 256 + 32] = 0                                      # a zero Q6_K group
    rows.append(r)
    r = np.zeros(COLS)
    r[256:] = g()[256:]                                            # a zero super-block
    rows.append(r)
    rows.append(np.full(COLS, 0.7))                                # constant
    rows.append(np.full(COLS, -0.3))                               # constant, negative
    r = g() * 0.1
    r[100] = 30.0                                                  # one outlier
    rows.append(r)
    r = g() * 0.1
    r[300] = -45.0                                                 # one negative outlier
    rows.append(r)
    rows.append(g() * 1e-6)                                        # tiny: f16-subnormal scales
    rows.append(g() * 1e-9)                                        # scales underflow f16 to 0
    rows.append(g() * 1e-20)                                       # below GROUP_MAX_EPS
    rows.append(g() * 1e4)                                         # huge
    rows.append(rng.uniform(-6e4, 6e4, COLS))                      # huge, near f16's max
    rows.append(-np.abs(g()))                                      # negative only
    rows.append(5.0 + 0.1 * g())                                   # positive, offset from 0
    rows.append(rng.uniform(-1, 1, COLS))
    rows.append(g() ** 3)                                          # heavy tails
    rows.append(np.round(g() * 8) / 8)                             # on a grid (ties)
    rows.append(rng.laplace(size=COLS))
    r = g()
    for k in range(COLS // 32):
        r[32 * k: 32 * k + 32] *= 10.0 ** (k % 8 - 4)              # sub-blocks 1e-4 .. 1e3
    rows.append(r)
    rows.append(np.linspace(-2.0, 3.0, COLS))                      # ramp
    x = np.stack(rows).astype(F)
    assert x.shape == (ROWS, COLS) and np.isfinite(x).all()
    return x


def write_quant():
    import gguf
    from gguf import GGMLQuantizationType as T
    x = fixture_input()
    QUANT_OUT.mkdir(parents=True, exist_ok=True)
    x.astype("<f4").tofile(QUANT_OUT / "input.f32")
    for name, t, bound in (("q4_k", T.Q4_K, 0.12), ("q6_k", T.Q6_K, 0.03)):
        q = quantize(x, name)
        q.tofile(QUANT_OUT / f"{name}.bin")
        back = gguf.quants.dequantize(q, t).astype(F)
        assert back.shape == x.shape
        back.astype("<f4").tofile(QUANT_OUT / f"{name}.deq.f32")
        # Round trip: the restated quantizer's bytes, read by gguf-py's dequantizer, give the
        # input back within the format's error on ordinary rows (relative RMSE per row).
        worst = 0.0
        for r in range(ROWS):
            a = x[r].astype(np.float64)
            rms = np.sqrt(np.mean(a * a))
            if rms == 0:
                assert not back[r].any(), (name, r)
                continue
            if rms < 1e-4:  # super-block scales underflow f16, as in ggml
                continue
            e = np.sqrt(np.mean((back[r] - a) ** 2)) / rms
            print(f"{name} row {r:2d}: relative rmse {e:.4f}")
            if r in (0, 1, 3, 16, 18, 19, 21):  # Gaussian, one-signed, uniform, cubed, Laplace
                worst = max(worst, e)
        assert worst < bound, (name, worst)
    (QUANT_OUT / "VERSIONS.txt").write_text(
        f"gguf {importlib.metadata.version('gguf')}\nnumpy {np.__version__}\n"
        "command (from repository root): python3 scripts/make_kquant_fixtures.py quant\n")
    print("wrote", QUANT_OUT.relative_to(ROOT).as_posix())


# ---- the 256-wide model --------------------------------------------------------------------

CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 256, "intermediate_size": 256, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 256,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "dtype": "float32",
}
# HF name -> (gguf name, type): llama.cpp's Q4_K_M choices for a one-layer model.
L0 = "model.layers.0."
TENSORS = [
    ("model.embed_tokens.weight", "token_embd.weight", "q4_k"),
    (L0 + "input_layernorm.weight", "blk.0.attn_norm.weight", "f32"),
    (L0 + "self_attn.q_proj.weight", "blk.0.attn_q.weight", "q4_k"),
    (L0 + "self_attn.k_proj.weight", "blk.0.attn_k.weight", "q4_k"),
    (L0 + "self_attn.v_proj.weight", "blk.0.attn_v.weight", "q6_k"),
    (L0 + "self_attn.o_proj.weight", "blk.0.attn_output.weight", "q4_k"),
    (L0 + "post_attention_layernorm.weight", "blk.0.ffn_norm.weight", "f32"),
    (L0 + "mlp.gate_proj.weight", "blk.0.ffn_gate.weight", "q4_k"),
    (L0 + "mlp.up_proj.weight", "blk.0.ffn_up.weight", "q4_k"),
    (L0 + "mlp.down_proj.weight", "blk.0.ffn_down.weight", "q6_k"),
    ("model.norm.weight", "output_norm.weight", "f32"),
    ("lm_head.weight", "output.weight", "q6_k"),
]


def hf_weights():
    """Seeded random weights, scaled so that the logits spread widely."""
    rng = np.random.default_rng(256)
    c = CONFIG
    h, i, v, hd = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["head_dim"]
    shapes = {"model.embed_tokens.weight": (v, h), "lm_head.weight": (v, h),
              L0 + "self_attn.q_proj.weight": (c["num_attention_heads"] * hd, h),
              L0 + "self_attn.k_proj.weight": (c["num_key_value_heads"] * hd, h),
              L0 + "self_attn.v_proj.weight": (c["num_key_value_heads"] * hd, h),
              L0 + "self_attn.o_proj.weight": (h, c["num_attention_heads"] * hd),
              L0 + "mlp.gate_proj.weight": (i, h), L0 + "mlp.up_proj.weight": (i, h),
              L0 + "mlp.down_proj.weight": (h, i)}
    out = {}
    for hf, _, _ in TENSORS:
        if hf.endswith("norm.weight"):
            out[hf] = (1.0 + 0.1 * rng.standard_normal(h)).astype(F)
        elif hf == "model.embed_tokens.weight":
            out[hf] = rng.standard_normal(shapes[hf]).astype(F)
        else:
            rows, cols = shapes[hf]
            out[hf] = (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(F)
    out["lm_head.weight"] *= F(4)  # wide logits
    # A bigram component: output row j leans towards the embedding of token perm[j], so the
    # embedding of the current token (the residual stream's main part) favours one successor
    # by a clear margin, while attention and MLP still move the argmax. Pure random weights put
    # the top two logits of some of the 32 greedy steps within 0.1% of the range, where int8
    # activations (the SIMD path) may flip them; with this, the prompt search below finds a path
    # with every gap over MARGIN.
    perm = rng.permutation(c["vocab_size"])
    out["lm_head.weight"] += F(0.1) * out["model.embed_tokens.weight"][perm]
    return out


def permute(w, n_head):  # convert_hf_to_gguf.py LlamaModel.permute
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_model(torch_python):
    import gguf
    from gguf import GGMLQuantizationType as T
    from safetensors.numpy import save_file
    c = CONFIG
    MODEL_OUT.mkdir(parents=True, exist_ok=True)
    path = MODEL_OUT / "model-q4_k_m.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("ohm-fixture-llama-kquant")
    w.add_block_count(c["num_hidden_layers"])
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c["num_key_value_heads"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_rope_dimension_count(c["head_dim"])
    w.add_key_length(c["head_dim"])
    w.add_value_length(c["head_dim"])
    w.add_vocab_size(c["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_bos_token_id(c["bos_token_id"])
    w.add_eos_token_id(c["eos_token_id"])
    w.add_pad_token_id(c["pad_token_id"])
    weights = hf_weights()
    types = {"q4_k": T.Q4_K, "q6_k": T.Q6_K}
    for hf, name, typ in TENSORS:
        t = weights[hf]
        if hf.endswith("q_proj.weight"):
            t = permute(t, c["num_attention_heads"])
        if hf.endswith("k_proj.weight"):
            t = permute(t, c["num_key_value_heads"])
        if typ == "f32":
            w.add_tensor(name, t)
        else:
            q = quantize(t, typ)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=types[typ])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")

    # The file's weights as an HF checkpoint: gguf-py's dequantization, permutation undone.
    r = gguf.GGUFReader(str(path))
    deq = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(
        [int(d) for d in reversed(t.shape)]).astype(F) for t in r.tensors}
    sd = {}
    for hf, name, _ in TENSORS:
        a = deq[name]
        if hf.endswith("q_proj.weight"):
            a = unpermute(a, c["num_attention_heads"])
        if hf.endswith("k_proj.weight"):
            a = unpermute(a, c["num_key_value_heads"])
        sd[hf] = np.ascontiguousarray(a)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(CONFIG, indent=2))
        save_file(sd, str(Path(d) / "model.safetensors"), metadata={"format": "pt"})
        ref = MODEL_OUT / "reference-q4_k_m.safetensors"
        subprocess.run([torch_python, __file__, "_reference", d, str(ref)], check=True)
    (MODEL_OUT / "VERSIONS.txt").write_text(
        f"gguf {importlib.metadata.version('gguf')}\nnumpy {np.__version__}\n"
        f"reference: {Path(str(ref) + '.versions').read_text()}"
        "command (from repository root): python3 scripts/make_kquant_fixtures.py model\n")
    Path(str(ref) + ".versions").unlink()
    print("wrote", ref.relative_to(ROOT))


MARGIN = 0.02


def reference(ckpt, out_path):
    """(torch) transformers' logits and greedy tokens for the checkpoint in ckpt."""
    import torch
    import transformers
    from safetensors.numpy import save_file
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    rng = np.random.default_rng(7)
    out = {}
    with torch.no_grad():
        for n in (1, 7, 64):
            ids = rng.integers(3, CONFIG["vocab_size"], size=(1, n)).astype(np.int64)
            out[f"prompt_len{n}.input_ids"] = ids
            out[f"prompt_len{n}.logits"] = model(torch.from_numpy(ids)).logits.numpy().astype(F)
        # The greedy prompt: the first (seeded) 5-token prompt whose 32 argmax steps never
        # come closer than MARGIN of the logit range between the top two tokens, so that the
        # SIMD path's int8-activation rounding (well below that) cannot flip a token.
        for attempt in range(200):
            prompt = torch.from_numpy(
                rng.integers(3, CONFIG["vocab_size"], size=(1, 5)).astype(np.int64))
            ids, margins = prompt, []
            for _ in range(32):  # plain argmax steps, as ohm::greedy_generate
                logits = model(ids).logits[0, -1]
                top = torch.topk(logits, 2).values
                margins.append(float((top[0] - top[1]) / (logits.max() - logits.min())))
                ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
            if min(margins) >= MARGIN:
                break
        else:
            raise SystemExit("no greedy prompt with a clear margin")
        out["greedy.input_ids"] = prompt.numpy().copy()
        out["greedy.output_ids"] = ids.numpy().astype(np.int64)
        # smallest top-1 / top-2 gap along the greedy path, as a fraction of the logit range
        out["greedy.min_margin"] = np.array([min(margins)], dtype=F)
    print(f"greedy prompt after {attempt + 1} tries, min margin {min(margins):.4f} of the range")
    save_file(out, out_path)
    Path(out_path).chmod(0o644)
    Path(out_path + ".versions").write_text(
        f"torch {torch.__version__} transformers {transformers.__version__}\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "_reference":
        return reference(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="*", choices=["quant", "model"], default=["quant", "model"])
    ap.add_argument("--torch-python", default=sys.executable,
                    help="a python with torch and transformers for the reference logits")
    args = ap.parse_args()
    if "quant" in args.what:
        write_quant()
    if "model" in args.what:
        write_model(args.torch_python)


if __name__ == "__main__":
    main()
