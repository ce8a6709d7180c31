#!/usr/bin/env python3
"""Writes models/ohm-demo as a GGUF file the way llama.cpp's convert_hf_to_gguf.py lays out a
LLaMA (Q/K rows permuted for its rotary layout, norms F32, matrices F16, Q8_0 or Q4_0) with the
byte-level BPE vocabulary as tokenizer.ggml.model "gpt2" / pre "gpt-2" (the demo's pre-tokenizer
is ByteLevel with GPT-2's regex) and no BOS (the demo tokenizer adds none). For side-by-side
runs (`ohm perplexity` vs llama.cpp's `llama-perplexity` on the same file and text); not used
by CI. Needs numpy, torch (bf16 weights), safetensors, gguf (pip).

Usage: python3 scripts/make_demo_gguf.py OUT.gguf [--type f16|q8_0|q4_0]
"""
import argparse
import json
from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "models/ohm-demo"


def permute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--type", choices=["f16", "q8_0", "q4_0"], default="f16")
    a = ap.parse_args()
    cfg = json.loads((DEMO / "config.json").read_text())
    tj = json.loads((DEMO / "tokenizer.json").read_text())
    nh, nkv, L = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"]
    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("ohm-demo")
    w.add_block_count(L)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_file_type({"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                     "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[a.type])
    w.add_vocab_size(cfg["vocab_size"])
    # vocabulary
    vocab = tj["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    special = {t["id"] for t in tj["added_tokens"] if t["special"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))])
    merges = [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]]
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_add_bos_token(False)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, L)
    for name, t in load_file(str(DEMO / "model.safetensors")).items():
        t = t.to(torch.float32).numpy()
        if name.endswith("q_proj.weight"):
            t = permute(t, nh, nh)
        if name.endswith("k_proj.weight"):
            t = permute(t, nh, nkv)
        g = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if t.ndim == 1:
            w.add_tensor(g, t)
        elif a.type == "f16":
            w.add_tensor(g, t.astype(np.float16))
        else:
            qt = gguf.GGMLQuantizationType.Q8_0 if a.type == "q8_0" else gguf.GGMLQuantizationType.Q4_0
            q = gguf.quants.quantize(t, qt)
            w.add_tensor(g, q, raw_shape=q.shape, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", a.out)


if __name__ == "__main__":
    main()
