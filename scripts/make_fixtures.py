#!/usr/bin/env python3
"""Generate tiny random-weight Hugging Face reference fixtures for ohm's C++ tests.

CPU only, deterministic.  Not run by CI; its outputs are committed under
tests/fixtures/models/.  Re-running it deletes and rewrites that directory.

Usage (from the repository root):
    nice -n 10 python3 scripts/make_fixtures.py [--out tests/fixtures/models]

Layout produced, per fixture <name> and weight dtype <dt> in {f32, bf16}:
    <name>/<dt>/config.json, generation_config.json, model.safetensors   (save_pretrained)
    <name>/<dt>/tensors.json          tensor list read back with the safetensors library
    <name>/<dt>/reference.safetensors reference tensors (floats as F32, ids as I64)
    <name>/<dt>/reference.json        the same scalars / ids, human readable
    VERSIONS.txt                      tool versions and the command used
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
# bit-reproducible reruns: no dynamic thread counts, MKL conditional numerical reproducibility
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("OMP_DYNAMIC", "FALSE")
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import safetensors  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (  # noqa: E402
    FalconConfig,
    FalconForCausalLM,
    GemmaConfig,
    GemmaForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LogitsProcessor,
    LogitsProcessorList,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

transformers.utils.logging.disable_progress_bar()
torch.set_num_threads(2)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)

# ----------------------------------------------------------------------------------------------
# Global sizes / constants
# ----------------------------------------------------------------------------------------------
VOCAB = 512
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
INTER = 128
MAX_POS = 256
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
PROMPT_LENS = (1, 7, 64)
BATCH_LENS = (5, 12, 20)
GREEDY_PROMPT_LEN = 7
GREEDY_NEW = 32
BEAM = dict(num_beams=4, num_return_sequences=4, max_new_tokens=16, length_penalty=1.0, early_stopping=True)
MIN_MARGIN = 1e-3
MIN_ROUTER_GAP = 1e-4  # Mixtral: min gap between the k-th and (k+1)-th router probability
BEAM_NOISE = 1e-4  # beam search must give identical sequences when log-probs get +-this uniform noise
BEAM_NOISE_TRIALS = 4
PROMPT_SEED = 1234
MODEL_SEED_BASE = 1000
MAX_SEED_TRIES = 50

# init scales (well separated logits)
W_STD = 0.25  # linear / conv1d / embedding weights, expert tensors, router
B_STD = 0.05  # biases
NORM_NOISE = 0.1  # norm weights: 1 + noise (Gemma: 0 + noise since it applies (1 + w))

COMMON_TOK = dict(pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID)


def llama_cfg():
    return LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                       num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                       max_position_embeddings=MAX_POS, tie_word_embeddings=False, **COMMON_TOK)


def mistral_cfg():
    return MistralConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                         max_position_embeddings=MAX_POS, sliding_window=16, tie_word_embeddings=False,
                         **COMMON_TOK)


def mixtral_cfg():
    return MixtralConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                         max_position_embeddings=MAX_POS, num_local_experts=4, num_experts_per_tok=2,
                         sliding_window=None, router_jitter_noise=0.0, tie_word_embeddings=False, **COMMON_TOK)


def falcon_mq_cfg():
    return FalconConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        new_decoder_architecture=False, multi_query=True, parallel_attn=True, bias=False,
                        alibi=False, ffn_hidden_size=INTER, max_position_embeddings=MAX_POS,
                        tie_word_embeddings=True, **COMMON_TOK)


def falcon_nda_cfg():
    return FalconConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        new_decoder_architecture=True, num_kv_heads=KV_HEADS, parallel_attn=True, bias=False,
                        alibi=False, ffn_hidden_size=INTER, max_position_embeddings=MAX_POS,
                        tie_word_embeddings=True, **COMMON_TOK)


def qwen2_cfg():
    return Qwen2Config(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                       num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=MAX_POS,
                       use_sliding_window=False, tie_word_embeddings=False, **COMMON_TOK)


def gemma_cfg():
    return GemmaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                       num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                       max_position_embeddings=MAX_POS, hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True,
                       **COMMON_TOK)


def phi3_cfg():
    return Phi3Config(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=MAX_POS,
                      original_max_position_embeddings=MAX_POS, sliding_window=None, tie_word_embeddings=False,
                      **COMMON_TOK)


def gpt2_cfg():
    return GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_inner=INTER,
                      n_positions=MAX_POS, tie_word_embeddings=True, **COMMON_TOK)


def spec_fixtures(root: Path):
    """Fixtures described by tests/fixtures/models/<name>/fixture.json (architectures added
    through docs/contributing.md's recipe): {"model_type": ..., "config": {HF config keys
    overriding the common sizes}, "beam": false, "gemma_norm": false, "router": false (record
    the MoE routers' top-k counts and reject seeds with router near-ties, as for Mixtral),
    "min_router_gap": MIN_ROUTER_GAP (the smallest accepted top-k router probability gap; larger
    keeps routing stable under int8-quantized activations)}. The config class and model come
    from transformers' Auto classes for that model_type."""
    from transformers import AutoConfig, AutoModelForCausalLM
    out = []
    for spec_path in sorted(root.glob("*/fixture.json")):
        spec = json.loads(spec_path.read_text())
        name = spec_path.parent.name

        def cfg_fn(spec=spec):
            kw = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER,
                      num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                      num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                      max_position_embeddings=MAX_POS, tie_word_embeddings=False, **COMMON_TOK)
            kw.update(spec.get("config", {}))
            return AutoConfig.for_model(spec["model_type"], **kw)

        cls = AutoModelForCausalLM._model_mapping[type(cfg_fn())]
        out.append((name, cls, cfg_fn, bool(spec.get("beam", False))))
        GEMMA_NORM.add(name) if spec.get("gemma_norm") else None
        ROUTED.add(name) if spec.get("router") else None
        if "min_router_gap" in spec:
            MIN_ROUTER_GAP_OF[name] = float(spec["min_router_gap"])
    return out


