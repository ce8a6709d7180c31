#!/usr/bin/env python3
"""Differential test: ohm's config.json + safetensors loading and forward pass against
transformers (AutoModelForCausalLM.from_pretrained, eager attention) on generated checkpoints.

Each case is drawn from a seed: an architecture (llama, mistral, mixtral, qwen2, qwen3,
qwen3_moe, gemma, gemma2, gemma3_text, phi3, falcon, gpt2), small random shapes (hidden size,
heads, GQA/MQA kv heads, head_dim, 1-3 layers, vocab), the stored dtype (f32/f16/bf16), one file
or a sharded index with random split points, tie_word_embeddings, the RoPE scaling variants the
architecture supports (linear, dynamic, llama3, yarn, longrope; legacy `rope_scaling` or v5
`rope_parameters`), sliding windows, MoE top-k, soft-capping ... and a random prompt. About one
case in four is then broken (a missing / misshapen / non-float tensor, a missing or invalid
config key, an index naming a missing shard, heads not dividing hidden, ...).

Semantics compared: transformers loads the files with dtype=torch.float32 (f16/bf16 weights are
upcast exactly) and computes in f32 -- what ohm does whatever the stored dtype
(docs/inference.md, "Numerics"). A case agrees when
  * both load it and max|logit diff| <= 1e-4 * max(1, max|transformers logit|) over every
    prompt position (absolute 1e-4 for logits of order 1; f32 rounding grows with the logits'
    scale, so large logits get the same relative bar), or
  * both refuse it, and ohm's message names the file, key or tensor at fault.
transformers "refuses" when from_pretrained raises, when it reports missing or mismatched
tensors (it would fill them with random values), or when the forward pass raises.

ohm runs as tests/diff/model_logits.cpp (`model_diff_logits --batch FILE.jsonl`, one process per
batch of checkpoints).

  model_diff.py --logits BIN --fixtures DIR         # CI: the committed sample, no torch needed
  model_diff.py --logits BIN [--count N] [--seed S] # N generated cases (needs torch)
  model_diff.py --logits BIN --soak N               # N cases from a random seed; a minimal
                                                    # reproducer (config + what differed) for
                                                    # each mismatch
Exit codes: 0 no mismatch, 1 mismatches, 77 torch/transformers missing (generated modes).
"""
import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time

from difftest import ROOT, run_batch  # tests/diff/difftest.py

TOL = 1e-4
ARCHS = ["llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "gemma2",
         "gemma3_text", "phi3", "falcon", "gpt2"]
HF_CLASS = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
            "mixtral": "MixtralForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
            "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
            "gemma3_text": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM",
            "falcon": "FalconForCausalLM", "gpt2": "GPT2LMHeadModel"}
DTYPES = ["float32", "float16", "bfloat16"]
W_STD, B_STD, NORM_NOISE = 0.3, 0.05, 0.1
GEMMA_NORM = {"gemma", "gemma2", "gemma3_text"}  # RMSNorm scales by (1 + w)
BREAKS = ["missing_tensor", "wrong_shape", "int_dtype", "drop_config_key", "string_config_key",
          "negative_config_key", "kv_not_dividing", "heads_not_dividing", "unknown_rope_type",
          "missing_shard", "index_wrong_shard", "truncated_shard", "unknown_model_type",
          "prompt_past_vocab", "bad_json", "f64_dtype"]


# ------------------------------------------------------------------ the generator (no torch)
def pick(r, *xs):
    return r.choice(xs)


