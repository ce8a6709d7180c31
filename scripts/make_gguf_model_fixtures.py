#!/usr/bin/env python3
"""Writes the model fixtures of tests/fixtures/models/<arch>/f32 as GGUF files, the way
llama.cpp's convert_hf_to_gguf.py does, with the `gguf` package from PyPI (needs gguf, numpy,
safetensors).

  tests/fixtures/models/<arch>/gguf/model-f16.gguf    --outtype f16
  tests/fixtures/models/<arch>/gguf/model-q8_0.gguf   --outtype q8_0 (gguf.quants.quantize)

for arch in llama, mistral, qwen2, gpt2. The reference logits stay in ../f32/reference.safetensors.

What follows convert_hf_to_gguf.py (LlamaModel, Qwen2Model, GPT2Model):
  - tensor names from gguf.get_tensor_name_map(arch, n_blocks) (HF name -> llama.cpp name);
  - llama/mistral: q_proj and k_proj rows permuted by LlamaModel.permute (n_head, then n_head_kv
    for k), i.e. HF's rotate-half layout turned into ggml's interleaved-pair RoPE layout;
    qwen2 is not permuted (llama.cpp runs it with NEOX RoPE);
  - gpt2: Conv1D weights (c_attn, c_proj, c_fc) transposed to [out, in]; output.weight written
    as a copy of token_embd; the `.attn.bias` masks dropped;
  - types: 1-D tensors and *_norm weights F32; position_embd F32; every other matrix F16, or
    Q8_0 when its rows are a multiple of 32 (F16 otherwise);
  - Mistral checkpoints convert under the "llama" architecture.
Additions (convert_hf_to_gguf.py does not write them): `llama.attention.sliding_window` for the
Mistral fixture (llama.cpp ignores Mistral's window; transformers and ohm honour it), and no
tokenizer.ggml.* vocabulary (the fixtures are random-weight models over raw ids), only the
bos/eos/pad ids.

The other fixture architectures (write_converted, after convert_hf_to_gguf.py at llama.cpp
c392e509: LlamaModel for Mixtral, GemmaModel, Phi3MiniModel, FalconModel), with each converter's
own metadata keys:
  - mixtral: architecture "llama"; q/k rows permuted as llama; the experts' w1/w2/w3 stacked
    into 3-D blk.N.ffn_{gate,down,up}_exps [E, rows, cols]; router blk.N.ffn_gate_inp kept F32;
    llama.expert_count / expert_used_count;
  - gemma: every *norm.weight written as 1 + w; lm_head skipped (tied); no rope keys;
  - phi3: fused attn_qkv and ffn_up (= gate_up_proj) kept as is; not permuted (NEOX RoPE);
    phi3.rope.scaling.original_context_length; phi3.attention.sliding_window = 0 when none;
  - falcon (falcon_mq and falcon_nda): query_key_value rows re-ordered from HF's per-KV-group
    [q.., k, v] to [all q | all k | all v]; falcon.tensor_data_layout = "jploski";
    context_length 2048 and feed_forward_length 4 * hidden_size (the converter's constants, not
    the config's); ln_attn -> attn_norm_2, ln_mlp -> attn_norm (gguf-py's map).
    One deviation: the converter reads `num_kv_heads` literally; falcon_mq's config.json carries
    transformers' serialized default (4, which FalconAttention ignores for the multi-query
    layout) and the converter's reshape would fail on it. The published Falcon-7B config has no
    num_kv_heads, for which the converter uses 1; the script uses the effective count (1 for
    multi_query without new_decoder_architecture), i.e. what the converter writes for Falcon-7B.
  The mixtral F16 file (577 KB) is not committed (fixture size cap); tests/unit/
  test_gguf_models.cpp builds it at test time (same bytes as this script's, checked once).

Usage: python3 scripts/make_gguf_model_fixtures.py [ARCH...]   (default: all)
"""
import json
import re
from pathlib import Path

import importlib.metadata

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "fixtures" / "models"