GEMMA_NORM = {"gemma"}  # fixtures whose RMSNorm multiplies by (1 + w)
ROUTED = {"mixtral"}  # MoE fixtures whose routers RouterRecorder checks
MIN_ROUTER_GAP_OF = {}  # per-fixture MIN_ROUTER_GAP (fixture.json "min_router_gap")

FIXTURES = [
    # name, model class, config factory, run beam search
    ("llama", LlamaForCausalLM, llama_cfg, True),
    ("mistral", MistralForCausalLM, mistral_cfg, False),
    ("mixtral", MixtralForCausalLM, mixtral_cfg, False),
    ("falcon_mq", FalconForCausalLM, falcon_mq_cfg, False),
    ("falcon_nda", FalconForCausalLM, falcon_nda_cfg, False),
    ("qwen2", Qwen2ForCausalLM, qwen2_cfg, False),
    ("gemma", GemmaForCausalLM, gemma_cfg, False),
    ("phi3", Phi3ForCausalLM, phi3_cfg, False),
    ("gpt2", GPT2LMHeadModel, gpt2_cfg, True),
]


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def make_prompts():
    g = torch.Generator().manual_seed(PROMPT_SEED)
    prompts = {n: torch.randint(3, VOCAB, (1, n), generator=g, dtype=torch.long) for n in PROMPT_LENS}
    rows = [torch.randint(3, VOCAB, (n,), generator=g, dtype=torch.long) for n in BATCH_LENS]
    width = max(BATCH_LENS)
    ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # LEFT padding
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return prompts, ids, mask, rows


@torch.no_grad()
def reinit(model, gemma_norm: bool):
    """Re-initialise all parameters with larger scales so logits are well separated."""
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith("bias"):
            p.normal_(0.0, B_STD)
        elif p.ndim == 1:  # norm weights (RMSNorm / LayerNorm)
            p.normal_(0.0, NORM_NOISE)
            if not gemma_norm:
                p.add_(1.0)
        else:  # linear / conv1d / embedding / fused expert tensors / router
            p.normal_(0.0, W_STD)
    model.tie_weights()