def rope_variant(r, arch, cfg, head_dim):
    """A rope_scaling dict for the architecture, or None."""
    choices = {"llama": ["linear", "dynamic", "llama3", "yarn"],
               "mistral": ["linear", "dynamic", "llama3", "yarn"],
               "mixtral": ["linear", "dynamic", "yarn"], "qwen2": ["linear", "dynamic", "yarn"],
               "qwen3": ["linear", "dynamic", "yarn", "llama3"], "qwen3_moe": ["linear", "yarn"],
               "gemma": ["linear", "dynamic"], "gemma2": [], "gemma3_text": ["linear"],
               "phi3": ["longrope"], "falcon": ["linear", "dynamic"], "gpt2": []}[arch]
    if not choices or r.random() < 0.4:
        return None
    t = r.choice(choices)
    s = {"rope_type": t}
    if t in ("linear", "dynamic"):
        s["factor"] = pick(r, 2.0, 4.0, 0.5, 8.0)
    elif t == "llama3":
        s.update(factor=pick(r, 2.0, 8.0, 32.0), low_freq_factor=pick(r, 1.0, 2.0),
                 high_freq_factor=pick(r, 4.0, 8.0),
                 original_max_position_embeddings=pick(r, 4, 8, 16, 64))
    elif t == "yarn":
        s["factor"] = pick(r, 2.0, 4.0, 16.0)
        if r.random() < 0.7:
            s["original_max_position_embeddings"] = pick(r, 4, 8, 16, 32)
        if r.random() < 0.3:
            s["beta_fast"], s["beta_slow"] = pick(r, 32.0, 16.0), pick(r, 1.0, 2.0)
        if r.random() < 0.2:
            s["attention_factor"] = pick(r, 0.8, 1.2)
        elif r.random() < 0.2:
            s["mscale"], s["mscale_all_dim"] = pick(r, 1.0, 0.707), pick(r, 1.0, 0.5)
        if r.random() < 0.2:
            s["truncate"] = False
    elif t == "longrope":
        half = int(head_dim * cfg.get("partial_rotary_factor", 1.0)) // 2
        s["short_factor"] = [round(1.0 + r.random() * 0.5, 3) for _ in range(half)]
        s["long_factor"] = [round(1.0 + r.random() * 8.0, 3) for _ in range(half)]
    # The older key `type`. Not for Gemma 3: transformers 5.24 drops a legacy `type` there
    # (Gemma3TextConfig updates {"rope_type": "default"} with rope_scaling, so rope_type stays
    # default and the scaling is ignored), while ohm honours it as transformers 4 did.
    if r.random() < 0.3 and arch != "gemma3_text":
        s["type"] = s.pop("rope_type")
    return s