ARCHS = {"llama": gguf.MODEL_ARCH.LLAMA, "mistral": gguf.MODEL_ARCH.LLAMA,
         "qwen2": gguf.MODEL_ARCH.QWEN2, "gpt2": gguf.MODEL_ARCH.GPT2}

# Architectures added through docs/contributing.md's recipe describe their GGUF form in
# tests/fixtures/models/<name>/fixture.json under "gguf": {"arch": gguf.MODEL_ARCH member name,
# "norm_plus_one": the converter stores RMSNorm weights as 1 + w (Gemma), "kv": [[GGUFWriter
# method, value], ...] for the architecture's extra metadata, a value "gguf.RopeScalingType.LINEAR"
# naming a gguf-py enum member}. rope_parameters keyed by layer type (Gemma 3) give the
# full-attention layers' rope_theta as rope.freq_base. Tensors go through gguf-py's name
# map unchanged otherwise (no q/k permutation: llama.cpp runs them with NEOX RoPE). MoE experts
# saved one by one (mlp.experts.{e}.{gate,up,down}_proj.weight, num_experts of them) are stacked
# into ffn_{gate,up,down}_exps [E, rows, cols] as the converter does, and the router
# (ffn_gate_inp) stays F32. The Q8_0 reference loads them back into transformers 5's fused
# mlp.experts.gate_up_proj (gate | up) and down_proj.
SPECS = {}
for _p in sorted(MODELS.glob("*/fixture.json")):
    _g = json.loads(_p.read_text()).get("gguf")
    if _g:
        SPECS[_p.parent.name] = _g
        ARCHS[_p.parent.name] = getattr(gguf.MODEL_ARCH, _g["arch"])


def permute(w, n_head, n_head_kv):
    # convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def hf_tensors(fixture, cfg):
    """(hf_name, array) in the converter's order, after its per-architecture rewrites."""
    st = load_file(str(fixture / "model.safetensors"))
    mt = cfg["model_type"]
    spec = SPECS.get(fixture.parent.name, {})
    for name in st:  # safetensors order (sorted), like the converter's index walk
        w = st[name].astype(np.float32)
        if mt in ("llama", "mistral"):
            nh = cfg["num_attention_heads"]
            nkv = cfg.get("num_key_value_heads", nh)
            if name.endswith(("q_proj.weight", "q_proj.bias")):
                w = permute(w, nh, nh)
            if name.endswith(("k_proj.weight", "k_proj.bias")):
                w = permute(w, nh, nkv)
        if spec.get("norm_plus_one") and name.endswith("norm.weight"):
            w = w + 1
        if mt == "gpt2":
            if name.endswith((".attn.bias", ".attn.masked_bias")):
                continue
            if name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
                w = w.T.copy()
        yield name, w