def load(path: Path, cls, dtype):
    m = cls.from_pretrained(path, dtype=dtype, attn_implementation="eager")
    m.eval()
    return m


@torch.no_grad()
def logits_of(model, input_ids, attention_mask=None, position_ids=None):
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    return out.logits.float()


@torch.no_grad()
def greedy(model, prompt, rec=None):
    gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                         num_beams=1, max_new_tokens=GREEDY_NEW, min_new_tokens=GREEDY_NEW,
                         pad_token_id=PAD_ID, eos_token_id=EOS_ID, top_k=None, top_p=None, temperature=None)
    assert gen.shape == (1, prompt.shape[1] + GREEDY_NEW), gen.shape
    # Teacher-forced check: every generated token must be the raw argmax (so min_new_tokens / EOS
    # suppression never changed a decision) and record top1-top2 margins.
    if rec is not None:
        rec.track_gap = True
    lg = logits_of(model, gen)[0]
    if rec is not None:
        rec.track_gap = False
    p = prompt.shape[1]
    margins, consistent = [], True
    for k in range(GREEDY_NEW):
        step = lg[p - 1 + k]
        top2 = torch.topk(step, 2)
        margins.append(float(top2.values[0] - top2.values[1]))
        if int(top2.indices[0]) != int(gen[0, p + k]):
            consistent = False
    return gen, margins, consistent


class NoiseProcessor(LogitsProcessor):
    def __init__(self, seed, eps):
        self.g = torch.Generator().manual_seed(seed)
        self.eps = eps

    def __call__(self, input_ids, scores):
        return scores + (torch.rand(scores.shape, generator=self.g) * 2 - 1) * self.eps


@torch.no_grad()
def beam(model, prompt, noise_seed=None):
    procs = LogitsProcessorList([NoiseProcessor(noise_seed, BEAM_NOISE)] if noise_seed is not None else [])
    out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                         output_scores=True, return_dict_in_generate=True, pad_token_id=PAD_ID,
                         eos_token_id=EOS_ID, top_k=None, top_p=None, temperature=None,
                         logits_processor=procs, **BEAM)
    return out.sequences, out.sequences_scores.float()


class RouterRecorder:
    """Records which experts Mixtral's routers select (top-k) per layer."""

    def __init__(self, model):
        self.hits = {}
        self.min_gap = {}  # min over tracked tokens of (k-th - (k+1)-th router prob): near-tie detector
        self.track_gap = False
        self.handles = []
        for name, mod in model.named_modules():
            if type(mod).__name__.endswith("TopKRouter"):
                self.handles.append(mod.register_forward_hook(self._hook(name)))
        assert self.handles, "no router modules found"

    def _hook(self, name):
        def fn(mod, inp, out):
            idx = out[2] if isinstance(out, tuple) else out
            counts = self.hits.setdefault(name, torch.zeros(mod.num_experts, dtype=torch.long))
            counts += torch.bincount(idx.reshape(-1), minlength=mod.num_experts)
            if self.track_gap:
                probs = torch.softmax(out[0].float(), dim=-1).sort(dim=-1, descending=True).values
                gap = float((probs[:, mod.top_k - 1] - probs[:, mod.top_k]).min())
                self.min_gap[name] = min(gap, self.min_gap.get(name, float("inf")))
        return fn

    def close(self):
        for h in self.handles:
            h.remove()


def tensors_json(ckpt: Path):
    files = sorted(ckpt.glob("*.safetensors"))
    files = [f for f in files if f.name != "reference.safetensors"]
    tensors, metadata = [], {}
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            md = sf.metadata() or {}
            metadata.update(md)
            for k in sf.keys():
                sl = sf.get_slice(k)
                tensors.append({"name": k, "dtype": sl.get_dtype(), "shape": list(sl.get_shape()),
                                "file": f.name})
    tensors.sort(key=lambda t: t["name"])
    return {"files": [f.name for f in files], "tensors": tensors, "metadata": metadata}