def gen_config(r, arch):
    """A config.json dict for `arch` with small random shapes."""
    vocab = r.randint(16, 80)
    layers = r.randint(1, 3)
    heads = pick(r, 1, 2, 3, 4)
    kv = r.choice([d for d in range(1, heads + 1) if heads % d == 0])
    head_dim = pick(r, 4, 6, 8, 12, 16)
    explicit_hd = arch in ("llama", "mistral", "mixtral", "qwen3", "qwen3_moe", "gemma", "gemma2",
                           "gemma3_text") and r.random() < 0.6
    hidden = heads * head_dim if not explicit_hd else pick(r, 8, 12, 16, 24, 32)
    max_pos = pick(r, 8, 16, 64, 128)
    c = {"model_type": arch, "architectures": [HF_CLASS[arch]]}
    if r.random() < 0.1:
        del c["architectures"]
    bos, eos = r.randint(0, vocab - 1), r.randint(0, vocab - 1)
    if arch == "gpt2":
        c.update(vocab_size=vocab, n_embd=hidden, n_head=heads, n_layer=layers,
                 n_positions=pick(r, 24, 32, 64), bos_token_id=bos, eos_token_id=eos,
                 layer_norm_epsilon=pick(r, 1e-5, 1e-6),
                 activation_function=pick(r, "gelu_new", "gelu", "relu", "gelu_pytorch_tanh"),
                 tie_word_embeddings=r.random() < 0.7)
        if r.random() < 0.5:
            c["n_inner"] = r.randint(8, 48)
        if r.random() < 0.3:
            c["scale_attn_by_inverse_layer_idx"] = True
        if r.random() < 0.2:
            c["scale_attn_weights"] = False
        if r.random() < 0.2:
            c["reorder_and_upcast_attn"] = True
        return c
    if arch == "falcon":
        nda = r.random() < 0.5
        c.update(vocab_size=vocab, hidden_size=hidden, num_attention_heads=heads,
                 num_hidden_layers=layers, new_decoder_architecture=nda,
                 layer_norm_epsilon=pick(r, 1e-5, 1e-3), bias=r.random() < 0.3,
                 parallel_attn=nda or r.random() < 0.7, max_position_embeddings=max_pos,
                 rope_theta=pick(r, 10000.0, 500.0), bos_token_id=bos, eos_token_id=eos,
                 tie_word_embeddings=r.random() < 0.7)
        if nda:
            c["num_kv_heads"] = kv
            if r.random() < 0.3:
                c["num_ln_in_parallel_attn"] = pick(r, 1, 2)
        else:
            c["multi_query"] = r.random() < 0.6
        if r.random() < 0.5:
            c["ffn_hidden_size"] = r.randint(8, 48)
        rs = rope_variant(r, arch, c, hidden // heads)
        c["alibi"] = r.random() < 0.25
        if rs and not c["alibi"]:
            c["rope_scaling"] = rs
        return c
    c.update(vocab_size=vocab, hidden_size=hidden, intermediate_size=r.randint(8, 48),
             num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
             max_position_embeddings=max_pos, rms_norm_eps=pick(r, 1e-6, 1e-5, 1e-3),
             rope_theta=pick(r, 10000.0, 1000.0, 1e6, 50.0), bos_token_id=bos, eos_token_id=eos,
             tie_word_embeddings=r.random() < 0.5)
    if r.random() < 0.3:
        c["eos_token_id"] = [eos, r.randint(0, vocab - 1)]
    if r.random() < 0.5:
        c["pad_token_id"] = r.randint(0, vocab - 1)
    if explicit_hd:
        c["head_dim"] = head_dim
    elif arch in ("gemma", "gemma2", "gemma3_text", "qwen3"):
        c["head_dim"] = head_dim  # their defaults (256, 128) ignore hidden / heads
    if arch == "llama":
        c["hidden_act"] = pick(r, "silu", "silu", "gelu", "relu", "gelu_pytorch_tanh")
        c["attention_bias"] = r.random() < 0.3
        c["mlp_bias"] = r.random() < 0.3
    if arch in ("mistral", "mixtral"):
        c["sliding_window"] = None if r.random() < 0.4 else r.randint(2, 12)
    if arch == "mixtral":
        ne = r.randint(2, 4)
        c.update(num_local_experts=ne, num_experts_per_tok=r.randint(1, ne))
    if arch in ("qwen2", "qwen3", "qwen3_moe"):
        if r.random() < 0.5:
            c.update(use_sliding_window=True, sliding_window=r.randint(2, 12),
                     max_window_layers=r.randint(0, layers))
    if arch == "qwen2":
        c["attention_bias"] = True  # Qwen2 always has q/k/v biases (the key is ignored)
    if arch == "qwen3":
        c["attention_bias"] = r.random() < 0.3
    if arch == "qwen3_moe":
        ne = r.randint(2, 5)
        c.update(num_experts=ne, num_experts_per_tok=r.randint(1, ne),
                 moe_intermediate_size=r.randint(4, 24), norm_topk_prob=r.random() < 0.5,
                 decoder_sparse_step=pick(r, 1, 1, 2))
        if r.random() < 0.3:
            c["mlp_only_layers"] = sorted(r.sample(range(layers), r.randint(1, layers)))
    if arch == "gemma":
        c["hidden_act"] = "gelu_pytorch_tanh"
        if r.random() < 0.5:
            c["hidden_activation"] = "gelu_pytorch_tanh"
    if arch in ("gemma2", "gemma3_text"):
        c["query_pre_attn_scalar"] = pick(r, 16, 64, 256, head_dim)
        c["sliding_window"] = r.randint(2, 12)
        if r.random() < 0.5:
            c["attn_logit_softcapping"] = pick(r, 50.0, 5.0, None)
        if r.random() < 0.5:
            c["final_logit_softcapping"] = pick(r, 30.0, 3.0, None)
    if arch == "gemma3_text":
        c["rope_local_base_freq"] = pick(r, 10000.0, 100.0)
        if r.random() < 0.5:
            c["layer_types"] = [pick(r, "sliding_attention", "full_attention") for _ in range(layers)]
        else:
            c["sliding_window_pattern"] = pick(r, 1, 2, 6)
    if arch == "phi3":
        c["pad_token_id"] = r.randint(0, vocab - 1)  # the default 32000 is past the vocabulary
        c["original_max_position_embeddings"] = pick(r, 4, 8, 16, max_pos)
        c["sliding_window"] = None if r.random() < 0.6 else r.randint(2, 12)
        # Only even rotary widths: for an odd head_dim * factor transformers rotates
        # 2 * ceil(dim / 2) values and ohm 2 * floor(dim / 2) (reported, not real-world).
        if r.random() < 0.2 and (hidden // heads) % 4 == 0:
            c["partial_rotary_factor"] = 0.5
    rs = rope_variant(r, arch, c, c.get("head_dim", hidden // heads))
    if rs:
        if r.random() < 0.3 and arch != "gemma3_text":  # transformers 5 layout
            rs = {("rope_type" if k == "type" else k): v for k, v in rs.items()}
            rs["rope_theta"] = c.pop("rope_theta")
            c["rope_parameters"] = rs
        else:
            c["rope_scaling"] = rs
    return c


def gen_case(seed, broken=None):
    """The case for `seed`: a JSON-able dict. broken: None (decide at random), False or a name
    from BREAKS."""
    r = random.Random(seed)
    arch = r.choice(ARCHS)
    cfg = gen_config(r, arch)
    dtype = r.choice(DTYPES)
    cfg["torch_dtype" if r.random() < 0.5 else "dtype"] = dtype
    vocab = cfg["vocab_size"]
    limit = cfg.get("n_positions", 64)
    prompt = [r.randrange(vocab) for _ in range(r.randint(1, min(20, limit)))]
    case = {"seed": seed, "arch": arch, "config": cfg, "dtype": dtype,
            "shards": 1 if r.random() < 0.5 else r.randint(2, 4), "split_seed": r.randrange(1 << 30),
            "weight_seed": r.randrange(1 << 30), "prompt": prompt, "break": None}
    drawn = r.choice(BREAKS) if r.random() < 0.25 else False
    break_seed = r.randrange(1 << 30)  # drawn either way: forcing a break keeps the case's seeds
    if broken is None:
        broken = drawn
    if broken:
        case["break"] = {"kind": broken, "seed": break_seed}
    return case


CONFIG_BREAKS = {"drop_config_key", "string_config_key", "negative_config_key", "kv_not_dividing",
                 "heads_not_dividing", "unknown_rope_type", "unknown_model_type", "bad_json"}


def break_config(case):
    """Applies a config-level break: returns (config dict or raw text, strings one of which
    ohm's message must contain)."""
    b = case["break"]
    r = random.Random(b["seed"])
    c = json.loads(json.dumps(case["config"]))
    k = b["kind"]
    sizes = ["vocab_size", "hidden_size", "num_attention_heads", "num_hidden_layers",
             "intermediate_size"] if case["arch"] != "gpt2" else ["vocab_size", "n_embd", "n_head",
                                                                  "n_layer"]
    sizes = [s for s in sizes if s in c]
    if k == "drop_config_key":
        key = r.choice(sizes)
        del c[key]
        b["key"] = key
        return c, ["config.json", "tensor", "shape"]  # a default size: shapes then disagree
    if k == "string_config_key":
        key = r.choice(sizes)
        c[key] = str(c[key])
        return c, [key]
    if k == "negative_config_key":
        key = r.choice(sizes)
        c[key] = -c[key]
        return c, [key]
    if k == "kv_not_dividing" and "num_key_value_heads" in c and c["num_attention_heads"] > 1:
        c["num_key_value_heads"] = c["num_attention_heads"] + 1
        return c, ["num_key_value_heads"]
    if k == "heads_not_dividing" and case["arch"] == "gpt2":
        c["n_head"] = c["n_embd"] + 1
        return c, ["n_head", "n_embd"]
    if k == "heads_not_dividing" and "hidden_size" in c:
        c.pop("head_dim", None)
        c["num_attention_heads"] = c["hidden_size"] + 1
        c.pop("num_key_value_heads", None)
        return c, ["num_attention_heads", "hidden_size", "head_dim"]
    if k == "unknown_rope_type" and case["arch"] != "gpt2":
        c.pop("rope_parameters", None)
        c["rope_scaling"] = {"rope_type": "ntk-by-parts", "factor": 2.0}
        return c, ["rope"]
    if k == "unknown_model_type":
        c["model_type"] = "llama_x"
        return c, ["model_type"]
    if k == "bad_json":
        return json.dumps(c)[:-7], ["config.json"]
    return None


# ------------------------------------------------------------------ torch side
def torch_env():
    """Imports torch + transformers (re-executing under build/fixture-venv when this Python
    lacks them); None when neither has them."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        return True
    except ImportError:
        venv = os.path.join(ROOT, "build", "fixture-venv")
        py = os.path.join(venv, "bin", "python")
        if os.path.exists(py) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(py, [py] + sys.argv)
        return None


_T = {}


def _torch():
    if not _T:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        import transformers
        from safetensors.torch import save_file
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        torch.set_num_threads(1)
        _T.update(torch=torch, transformers=transformers, save_file=save_file)
    return _T["torch"], _T["transformers"], _T["save_file"]


STORE = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def hf_impl(case):
    """Eager attention, and for MoE the eager experts loop (the reference order; the default
    grouped_mm kernel also refuses sizes whose strides are not multiples of 16 bytes)."""
    kw = {"attn_implementation": "eager"}
    if case["arch"] == "falcon" and case["config"].get("alibi"):
        # transformers' eager Falcon adds the ALiBi bias twice (in the scores and again through
        # the causal mask it folds ALiBi into); SDPA adds it once, as the original model and ohm
        # do (scripts/make_rope_fixtures.py, falcon_alibi).
        kw["attn_implementation"] = "sdpa"
    if case["arch"] in ("mixtral", "qwen3_moe"):
        kw["experts_implementation"] = "eager"
    return kw


@contextlib.contextmanager
def no_class_validators(transformers, model_type, on):
    """Switches off the config class's strict-dataclass validators while inside (when on)."""
    saved = {}
    if on:
        saved = {k: k.__dict__["__class_validators__"]
                 for k in transformers.CONFIG_MAPPING[model_type].__mro__
                 if "__class_validators__" in k.__dict__}
    for k in saved:
        k.__class_validators__ = []
    try:
        yield
    finally:
        for k, v in saved.items():
            k.__class_validators__ = v


def make_weights(case):
    """The model's tensors {name: f32 tensor} as save_pretrained names them (tied ones once)."""
    torch, transformers, _ = _torch()
    cfg = dict(case["config"])
    for k in ("torch_dtype", "dtype"):
        cfg.pop(k, None)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        torch.manual_seed(case["weight_seed"])
        try:
            transformers.AutoConfig.from_pretrained(d)
            relaxed = False
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ != "StrictDataclassClassValidationError":
                raise
            # A config transformers' class validators refuse (e.g. hidden_size not a multiple
            # of the heads while head_dim is explicit) still gets weights of its shapes, so
            # that ohm's answer is about the config and not about a missing file.
            relaxed = True
        case["base_invalid"] = relaxed  # refused before any break: the break is not the fault
        with no_class_validators(transformers, cfg["model_type"], relaxed):
            return _build_and_save(case, d, transformers.AutoConfig.from_pretrained(d), torch,
                                   transformers)


def _build_and_save(case, d, config, torch, transformers):
    """from_config, the seeded re-initialisation, save_pretrained into d, read back."""
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                          **hf_impl(case))
    g = torch.Generator().manual_seed(case["weight_seed"])
    gemma = case["arch"] in GEMMA_NORM
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * B_STD)
            elif p.ndim == 1:
                p.copy_(torch.randn(p.shape, generator=g) * NORM_NOISE + (0.0 if gemma else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * W_STD)
    model.tie_weights()
    model.save_pretrained(d, safe_serialization=True)
    from safetensors import safe_open
    out = {}
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(d, fn), "pt") as f:
                for k in f.keys():
                    out[k] = f.get_tensor(k).float()
    return out


def write_checkpoint(case, out_dir, tensors=None):
    """Writes config.json + safetensors (+ index) for case into out_dir (applying its break).
    Returns the strings one of which ohm's message must contain when the case is broken."""
    torch, _, save_file = _torch()
    os.makedirs(out_dir, exist_ok=True)
    if tensors is None:
        tensors = make_weights(case)
    dt = getattr(torch, STORE[case["dtype"]])
    tensors = {k: v.to(dt).contiguous() for k, v in tensors.items()}
    names = sorted(tensors)
    b = case["break"]
    kind = b["kind"] if b else None
    r = random.Random(b["seed"] if b else 0)
    names_fault = []
    if kind == "missing_tensor":
        victim = r.choice(names)
        del tensors[victim]
        names.remove(victim)
        names_fault = [victim]
    elif kind == "wrong_shape":
        victim = r.choice(names)
        t = tensors[victim]
        shape = list(t.shape)
        shape[r.randrange(len(shape))] += 1
        tensors[victim] = torch.zeros(shape, dtype=t.dtype)
        names_fault = [victim]
    elif kind == "int_dtype":
        victim = r.choice([n for n in names if tensors[n].ndim == 2])
        tensors[victim] = tensors[victim].to(torch.int32)
        names_fault = [victim]
    elif kind == "f64_dtype":  # not an error: transformers casts to f32, and so does ohm
        victim = r.choice(names)
        tensors[victim] = tensors[victim].to(torch.float64)
    # shards: contiguous runs of the sorted names, random split points
    rs = random.Random(case["split_seed"])
    n_shards = min(case["shards"], len(names))
    if kind in ("missing_shard", "index_wrong_shard", "truncated_shard") and n_shards < 2:
        n_shards = 2
    cuts = sorted(rs.sample(range(1, len(names)), n_shards - 1)) if n_shards > 1 else []
    groups = [names[a:b_] for a, b_ in zip([0] + cuts, cuts + [len(names)])]
    files = []
    if len(groups) == 1 and case["shards"] == 1 and kind not in ("missing_shard",):
        files = ["model.safetensors"]
    else:
        files = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    weight_map = {}
    for fn, grp in zip(files, groups):
        save_file({n: tensors[n] for n in grp}, os.path.join(out_dir, fn), metadata={"format": "pt"})
        for n in grp:
            weight_map[n] = fn
    if len(files) > 1:
        if kind == "missing_shard":
            victim = r.choice(files)
            os.remove(os.path.join(out_dir, victim))
            names_fault = [victim]
        elif kind == "index_wrong_shard":
            victim = r.choice(names)
            other = [f for f in files if f != weight_map[victim]]
            weight_map[victim] = r.choice(other)
            names_fault = [victim]
        elif kind == "truncated_shard":
            victim = r.choice(files)
            p = os.path.join(out_dir, victim)
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                f.truncate(size - max(1, (size - 8) // 3))
            names_fault = [victim]
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    cfg_fault = break_config(case) if b else None
    if b and kind in CONFIG_BREAKS and cfg_fault is None:
        b["applied"] = False  # e.g. no rope type to break in GPT-2: the case is not broken
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        if cfg_fault is None:
            json.dump(case["config"], f, indent=1)
        elif isinstance(cfg_fault[0], str):
            f.write(cfg_fault[0])
        else:
            json.dump(cfg_fault[0], f, indent=1)
    if cfg_fault is not None:
        names_fault = cfg_fault[1]
    if kind == "prompt_past_vocab":
        names_fault = ["id", "vocab"]
    return names_fault


def prompt_of(case):
    p = list(case["prompt"])
    if case["break"] and case["break"]["kind"] == "prompt_past_vocab":
        p[-1] = case["config"]["vocab_size"] + 3
    return p


def hf_logits(case, d):
    """transformers' answer for the checkpoint in d: {"logits": [[...]]} or {"error": str}."""
    torch, transformers, _ = _torch()
    try:
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            d, dtype=torch.float32, output_loading_info=True, **hf_impl(case))
        bad = {k: sorted(map(str, v))[:8] for k, v in info.items()  # sorted: stable text
               if v and k in ("missing_keys", "mismatched_keys")}
        if bad:
            return {"error": f"loading info: {bad}"}
        model.eval()
        ids = torch.tensor([prompt_of(case)], dtype=torch.long)
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=False).logits[0].float()
        if not bool(torch.isfinite(out).all()):
            return {"error": "non-finite logits"}
        return {"logits": out.tolist()}
    except Exception as e:  # noqa: BLE001 -- any refusal counts
        return {"error": f"{type(e).__name__}: {str(e)[:300]}"}


# ------------------------------------------------------------------ comparison
# Breaks transformers lets through where ohm refuses on purpose: it casts integer tensors to
# the float dtype, finds a tensor in another shard than the index names, and builds a model
# with a negative number of layers or heads (range(-3) is empty), and it only checks a RoPE type
# when a layer uses it (a Gemma 3 without global layers runs with an unknown global rope_type).
# The expected answer is then ohm's refusal, naming the fault; transformers' acceptance is
# noted, not a mismatch.
STRICT_BREAKS = {"int_dtype", "index_wrong_shard", "negative_config_key", "unknown_rope_type"}


def expected_of(case, ref):
    """transformers' answer, or for a STRICT_BREAKS case that transformers accepts, the
    refusal ohm owes."""
    b = case["break"]
    if b and b["kind"] in STRICT_BREAKS and b.get("applied", True) and "error" not in ref:
        return {"error": f"ohm refuses (transformers accepts a {case['break']['kind']} break)",
                "strict": True}
    return ref


def compare(case, ref, ours, names_fault, d=""):
    """None when they agree, else what differed (a short string). d: the checkpoint's
    directory, left out of ohm's message before looking for the names at fault."""
    if "error" in ref or "error" in ours:
        if "error" in ref and "error" in ours:
            msg = ours["error"].replace(d, "<dir>") if d else ours["error"]
            base_invalid = case is not None and case.get("base_invalid")
            if names_fault and not base_invalid and not any(s.lower() in msg.lower() for s in names_fault):
                return f"ohm's message names none of {names_fault}: {msg}"
            return None
        if "error" in ref:
            return f"transformers refuses ({ref['error']}) but ohm loads and runs it"
        return f"ohm refuses ({ours['error']}) but transformers runs it"
    a, b = ref["logits"], ours["logits"]
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
        return f"shape: transformers {len(a)}x{len(a[0])}, ohm {len(b)}x{len(b[0]) if b else 0}"
    scale = max(1.0, max(abs(v) for row in a for v in row))
    worst, where = 0.0, None
    for t, (x, y) in enumerate(zip(a, b)):
        for v, (p, q) in enumerate(zip(x, y)):
            d = abs(p - q)
            if not d <= worst:  # NaN counts
                worst, where = d if d == d else float("inf"), (t, v)
    if worst > TOL * scale:
        t, v = where
        return (f"logits differ: max|diff| {worst:.3g} at position {t} id {v} (transformers "
                f"{a[t][v]:.6g}, ohm {b[t][v]:.6g}; bar {TOL * scale:.3g})")
    return None


def ohm_answers(logits_bin, items, tmp):
    return run_batch([logits_bin], items, os.path.join(tmp, "batch.jsonl"))


def reproducer(case, why, d):
    """A minimal reproducer: the case's config, prompt, dtype, shards, break and what differed."""
    cfg_path = os.path.join(d, "config.json")
    try:
        with open(cfg_path) as f:
            written = f.read()
    except OSError:
        written = "(none)"
    return (f"--- MISMATCH seed={case['seed']} arch={case['arch']} dtype={case['dtype']} "
            f"shards={case['shards']} break={case['break']}\n    {why}\n    prompt={prompt_of(case)}\n"
            f"    config.json: {' '.join(written.split())}\n"
            f"    rerun: model_diff.py --logits BIN --case {case['seed']}"
            + (f" --break {case['break']['kind']}" if case["break"] else " --break none"))


# ------------------------------------------------------------------ modes
def run_fixtures(args):
    root = args.fixtures
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "expected.json")))
    if not cases:
        print(f"FAIL: no cases under {root}")
        return 1
    exp = {}
    items = []
    for c in cases:
        with open(os.path.join(root, c, "expected.json")) as f:
            exp[c] = json.load(f)
        items.append({"model": os.path.join(root, c), "ids": exp[c]["prompt"]})
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        ours = ohm_answers(args.logits, items, tmp)
    bad = 0
    for c, o in zip(cases, ours):
        e = exp[c]
        ref = {"error": e["error"]} if "error" in e else {"logits": e["logits"]}
        why = compare(None, ref, o, e.get("names_fault", []), os.path.join(root, c))
        if why:
            bad += 1
            print(f"FAIL {c}: {why}")
    print(f"{len(cases) - bad} of {len(cases)} committed cases agree with transformers "
          f"({time.time() - t0:.1f}s)")
    return 1 if bad else 0