def write(arch_name, fixture, out_path, outtype):
    cfg = json.loads((fixture / "config.json").read_text())
    arch = ARCHS[arch_name]
    arch_str = gguf.MODEL_ARCH_NAMES[arch]
    n_layer = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    tmap = gguf.get_tensor_name_map(arch, n_layer)
    w = gguf.GGUFWriter(str(out_path), arch_str)
    w.add_name(f"ohm-fixture-{arch_name}")
    if arch_name == "gpt2":
        w.add_block_count(cfg["n_layer"])
        w.add_context_length(cfg["n_positions"])
        w.add_embedding_length(cfg["n_embd"])
        w.add_feed_forward_length(cfg.get("n_inner") or 4 * cfg["n_embd"])
        w.add_head_count(cfg["n_head"])
        w.add_layer_norm_eps(cfg["layer_norm_epsilon"])
    else:
        nh = cfg["num_attention_heads"]
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // nh
        rope = cfg.get("rope_parameters") or {}
        rope = rope.get("full_attention", rope)  # per layer type (Gemma 3): the global layers'
        w.add_block_count(n_layer)
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_head_count(nh)
        w.add_head_count_kv(cfg.get("num_key_value_heads", nh))
        w.add_rope_freq_base(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_rope_dimension_count(head_dim)
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        if arch_name == "mistral" and cfg.get("sliding_window"):
            w.add_sliding_window(cfg["sliding_window"])  # ohm addition, see the docstring
        for method, value in SPECS.get(arch_name, {}).get("kv", []):
            if isinstance(value, str) and value.startswith("gguf."):  # an enum, "gguf.X.Y"
                obj = gguf
                for part in value.split(".")[1:]:
                    obj = getattr(obj, part)
                value = obj
            getattr(w, method)(value)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16"
                    else gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, fn in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                    ("pad_token_id", w.add_pad_token_id)):
        v = cfg.get(key)
        if isinstance(v, list):
            v = v[0] if v else None
        if v is not None:
            fn(v)

    experts, n_experts = {}, cfg.get("num_experts") or cfg.get("num_local_experts", 0)
    for name, data in hf_tensors(fixture, cfg):
        m = re.match(r"(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(\w+)\.weight$", name)
        if m:  # one expert's matrix: stacked [E, rows, cols] per layer, as the converter does
            group = experts.setdefault((m[1], m[3]), {})
            group[int(m[2])] = data
            if len(group) < n_experts:
                continue
            data = np.stack([group.pop(e) for e in range(n_experts)])
            name = f"{m[1]}.{m[3]}.weight"  # gguf-py maps it to blk.N.ffn_*_exps.weight
        new_name = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise SystemExit(f"{arch_name}: cannot map {name}")
        tensors = [(new_name, data)]
        if arch_name == "gpt2" and new_name == "token_embd.weight":
            tensors.append(("output.weight", data))  # GPT2Model: output tied to wte
        for tname, t in tensors:
            if t.ndim <= 1 or tname.endswith("_norm.weight") or tname.startswith("position_embd") \
                    or tname.endswith(F32_ONLY):
                w.add_tensor(tname, t.astype(np.float32))
            elif outtype == "f16" or t.shape[-1] % 32 != 0:
                w.add_tensor(tname, t.astype(np.float16))
            else:
                q = gguf.quants.quantize(t, T.Q8_0)
                w.add_tensor(tname, q, raw_shape=q.shape, raw_dtype=T.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(names):
    for arch_name in names:
        fixture = MODELS / arch_name / "f32"
        out = MODELS / arch_name / "gguf"
        out.mkdir(exist_ok=True)
        for outtype in ("f16", "q8_0"):
            p = out / f"model-{outtype}.gguf"
            write(arch_name, fixture, p, outtype)
            print(f"wrote {p.relative_to(ROOT)} ({p.stat().st_size} bytes)")
    (MODELS / "GGUF_VERSIONS.txt").write_text(
        f"gguf {importlib.metadata.version('gguf')}\nnumpy {np.__version__}\n"
        "command (from repository root): python3 scripts/make_gguf_model_fixtures.py\n")


def q8_0_reference(arch_name):
    """transformers logits with the Q8_0 file's weights (gguf.quants.dequantize, layout changes
    undone): what an exact Q8_0 loader must compute. Saved as gguf/reference-q8_0.safetensors."""
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoModelForCausalLM
    fixture = MODELS / arch_name / "f32"
    cfg = json.loads((fixture / "config.json").read_text())
    n_layer = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    tmap = gguf.get_tensor_name_map(ARCHS[arch_name], n_layer)
    r = gguf.GGUFReader(str(MODELS / arch_name / "gguf" / "model-q8_0.gguf"))
    deq = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(
        [int(d) for d in reversed(t.shape)]) for t in r.tensors}
    model = AutoModelForCausalLM.from_pretrained(str(fixture), dtype=torch.float32)
    sd = model.state_dict()
    for name in list(sd):
        if name.endswith("mlp.experts.gate_up_proj"):  # written as its two halves
            p = name[: -len("gate_up_proj")]
            w = np.concatenate([deq[tmap.get_name(p + "gate_proj.weight", try_suffixes=(".weight",))],
                                deq[tmap.get_name(p + "up_proj.weight", try_suffixes=(".weight",))]],
                               axis=1).astype(np.float32)
            sd[name] = torch.from_numpy(np.ascontiguousarray(w)).reshape(sd[name].shape)
            continue
        if name.endswith("mlp.experts.down_proj"):  # a fused parameter: no .weight suffix
            name_w = name + ".weight"
        else:
            name_w = name
        g = tmap.get_name(name_w, try_suffixes=(".weight", ".bias"))
        if g is None or g not in deq:
            continue
        w = deq[g].astype(np.float32)
        if arch_name in ("llama", "mistral") and name.endswith(("q_proj.weight", "k_proj.weight")):
            nh = cfg["num_attention_heads"]
            n = nh if "q_proj" in name else cfg.get("num_key_value_heads", nh)
            hd = w.shape[0] // n
            w = w.reshape(n, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        if arch_name == "gpt2" and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            w = w.T
        if SPECS.get(arch_name, {}).get("norm_plus_one") and name.endswith("norm.weight"):
            w = w - 1
        sd[name] = torch.from_numpy(np.ascontiguousarray(w)).reshape(sd[name].shape)
    if arch_name == "gpt2":
        sd["lm_head.weight"] = torch.from_numpy(deq["output.weight"].astype(np.float32))
    model.load_state_dict(sd)
    model.eval()
    ref = load_file(str(fixture / "reference.safetensors"))
    out = {}
    with torch.no_grad():
        for k in ("prompt_len1", "prompt_len7", "prompt_len64"):
            ids = torch.from_numpy(ref[k + ".input_ids"])
            out[k + ".logits"] = model(ids).logits.numpy().astype(np.float32)
        ids = torch.from_numpy(ref["greedy.input_ids"])
        for _ in range(32):  # plain argmax steps (no eos handling), as ohm::greedy_generate
            nxt = model(ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
        out["greedy.output_ids"] = ids.numpy().astype(np.int64)
    save_file(out, str(MODELS / arch_name / "gguf" / "reference-q8_0.safetensors"))


# ---- mixtral, gemma, phi3, falcon -----------------------------------------------------------

CONVERTED = {"mixtral": gguf.MODEL_ARCH.LLAMA, "gemma": gguf.MODEL_ARCH.GEMMA,
             "phi3": gguf.MODEL_ARCH.PHI3, "falcon_mq": gguf.MODEL_ARCH.FALCON,
             "falcon_nda": gguf.MODEL_ARCH.FALCON}
F32_ONLY = ("ffn_gate_inp.weight",)  # prepare_tensors: FFN_GATE_INP stays F32


def rope_theta(cfg):
    return (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta"))


def falcon_kv(cfg):
    if cfg.get("multi_query", True) and not cfg.get("new_decoder_architecture", False):
        return 1  # see the docstring: what the converter uses for the published Falcon-7B
    return cfg.get("num_kv_heads") or 1


def converted_tensors(arch_name, cfg, tmap):
    """(gguf_name, f32 array) as the converter's modify_tensors emits them."""
    st = load_file(str(MODELS / arch_name / "f32" / "model.safetensors"))
    experts = {}
    for name in st:
        w = st[name].astype(np.float32)
        if arch_name == "mixtral":
            nh = cfg["num_attention_heads"]
            if name.endswith(("q_proj.weight", "q_proj.bias")):
                w = permute(w, nh, nh)
            if name.endswith(("k_proj.weight", "k_proj.bias")):
                w = permute(w, nh, cfg.get("num_key_value_heads"))
            if "block_sparse_moe.experts" in name:
                bid = int(name.split(".")[2])
                d = experts.setdefault(bid, {})
                d[name] = w
                E = cfg["num_local_experts"]
                if len(d) >= 3 * E:
                    for wid in ("w1", "w2", "w3"):
                        data = np.stack([d.pop(f"model.layers.{bid}.block_sparse_moe.experts.{x}.{wid}.weight")
                                         for x in range(E)])
                        yield tmap.get_name(f"layers.{bid}.feed_forward.experts.{wid}.weight",
                                            try_suffixes=(".weight",)), data
                continue
        if arch_name == "gemma":
            if name == "lm_head.weight":
                continue
            if name.endswith("norm.weight"):
                w = w + 1
        if arch_name.startswith("falcon") and "query_key_value" in name:
            nh = cfg["num_attention_heads"]
            nkv = falcon_kv(cfg)
            hd = cfg["hidden_size"] // nh
            qkv = w.reshape(nkv, nh // nkv + 2, hd, hd * nh)
            w = np.concatenate((qkv[:, :-2].reshape(nh * hd, hd * nh),
                                qkv[:, [-2]].reshape(nkv * hd, hd * nh),
                                qkv[:, [-1]].reshape(nkv * hd, hd * nh))).reshape(w.shape)
        new_name = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise SystemExit(f"{arch_name}: cannot map {name}")
        yield new_name, w


def write_converted(arch_name, out_path, outtype):
    fixture = MODELS / arch_name / "f32"
    cfg = json.loads((fixture / "config.json").read_text())
    arch = CONVERTED[arch_name]
    n_layer = cfg["num_hidden_layers"]
    tmap = gguf.get_tensor_name_map(arch, n_layer)
    w = gguf.GGUFWriter(str(out_path), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name(f"ohm-fixture-{arch_name}")
    ftype = gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0
    nh = cfg["num_attention_heads"]
    if arch_name == "mixtral":  # Model.set_gguf_parameters, then LlamaModel's
        w.add_block_count(n_layer)
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_head_count(nh)
        w.add_head_count_kv(cfg["num_key_value_heads"])
        w.add_rope_freq_base(rope_theta(cfg))
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_expert_count(cfg["num_local_experts"])
        w.add_expert_used_count(cfg["num_experts_per_tok"])
        if cfg.get("head_dim") is not None:
            w.add_key_length(cfg["head_dim"])
            w.add_value_length(cfg["head_dim"])
        w.add_file_type(ftype)
        w.add_vocab_size(cfg["vocab_size"])
        w.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // nh)
    elif arch_name == "gemma":  # GemmaModel.set_gguf_parameters
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_block_count(n_layer)
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_head_count(nh)
        w.add_head_count_kv(cfg.get("num_key_value_heads", nh))
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
        w.add_file_type(ftype)
    elif arch_name == "phi3":  # Phi3MiniModel.set_gguf_parameters
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_rope_scaling_orig_ctx_len(cfg["original_max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_block_count(n_layer)
        w.add_head_count(nh)
        w.add_head_count_kv(cfg["num_key_value_heads"])
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_rope_dimension_count(cfg["hidden_size"] // nh)
        w.add_rope_freq_base(rope_theta(cfg))
        w.add_file_type(ftype)
        w.add_sliding_window(cfg.get("sliding_window") or 0)
    else:  # FalconModel.set_gguf_parameters
        w.add_context_length(2048)
        w.add_tensor_data_layout("jploski")
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(4 * cfg["hidden_size"])
        w.add_block_count(n_layer)
        w.add_head_count(nh)
        w.add_head_count_kv(falcon_kv(cfg))
        w.add_layer_norm_eps(cfg["layer_norm_epsilon"])
        w.add_file_type(ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, fn in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                    ("pad_token_id", w.add_pad_token_id)):
        v = cfg.get(key)
        if isinstance(v, list):
            v = v[0] if v else None
        if v is not None:
            fn(v)
    for tname, t in converted_tensors(arch_name, cfg, tmap):
        if t.ndim <= 1 or tname.endswith("_norm.weight") or tname.endswith(F32_ONLY) \
                or not tname.endswith(".weight"):
            w.add_tensor(tname, t.astype(np.float32))
        elif outtype == "f16" or t.shape[-1] % 32 != 0:
            w.add_tensor(tname, t.astype(np.float16))
        else:
            q = gguf.quants.quantize(t, T.Q8_0)
            w.add_tensor(tname, q, raw_shape=q.shape, raw_dtype=T.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_checkpoint_from_gguf(arch_name, path):
    """The HF state dict (published names, f32) of a converted GGUF: every layout change undone
    with numpy (independently of ohm's loader)."""
    cfg = json.loads((MODELS / arch_name / "f32" / "config.json").read_text())
    tmap = gguf.get_tensor_name_map(CONVERTED[arch_name], cfg["num_hidden_layers"])
    r = gguf.GGUFReader(str(path))
    deq = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(
        [int(d) for d in reversed(t.shape)]).astype(np.float32) for t in r.tensors}
    st = load_file(str(MODELS / arch_name / "f32" / "model.safetensors"))
    nh = cfg["num_attention_heads"]
    out = {}
    for name in st:
        if arch_name == "mixtral" and "block_sparse_moe.experts" in name:
            parts = name.split(".")
            bid, x, wid = int(parts[2]), int(parts[5]), parts[6]
            g = tmap.get_name(f"layers.{bid}.feed_forward.experts.{wid}.weight", try_suffixes=(".weight",))
            out[name] = deq[g][x]
            continue
        if arch_name == "gemma" and name == "lm_head.weight":
            continue
        w = deq[tmap.get_name(name, try_suffixes=(".weight", ".bias"))]
        if arch_name == "mixtral" and name.endswith(("q_proj.weight", "k_proj.weight")):
            n = nh if "q_proj" in name else cfg["num_key_value_heads"]
            w = w.reshape(n, w.shape[0] // n // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        if arch_name == "gemma" and name.endswith("norm.weight"):
            w = w - 1
        if arch_name.startswith("falcon") and "query_key_value" in name:
            nkv = falcon_kv(cfg)
            hd = cfg["hidden_size"] // nh
            q = w[: nh * hd].reshape(nkv, nh // nkv, hd, -1)
            k = w[nh * hd: (nh + nkv) * hd].reshape(nkv, 1, hd, -1)
            v = w[(nh + nkv) * hd:].reshape(nkv, 1, hd, -1)
            w = np.concatenate((q, k, v), axis=1).reshape(w.shape)
        out[name] = np.ascontiguousarray(w, dtype=np.float32)
    return out


def q8_0_reference_converted(arch_name):
    """As q8_0_reference, via a temporary HF checkpoint of the Q8_0 file's weights."""
    import shutil
    import tempfile
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoModelForCausalLM
    fixture = MODELS / arch_name / "f32"
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(fixture / "config.json", d)
        save_file(hf_checkpoint_from_gguf(arch_name, MODELS / arch_name / "gguf" / "model-q8_0.gguf"),
                  str(Path(d) / "model.safetensors"), metadata={"format": "pt"})
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    ref = load_file(str(fixture / "reference.safetensors"))
    out = {}
    with torch.no_grad():
        for k in ("prompt_len1", "prompt_len7", "prompt_len64"):
            ids = torch.from_numpy(ref[k + ".input_ids"])
            out[k + ".logits"] = model(ids).logits.numpy().astype(np.float32)
        ids = torch.from_numpy(ref["greedy.input_ids"])
        for _ in range(32):
            nxt = model(ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
        out["greedy.output_ids"] = ids.numpy().astype(np.int64)
    save_file(out, str(MODELS / arch_name / "gguf" / "reference-q8_0.safetensors"))


UNCOMMITTED = {("mixtral", "f16")}  # over the fixture size cap; built by the C++ test


def main_converted(names, out_root=None):
    for arch_name in names:
        out = MODELS / arch_name / "gguf"
        out.mkdir(exist_ok=True)
        for outtype in ("f16", "q8_0"):
            d = out
            if (arch_name, outtype) in UNCOMMITTED:
                d = Path(out_root or "/tmp") / arch_name
                d.mkdir(parents=True, exist_ok=True)
            p = d / f"model-{outtype}.gguf"
            write_converted(arch_name, p, outtype)
            print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    import sys
    wanted = sys.argv[1:] or list(ARCHS) + list(CONVERTED)
    if any(a in ARCHS for a in wanted):
        main([a for a in wanted if a in ARCHS])
    main_converted([a for a in wanted if a in CONVERTED])
    import torch
    torch.set_num_threads(2)
    for a in wanted:
        if a in ARCHS:
            q8_0_reference(a)
        else:
            q8_0_reference_converted(a)
        print("wrote", a, "reference-q8_0.safetensors")
