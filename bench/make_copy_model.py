#!/usr/bin/env python3
"""Writes a LLaMA checkpoint of the TinyLlama-1.1B shape whose greedy continuation copies text
from its context: an induction circuit built by hand in two layers, the other 20 layers and
every MLP zero (identity blocks that still cost their full weight traffic). It is the input of
the prompt-lookup benchmark (docs/performance.md, "Speculative decoding"): a real model copies
when asked to repeat or edit a text, but this machine has no real 1.1B model, and random
weights do not copy.

    python3 bench/make_copy_model.py OUT_DIR --tokenizer-from DIR
    ohm quantize OUT_DIR copy-q4_0.gguf --type q4_0

The circuit (Olsson et al., "In-context learning and induction heads", 2022), written for RoPE:
  residual dims  [0, 64)          e(t): the token's random sign vector / 8 (unit norm)
                 64               1: a constant, for position-only attention
                 [128 + 64 (b-1), +64)  e(t[i-b]) for b = 1..6, written by layer 0
                 [576, 640)       e(t[j]) written by layer 1: the token that followed the
                                  earlier occurrence j-6..j-1 of the current six tokens
  layer 0: in each KV group g (q heads 8g .. 8g+5 share KV head g) the key is a constant vector
    on the fast rotary pairs, rotated one step (k = R(theta) u), so q = R(-(b-1) theta) u peaks
    at j = i - b: sum_p |u_p|^2 cos((j - i + b) theta_p), the slowest pairs making far positions
    lose. The value is the 16-dim slice g of e(t[j]).
  layer 1: in each group the query is (e(t[i]), ..., e(t[i-5])) and the key (e(t[j-1]), ...,
    e(t[j-6])) on the rotary pairs that rope_theta = 1e20 leaves still (a rotation below 0.1 rad
    over 8k positions), 8 dims each, so the score grows with the number of the six tokens that
    match; the value e(t[j]) goes to [576, 640), which the lm_head reads (lm_head[t] = 5 e(t)).
Every q/k/v/o row has one non-zero weight, so Q4_0 and Q8_0 store those matrices exactly.
"""
import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

H, HD, NQ, NKV, L, FFN, V = 2048, 64, 32, 4, 22, 5632, 32000
THETA = 1e20
HALF = HD // 2
TOK, CONST, BACK, OUT = 0, 64, 128, 576
NB = 6  # tokens of context the copy matches
E = 64  # embedding dims


def rope_thetas():
    return np.array([THETA ** (-2.0 * p / HD) for p in range(HALF)])