def run_generated(args):
    if not torch_env():
        print("SKIP: torch/transformers not installed (build/fixture-venv)")
        return 77
    if args.case is not None:
        seeds = [args.case]
    else:
        base = args.seed if args.soak is None else random.randrange(1 << 40)
        n = args.count if args.soak is None else args.soak
        seeds = [base * 1_000_003 + i for i in range(n)] if args.soak is None else [base + i for i in range(n)]
        print(f"seeds {seeds[0]} .. {seeds[-1]}", flush=True)
    forced = None if args.break_kind is None else (False if args.break_kind == "none" else args.break_kind)
    tmp = tempfile.mkdtemp(prefix="model_diff.")
    t0 = time.time()
    stats = {"cases": 0, "ok_logits": 0, "ok_both_refuse": 0, "ohm_stricter": 0, "hf_cannot_build": 0,
             "mismatch": 0}
    by_arch = {}
    worst_rel = 0.0
    for start in range(0, len(seeds), args.batch):
        chunk = []
        for s in seeds[start:start + args.batch]:
            case = gen_case(s, forced)
            d = os.path.join(tmp, f"c{s}")
            try:
                nf = write_checkpoint(case, d)
            except Exception as e:  # noqa: BLE001 -- transformers cannot even build the model
                nf = None
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                with open(os.path.join(d, "config.json"), "w") as f:
                    json.dump(case["config"], f)
                ref = {"error": f"from_config: {type(e).__name__}: {str(e)[:200]}"}
                stats["hf_cannot_build"] += 1  # ohm gets config.json only: a weak check
            else:
                ref = expected_of(case, hf_logits(case, d))
            chunk.append((case, d, ref, nf or []))
        ours = ohm_answers(args.logits, [{"model": d, "ids": prompt_of(c)} for c, d, _, _ in chunk], tmp)
        for (case, d, ref, nf), o in zip(chunk, ours):
            stats["cases"] += 1
            a = by_arch.setdefault(case["arch"], [0, 0])
            a[0] += 1
            why = compare(case, ref, o, nf, d)
            if why:
                stats["mismatch"] += 1
                a[1] += 1
                print(reproducer(case, why, d), flush=True)
                if args.keep:
                    continue
            elif "logits" in ref:
                stats["ok_logits"] += 1
                scale = max(1.0, max(abs(v) for row in ref["logits"] for v in row))
                worst_rel = max(worst_rel, max(abs(p - q) for x, y in zip(ref["logits"], o["logits"])
                                               for p, q in zip(x, y)) / scale)
            else:
                stats["ok_both_refuse"] += 1
                if ref.get("strict"):
                    stats["ohm_stricter"] += 1
            shutil.rmtree(d, ignore_errors=True)
        print(f"{stats['cases']} cases, {stats['mismatch']} mismatches ({time.time() - t0:.0f}s)",
              flush=True)
    print(json.dumps({**stats, "seconds": round(time.time() - t0, 1),
                      "worst_scaled_diff": worst_rel, "by_arch": by_arch}))
    if not args.keep or not stats["mismatch"]:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 1 if stats["mismatch"] else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logits", required=True, help="the model_diff_logits executable")
    ap.add_argument("--fixtures", help="check the committed cases under this directory (no torch)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--soak", type=int, help="N cases from a random seed")
    ap.add_argument("--case", type=int, help="just the case of this seed")
    ap.add_argument("--break", dest="break_kind", choices=BREAKS + ["none"],
                    help="force this break on every case (none: no break)")
    ap.add_argument("--batch", type=int, default=50, help="checkpoints per ohm process")
    ap.add_argument("--keep", action="store_true", help="keep the mismatching checkpoints")
    args = ap.parse_args()
    if args.fixtures:
        return run_fixtures(args)
    return run_generated(args)


if __name__ == "__main__":
    sys.exit(main())
