#!/usr/bin/env python3
"""Reference fixtures for RoPE scaling variants and Falcon ALiBi (tiny random models, f32).

CPU only, deterministic.  Not run by CI; its outputs are committed under
tests/fixtures/rope/.  Re-running it deletes and rewrites that directory.  Reuses the helpers of
make_fixtures.py (same sizes, weight init and greedy margin checks).

Usage (from the repository root):
    nice -n 10 python3 scripts/make_rope_fixtures.py [--out tests/fixtures/rope]

Each variant uses max_position_embeddings / original_max_position_embeddings far below the
64-token prompt, so the scaled regime is what is compared:
    llama_linear    rope_type linear, factor 2
    llama_dynamic   rope_type dynamic (NTK), factor 2, max_position_embeddings 24: prompts of 64
                    tokens and a greedy run that crosses 24 during decoding (inv_freq recomputed
                    per step as the sequence grows)
    llama_llama3    rope_type llama3, factor 8, low/high_freq_factor 1/4, original 16
    llama_yarn      rope_type yarn, factor 4, original 16 (attention_factor from mscale)
    qwen2_yarn_nt   rope_type yarn, truncate false, explicit attention_factor, beta_fast 16
    phi3_longrope   Phi-3 longrope (short/long factors), original 16, max_position_embeddings 64
    falcon_alibi    Falcon with alibi=True (falcon-rw layout: no parallel attn, biases), made with
                    attn_implementation="sdpa", transformers' default for Falcon: its eager
                    path adds the ALiBi bias twice (once in the scores, once more through the
                    causal mask it folds ALiBi into), SDPA once, as the original model does

Layout per variant: config.json, generation_config.json, model.safetensors, reference.safetensors
(prompt_len{1,7,64}.input_ids/.logits, batch.* left-padded, greedy.input_ids/.output_ids,
greedy_long.input_ids/.output_ids), reference.json; phi3_longrope also model-f16.gguf (the
converter's layout, with rope_factors_{long,short}.weight).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (sets the thread / determinism environment)
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (  # noqa: E402
    FalconConfig,
    FalconForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

V, H, L, NH, KV, HD, I = mf.VOCAB, mf.HIDDEN, mf.LAYERS, mf.HEADS, mf.KV_HEADS, mf.HEAD_DIM, mf.INTER
TOK = mf.COMMON_TOK
LONG_PROMPT = 20  # greedy_long: 20-token prompt + 32 new tokens (crosses 24 and 32)


def llama(rope, max_pos):
    return LlamaConfig(vocab_size=V, hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=NH,
                       num_key_value_heads=KV, head_dim=HD, max_position_embeddings=max_pos,
                       tie_word_embeddings=False, rope_parameters=dict(rope, rope_theta=10000.0), **TOK)


HALF = HD // 2
SHORT = [1.0 + 0.05 * i for i in range(HALF)]
LONG = [1.0 + 0.9 * i for i in range(HALF)]

VARIANTS = [
    ("llama_linear", LlamaForCausalLM, lambda: llama({"rope_type": "linear", "factor": 2.0}, 256)),
    ("llama_dynamic", LlamaForCausalLM, lambda: llama({"rope_type": "dynamic", "factor": 2.0}, 24)),
    ("llama_llama3", LlamaForCausalLM, lambda: llama(
        {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
         "original_max_position_embeddings": 16}, 256)),
    ("llama_yarn", LlamaForCausalLM, lambda: llama(
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}, 64)),
    ("qwen2_yarn_nt", Qwen2ForCausalLM, lambda: Qwen2Config(
        vocab_size=V, hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=NH,
        num_key_value_heads=KV, max_position_embeddings=64, use_sliding_window=False, tie_word_embeddings=False,
        rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                         "truncate": False, "attention_factor": 1.25, "beta_fast": 16.0, "beta_slow": 2.0,
                         "rope_theta": 10000.0}, **TOK)),
    ("phi3_longrope", Phi3ForCausalLM, lambda: Phi3Config(
        vocab_size=V, hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=NH,
        num_key_value_heads=KV, max_position_embeddings=64, original_max_position_embeddings=16,
        sliding_window=None, tie_word_embeddings=False,
        rope_parameters={"rope_type": "longrope", "short_factor": SHORT, "long_factor": LONG,
                         "rope_theta": 10000.0}, **TOK)),
    ("falcon_alibi", FalconForCausalLM, lambda: FalconConfig(
        vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=NH, new_decoder_architecture=False,
        multi_query=False, parallel_attn=False, bias=True, alibi=True, ffn_hidden_size=I,
        max_position_embeddings=256, tie_word_embeddings=True, **TOK)),
]


@torch.no_grad()
def greedy_n(model, prompt, n):
    gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False, num_beams=1,
                         max_new_tokens=n, min_new_tokens=n, pad_token_id=mf.PAD_ID, eos_token_id=mf.EOS_ID,
                         top_k=None, top_p=None, temperature=None)
    return gen


@torch.no_grad()
def step_margins(model, prompt, n):
    """Greedy by hand with the KV cache, recording top1-top2 margins of each step's logits.
    Phi-3 as Phi3ForCausalLM.prepare_inputs_for_generation: the first time the sequence reaches
    original_max_position_embeddings + 1 with a cache of <= original tokens, the cache is dropped
    and the whole sequence recomputed (switching from short to long RoPE factors)."""
    orig = getattr(model.config, "original_max_position_embeddings", None) if isinstance(
        model, Phi3ForCausalLM) else None
    out = model(input_ids=prompt, use_cache=True)
    past, ids, margins = out.past_key_values, prompt, []
    for _ in range(n):
        lg = out.logits[0, -1].float()
        top2 = torch.topk(lg, 2)
        margins.append(float(top2.values[0] - top2.values[1]))
        nxt = top2.indices[:1].view(1, 1)
        ids = torch.cat([ids, nxt], dim=1)
        if orig is not None and ids.shape[1] >= orig + 1 and past.get_seq_length() <= orig:
            out = model(input_ids=ids, use_cache=True)
        else:
            out = model(input_ids=nxt, past_key_values=past, use_cache=True,
                        position_ids=torch.tensor([[ids.shape[1] - 1]]))
        past = out.past_key_values
    return ids, margins


ATTN = {"falcon_alibi": "sdpa"}  # see the docstring; everything else eager


def fresh(path, cls):
    m = cls.from_pretrained(path, dtype=torch.float32, attn_implementation=ATTN.get(path.name, "eager"))
    return m.eval()


@torch.no_grad()
def build(out: Path, name, cls, cfg_fn, prompts, b_ids, b_mask, b_rows):
    g = torch.Generator().manual_seed(4321)
    long_prompt = torch.randint(3, V, (1, LONG_PROMPT), generator=g, dtype=torch.long)
    last = None
    for attempt in range(mf.MAX_SEED_TRIES):
        seed = mf.MODEL_SEED_BASE + attempt
        torch.manual_seed(seed)
        cfg = cfg_fn()
        cfg._attn_implementation = ATTN.get(name, "eager")
        model = cls(cfg).eval()
        mf.reinit(model, gemma_norm=False)
        d = out / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        model.save_pretrained(d, safe_serialization=True)
        tens, js = {}, {"fixture": name, "class": cls.__name__, "model_seed": seed,
                        "rope_parameters": getattr(model.config, "rope_parameters", None),
                        "alibi": getattr(model.config, "alibi", None),
                        "attn_implementation": ATTN.get(name, "eager"),
                        "note": "every forward below runs on a freshly loaded model: transformers' dynamic RoPE "
                                "keeps the longest length seen across calls"}
        for n, ids in prompts.items():
            lg = mf.logits_of(fresh(d, cls), ids)
            tens[f"prompt_len{n}.input_ids"], tens[f"prompt_len{n}.logits"] = ids, lg
        m = fresh(d, cls)
        pos = m._prepare_position_ids_for_generation(b_ids, {"attention_mask": b_mask})
        tens.update({"batch.input_ids": b_ids, "batch.attention_mask": b_mask, "batch.position_ids": pos,
                     "batch.logits": mf.logits_of(m, b_ids, attention_mask=b_mask, position_ids=pos)})
        ok = True
        for key, prompt in (("greedy", prompts[mf.GREEDY_PROMPT_LEN]), ("greedy_long", long_prompt)):
            gen = greedy_n(fresh(d, cls), prompt, mf.GREEDY_NEW)
            ids, margins = step_margins(fresh(d, cls), prompt, mf.GREEDY_NEW)
            if not torch.equal(ids, gen):
                ok, last = False, f"seed {seed}: {key} manual greedy != generate()"
            if min(margins) <= mf.MIN_MARGIN:
                ok, last = False, f"seed {seed}: {key} min margin {min(margins):.3g}"
            tens[f"{key}.input_ids"], tens[f"{key}.output_ids"] = prompt, gen
            js[f"{key}.output_ids"] = mf.ids_list(gen)
            js[f"{key}.min_margin"] = min(margins)
        if not ok:
            print(f"  [{name}] rejected {last}", flush=True)
            continue
        for k, v in list(tens.items()):
            v = v.detach().clone().contiguous()
            tens[k] = v.to(torch.int64) if not v.is_floating_point() else v.to(torch.float32)
        save_file(tens, str(d / "reference.safetensors"), metadata={"format": "pt"})
        mf.write_json(d / "reference.json", js)
        return seed, js
    raise RuntimeError(f"{name}: no seed satisfied the checks; last: {last}")


def write_phi3_longrope_gguf(out: Path):
    """phi3_longrope as convert_hf_to_gguf's Phi3MiniModel writes it (F16): the usual phi3 keys,
    rope_factors_{long,short}.weight (F32) and phi3.rope.scaling.attn_factor."""
    import math

    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    import json
    d = out / "phi3_longrope"
    cfg = json.loads((d / "config.json").read_text())
    rope = cfg["rope_parameters"]
    n_layer, nh = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    arch = gguf.MODEL_ARCH.PHI3
    tmap = gguf.get_tensor_name_map(arch, n_layer)
    w = gguf.GGUFWriter(str(d / "model-f16.gguf"), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name("ohm-fixture-phi3_longrope")
    orig = cfg.get("original_max_position_embeddings") or rope["original_max_position_embeddings"]
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_rope_scaling_orig_ctx_len(orig)
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(n_layer)
    w.add_head_count(nh)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_dimension_count(cfg["hidden_size"] // nh)
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_sliding_window(cfg.get("sliding_window") or 0)
    scale = cfg["max_position_embeddings"] / orig
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1.0 else 1.0)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    for name, t in load_file(str(d / "model.safetensors")).items():
        gname = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if gname is None:
            raise SystemExit(f"cannot map {name}")
        t = t.astype(np.float32)
        w.add_tensor(gname, t if t.ndim <= 1 or gname.endswith("_norm.weight") else t.astype(np.float16))
    w.add_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FACTORS_LONG] + ".weight",
                 np.array(rope["long_factor"], dtype=np.float32))
    w.add_tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT] + ".weight",
                 np.array(rope["short_factor"], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", d / "model-f16.gguf", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/rope")
    ap.add_argument("--only", nargs="*", help="rebuild only these variants (keeps the others)")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists() and not args.only:
        if any(out.iterdir()) and not (out / "VERSIONS.txt").exists():
            sys.exit(f"refusing to delete {out}: not empty and not a previous output (no VERSIONS.txt)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    prompts, b_ids, b_mask, b_rows = mf.make_prompts()
    for name, cls, cfg_fn in VARIANTS:
        if args.only and name not in args.only:
            continue
        t = time.time()
        seed, js = build(out, name, cls, cfg_fn, prompts, b_ids, b_mask, b_rows)
        print(f"{name:14s} seed={seed} margins greedy={js['greedy.min_margin']:.4f} "
              f"long={js['greedy_long.min_margin']:.4f} ({time.time() - t:.1f}s)", flush=True)
    if not args.only or "phi3_longrope" in args.only:
        write_phi3_longrope_gguf(out)
    record = (f"torch {torch.__version__}\ntransformers {transformers.__version__}\n"
              f"gguf {importlib.metadata.version('gguf')}\n"
              f"command (from repository root): nice -n 10 python3 {' '.join(sys.argv)}\n")
    versions = out / "VERSIONS.txt"
    if args.only and versions.exists():
        # a partial rebuild keeps the record of every earlier run and adds its own
        with versions.open("a") as f:
            f.write(f"\nrerun of {', '.join(args.only)}:\n" + record)
    else:
        versions.write_text(record)


if __name__ == "__main__":
    main()