def position_margin(weights, thetas, n_max, target):
    """f(n) = sum_p w_p cos(n theta_p) at n = 0 (the target offset) minus its largest value over
    every other offset a causal query can see: n <= target, n != 0, down to -n_max."""
    n = np.arange(-n_max, target + 1)
    f = (weights[:, None] * np.cos(np.outer(thetas, n))).sum(0)
    return f[n == 0][0] - f[n != 0].max()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--tokenizer-from", required=True, help="a checkpoint directory with a 32000-token llama tokenizer.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--context", type=int, default=2048, help="positions the margins are computed over")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    th = rope_thetas()

    # token vectors
    e = rng.choice([-1.0, 1.0], size=(V, E)) / math.sqrt(E)  # every 16 dims hold |.|^2 = 1/4

    # layer 0: the fast and the slow rotary pairs; weights chosen so neighbours and far positions lose
    pos_pairs = [0, 1, 2, 3, 4, 5]
    w = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    ms = [position_margin(w, th[pos_pairs], a.context, back) for back in range(1, NB + 1)]
    margin = min(ms)
    # the pre-attention RMSNorm of [e, 1] (|x|^2 = 2) scales by sqrt(H / 2)
    x0 = math.sqrt(H / 2.0)
    s = 40.0 * 8.0 / margin  # 40 logits of margin after the 1/sqrt(64) scale
    print(f"layer 0: position margin {margin:.3f}, |u|^2 scale {s:.1f}")

    t = {}
    t["model.embed_tokens.weight"] = np.zeros((V, H), np.float32)
    t["model.embed_tokens.weight"][:, TOK:TOK + E] = e
    t["model.embed_tokens.weight"][:, CONST] = 1.0
    t["model.norm.weight"] = np.ones(H, np.float32)

    def zeros_layer(i):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = np.ones(H, np.float32)
        t[p + "post_attention_layernorm.weight"] = np.ones(H, np.float32)
        t[p + "self_attn.q_proj.weight"] = np.zeros((NQ * HD, H), np.float32)
        t[p + "self_attn.k_proj.weight"] = np.zeros((NKV * HD, H), np.float32)
        t[p + "self_attn.v_proj.weight"] = np.zeros((NKV * HD, H), np.float32)
        t[p + "self_attn.o_proj.weight"] = np.zeros((H, NQ * HD), np.float32)
        t[p + "mlp.gate_proj.weight"] = np.zeros((FFN, H), np.float32)
        t[p + "mlp.up_proj.weight"] = np.zeros((FFN, H), np.float32)
        t[p + "mlp.down_proj.weight"] = np.zeros((H, FFN), np.float32)
        return p

    # HF rotate_half: pair p is (dim p, dim p + 32) of a head, rotated by pos * theta_p
    for i in range(L):
        p = zeros_layer(i)
        if i == 0:
            q, k, v, o = (t[p + "self_attn." + n + "_proj.weight"] for n in "qkvo")
            for g in range(NKV):
                for pi, wp in zip(pos_pairs, w):
                    amp = math.sqrt(s * wp) / x0  # |u_p| after the norm's scale
                    c, sn = math.cos(th[pi]), math.sin(th[pi])
                    # key: R(theta) u with u = (amp, 0)
                    k[g * HD + pi, CONST] = amp * c
                    k[g * HD + pi + HALF, CONST] = amp * sn
                    # b back (q head 8g + b - 1): R(-(b - 1) theta) u
                    for b in range(1, NB + 1):
                        ang = -(b - 1) * th[pi]
                        q[(8 * g + b - 1) * HD + pi, CONST] = amp * math.cos(ang)
                        q[(8 * g + b - 1) * HD + pi + HALF, CONST] = amp * math.sin(ang)
                for d in range(16):  # value: slice g of e(t[j]), undoing the norm's scale
                    v[g * HD + d, TOK + 16 * g + d] = 1.0 / x0
                    for b in range(1, NB + 1):
                        o[BACK + 64 * (b - 1) + 16 * g + d, (8 * g + b - 1) * HD + d] = 1.0
        elif i == 1:
            q, k, v, o = (t[p + "self_attn." + n + "_proj.weight"] for n in "qkvo")
            still = [pp for pp in range(HALF) if th[pp] * a.context * 4 < 0.1]
            dims = [pp for pp in still] + [pp + HALF for pp in still]
            part = len(dims) // NB
            # after layer 0 the residual is [e(t), 1, e(t-1) .. e(t-6)]: |x|^2 = 2 + NB
            x1 = math.sqrt(H / (2.0 + NB))
            # q . k = S sum_b (the part's e . e'): S / 8 per part where the token matches
            # (8 of 64 dims: 1/8 of |e|^2), so 40 logits more per matching token
            S = 40.0 * 8.0 * 8.0
            beta = math.sqrt(S) / x1
            srcs = [TOK] + [BACK + 64 * b for b in range(NB - 1)]
            keys = [BACK + 64 * b for b in range(NB)]
            for g in range(NKV):
                sel = [(16 * g + 5 * j) % E for j in range(part)]  # group g's e dims
                for n, (qsrc, ksrc) in enumerate(zip(srcs, keys)):
                    for j, dim in enumerate(dims[n * part:(n + 1) * part]):
                        q[(8 * g) * HD + dim, qsrc + sel[j]] = beta
                        k[g * HD + dim, ksrc + sel[j]] = beta
                for d in range(16):
                    v[g * HD + d, TOK + 16 * g + d] = 1.0 / x1
                    o[OUT + 16 * g + d, (8 * g) * HD + d] = 1.0
            print(f"layer 1: {len(still)} still rotary pairs of {HALF}, {part} dims per token of context")
    lm = np.zeros((V, H), np.float32)
    lm[:, OUT:OUT + E] = 5.0 * e
    t["lm_head.weight"] = lm

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({n: x.astype(np.float16) for n, x in t.items()}, str(out / "model.safetensors"))
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": H, "intermediate_size": FFN, "num_attention_heads": NQ,
        "num_key_value_heads": NKV, "num_hidden_layers": L, "vocab_size": V,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": THETA,
        "tie_word_embeddings": False, "torch_dtype": "float16", "bos_token_id": 1, "eos_token_id": 2,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    src = Path(a.tokenizer_from)
    for n in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / n).exists():
            shutil.copy(src / n, out / n)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