def write_json(path: Path, obj):
    # one top-level key per line, values compact (keeps id lists readable and diffs small)
    lines = [f" {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}" for k, v in obj.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def write_tensors_json(path: Path, obj):
    c = dict(separators=(", ", ": "))
    body = ",\n".join("  " + json.dumps(t, **c) for t in obj["tensors"])
    path.write_text("{\n" f' "files": {json.dumps(obj["files"], **c)},\n "tensors": [\n{body}\n ],\n'
                    f' "metadata": {json.dumps(obj["metadata"], **c)}\n}}\n')


def ids_list(t):
    return t.tolist()


# ----------------------------------------------------------------------------------------------
# Per fixture
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def compute_reference(name, cls, ckpt: Path, weight_dtype: str, prompts, b_ids, b_mask, b_rows, do_beam):
    # Weights are read back from disk; compute is always float32 (bf16 weights are upcast on load).
    model = load(ckpt, cls, torch.float32)
    rec = RouterRecorder(model) if name in ROUTED else None
    if rec is not None:
        rec.track_gap = True  # only un-padded single-sequence forwards
    tens, js = {}, {
        "fixture": name, "class": cls.__name__, "weights_dtype": weight_dtype, "compute_dtype": "float32",
        "how": ("loaded from these f32 files with dtype=torch.float32" if weight_dtype == "float32" else
                "loaded from these bf16 files with dtype=torch.float32 (bf16 weights upcast to f32, f32 compute)"),
        "attn_implementation": "eager", "pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID,
    }
    for n, ids in prompts.items():
        lg = logits_of(model, ids)
        tens[f"prompt_len{n}.input_ids"] = ids
        tens[f"prompt_len{n}.logits"] = lg
        js[f"prompt_len{n}.input_ids"] = ids_list(ids)
        js[f"prompt_len{n}.argmax"] = ids_list(lg.argmax(-1))

    # batch, left padding, positions exactly as generate() derives them from the attention mask
    if rec is not None:
        rec.track_gap = False
    pos = model._prepare_position_ids_for_generation(b_ids, {"attention_mask": b_mask})
    blg = logits_of(model, b_ids, attention_mask=b_mask, position_ids=pos)
    tens.update({"batch.input_ids": b_ids, "batch.attention_mask": b_mask, "batch.position_ids": pos,
                 "batch.logits": blg})
    js.update({"batch.input_ids": ids_list(b_ids), "batch.attention_mask": ids_list(b_mask),
               "batch.position_ids": ids_list(pos), "batch.lengths": list(BATCH_LENS), "batch.padding_side": "left",
               "batch.note": "logits at padded (mask==0) positions are not meaningful; compare only mask==1 positions"})
    # sanity: each row's valid logits match the un-padded single-sequence forward
    bdiff = 0.0
    for i, r in enumerate(b_rows):
        single = logits_of(model, r[None])
        bdiff = max(bdiff, float((single[0] - blg[i, -len(r):]).abs().max()))
    js["batch.max_abs_diff_vs_unpadded"] = bdiff
    assert bdiff < 1e-3, f"{name}: batch vs unpadded mismatch {bdiff}"

    gp = prompts[GREEDY_PROMPT_LEN]
    gen, margins, consistent = greedy(model, gp, rec)
    tens.update({"greedy.input_ids": gp, "greedy.output_ids": gen,
                 "greedy.min_margin": torch.tensor([min(margins)], dtype=torch.float32),
                 "greedy.margins": torch.tensor(margins, dtype=torch.float32)})
    js.update({"greedy.input_ids": ids_list(gp), "greedy.output_ids": ids_list(gen),
               "greedy.min_margin": min(margins), "greedy.margins": margins,
               "greedy.params": {"do_sample": False, "num_beams": 1, "max_new_tokens": GREEDY_NEW,
                                 "min_new_tokens": GREEDY_NEW, "eos_token_id": EOS_ID,
                                 "note": "every generated token equals the raw-logit argmax (EOS never top-1), "
                                         "so min_new_tokens changed nothing"}})

    if do_beam:
        seqs, scores = beam(model, gp)
        robust = all(torch.equal(beam(model, gp, noise_seed=t)[0], seqs) for t in range(BEAM_NOISE_TRIALS))
        tens.update({"beam.input_ids": gp, "beam.output_ids": seqs, "beam.sequences_scores": scores})
        js.update({"beam.input_ids": ids_list(gp), "beam.output_ids": ids_list(seqs),
                   "beam.sequences_scores": scores.tolist(),
                   "beam.params": dict(BEAM, do_sample=False, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
                                       output_scores=True, return_dict_in_generate=True),
                   "beam.contains_eos": bool((seqs[:, gp.shape[1]:] == EOS_ID).any()),
                   "beam.robust": robust,
                   "beam.note": (f"sequences_scores = sum of token log-probs / (generated_len ** length_penalty); "
                                 f"output unchanged under {BEAM_NOISE_TRIALS} trials of +-{BEAM_NOISE} uniform "
                                 f"noise on the per-step log-probs")})

    if name == "mistral":
        js["sliding_window"] = model.config.sliding_window
        js["sliding_window.reach"] = sliding_reach(model, prompts[64])
        # the window must matter for the 64-token prompt
        model.config.sliding_window = None
        for layer in model.model.layers:  # in case the attention modules cache it
            if hasattr(layer.self_attn, "sliding_window"):
                layer.self_attn.sliding_window = None
        full = logits_of(model, prompts[64])
        js["sliding_window.max_abs_diff_vs_full_attention"] = float((full - tens["prompt_len64.logits"]).abs().max())
        assert js["sliding_window.max_abs_diff_vs_full_attention"] > 1e-2, "sliding window had no effect"

    routing = None
    if rec is not None:
        routing = {k: v.tolist() for k, v in sorted(rec.hits.items())}
        rec.close()
        js["router_topk_counts_per_layer"] = routing
        js["router_min_topk_prob_gap_per_layer"] = dict(sorted(rec.min_gap.items()))
        js["router_note"] = ("counts over every forward of this script (prompts, batch, greedy, teacher-forced); "
                             "gap = min over un-padded tokens of p[k-1]-p[k] (sorted softmax router probs, k=top_k)")
        routing = {"counts": routing, "min_gap": min(rec.min_gap.values())}

    for k, v in list(tens.items()):
        v = v.detach().clone().contiguous()
        tens[k] = v.to(torch.int64) if not v.is_floating_point() else v.to(torch.float32)
    return tens, js, margins, consistent, routing


@torch.no_grad()
def sliding_reach(model, ids):
    """Perturb token 0 and report the last position whose logits change (2 layers: 2*(W-1) if the
    window covers W keys including the query itself, i.e. key j visible from query i iff i-j < W)."""
    a = logits_of(model, ids)
    ids2 = ids.clone()
    ids2[0, 0] = 3 if int(ids[0, 0]) != 3 else 4
    b = logits_of(model, ids2)
    changed = ((a - b).abs().amax(-1)[0] > 0).nonzero().flatten()
    return int(changed.max())


def build_fixture(out: Path, name, cls, cfg_fn, do_beam, prompts, b_ids, b_mask, b_rows):
    last_err = None
    for attempt in range(MAX_SEED_TRIES):
        seed = MODEL_SEED_BASE + attempt
        torch.manual_seed(seed)
        cfg = cfg_fn()
        cfg._attn_implementation = "eager"
        model = cls(cfg).eval()
        reinit(model, gemma_norm=(name in GEMMA_NORM))
        fdir = out / name
        for sub in ("f32", "bf16"):  # fixture.json (and gguf/, made by another script) stay
            if (fdir / sub).exists():
                shutil.rmtree(fdir / sub)
        results, ok = {}, True
        for dt_name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            ckpt = fdir / dt_name
            ckpt.mkdir(parents=True)
            # f32 is saved first, then the same weights are cast to bf16 (in place) and saved
            model = model.to(dt)
            model.save_pretrained(ckpt, safe_serialization=True)
            tens, js, margins, consistent, routing = compute_reference(
                name, cls, ckpt, "float32" if dt_name == "f32" else "bfloat16",
                prompts, b_ids, b_mask, b_rows, do_beam)
            js["model_seed"] = seed
            mm = min(margins)
            if not consistent or mm <= MIN_MARGIN:
                ok, last_err = False, f"seed {seed} {dt_name}: min margin {mm:.3g}, argmax-consistent={consistent}"
            if routing is not None and any(min(c) == 0 for c in routing["counts"].values()):
                ok, last_err = False, f"seed {seed} {dt_name}: an expert is never routed: {routing}"
            min_gap = MIN_ROUTER_GAP_OF.get(name, MIN_ROUTER_GAP)
            if routing is not None and routing["min_gap"] <= min_gap:
                ok, last_err = False, f"seed {seed} {dt_name}: router near-tie {routing['min_gap']:.3g}"
            if js.get("beam.robust") is False:
                ok, last_err = False, f"seed {seed} {dt_name}: beam search result not robust to score noise"
            results[dt_name] = (tens, js, mm, routing)
            if not ok:
                break
        if not ok:
            print(f"  [{name}] rejected {last_err}", flush=True)
            continue
        for dt_name, (tens, js, mm, routing) in results.items():
            ckpt = fdir / dt_name
            save_file(tens, str(ckpt / "reference.safetensors"), metadata={"format": "pt"})  # one key: HashMap order is random
            write_json(ckpt / "reference.json", js)
            write_tensors_json(ckpt / "tensors.json", tensors_json(ckpt))
        return {dt: (r[2], r[3]) for dt, r in results.items()} | {"seed": seed}
    raise RuntimeError(f"{name}: no seed satisfied the checks; last: {last_err}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/models")
    ap.add_argument("--only", nargs="*",
                    help="rewrite only these fixtures (their directories; the rest of --out and "
                         "VERSIONS.txt stay; each records its versions in <name>/VERSIONS.txt)")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists() and not args.only:
        if any(out.iterdir()) and not (out / "VERSIONS.txt").exists():
            sys.exit(f"refusing to delete {out}: not empty and not a previous output (no VERSIONS.txt)")
        # keep the per-architecture specs (fixture.json) that the run reads back
        specs = {p.parent.name: p.read_text() for p in out.glob("*/fixture.json")}
        shutil.rmtree(out)
        for name, text in specs.items():
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / "fixture.json").write_text(text)
    out.mkdir(parents=True, exist_ok=True)
    all_fixtures = FIXTURES + spec_fixtures(out)
    if args.only:
        unknown = set(args.only) - {f[0] for f in all_fixtures}
        if unknown:
            sys.exit(f"unknown fixture(s): {sorted(unknown)}")
    t0 = time.time()
    prompts, b_ids, b_mask, b_rows = make_prompts()
    summary = {}
    for name, cls, cfg_fn, do_beam in all_fixtures:
        if args.only and name not in args.only:
            continue
        t = time.time()
        res = build_fixture(out, name, cls, cfg_fn, do_beam, prompts, b_ids, b_mask, b_rows)
        summary[name] = res
        extra = ""
        if res["f32"][1] is not None:
            extra = f" router top-k counts (f32) {res['f32'][1]}"
        print(f"{name:11s} seed={res['seed']} min greedy margin f32={res['f32'][0]:.4f} "
              f"bf16={res['bf16'][0]:.4f} ({time.time() - t:.1f}s){extra}", flush=True)

    cmd = "nice -n 10 python3 " + " ".join([sys.argv[0]] + sys.argv[1:])
    # with --only, each rewritten fixture records its own versions (the others keep theirs)
    for versions in [out / n / "VERSIONS.txt" for n in args.only] if args.only else [out / "VERSIONS.txt"]:
        versions.write_text(
            f"python {platform.python_version()}\n"
            f"torch {torch.__version__}\n"
            f"transformers {transformers.__version__}\n"
            f"safetensors {safetensors.__version__}\n"
            f"command (from repository root): {cmd}\n"
            f"torch threads: {torch.get_num_threads()}, device: cpu\n")
    print(f"done in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
