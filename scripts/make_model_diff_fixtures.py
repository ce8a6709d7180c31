#!/usr/bin/env python3
"""Writes tests/fixtures/model_diff: a small fixed sample of tests/diff/model_diff.py's generated
checkpoints with transformers' answer, for the torch-free CI test `diff_models`.

Run with the fixture venv (torch, transformers, safetensors), from the repository root:
    build/fixture-venv/bin/python scripts/make_model_diff_fixtures.py [--out DIR]

Per case <name>/: config.json, model.safetensors or model-*-of-*.safetensors +
model.safetensors.index.json (as generated, breaks included) and expected.json:
    {"seed", "arch", "dtype", "shards", "break", "prompt", "logits": [[...]] (transformers, f32,
     repr of each float32) | "error": "..." (transformers' refusal, or the refusal ohm owes for
     a STRICT_BREAKS case), "names_fault": [strings one of which ohm's message must contain],
     "why": "..." for a regression case}
The sample: REGRESSIONS (seeds whose mismatch was fixed in ohm), then seeds from SEED_BASE up,
each taken when it adds a feature not yet covered (architecture x dtype, sharding, a RoPE type,
a break kind, tied embeddings, ...) and is small (MAX_BYTES of weights), until every feature is
covered or MAX_CASES is reached. Re-running rewrites the directory and VERSIONS.txt.
"""
import argparse
import json
import os
import platform
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "diff"))
import model_diff as md  # noqa: E402

SEED_BASE = 20261206
MAX_CASES = 48
MAX_BYTES = 24_000  # weights per case
# (name, seed, break or None, why): cases whose mismatch was fixed; they stay in the sample.
REGRESSIONS = [
    ("reg_gemma3_attn_softcap", 1234003730, None,
     "Gemma 3 applied attn_logit_softcapping; transformers reads the key but never applies it"),
    ("reg_gemma3_attn_softcap_f16", 1234003703, None,
     "the same with f16 weights, 1 layer, window 2 and final soft-capping"),
    ("reg_int_weight_names_tensor", 7000284, "int_dtype",
     "an integer-typed weight failed at the first matmul without naming the tensor"),
    ("reg_gemma3_negative_layers", 734080380056, "negative_config_key",
     "num_hidden_layers -3 was reported as key 'layer_types' (absent from the file)"),
    ("reg_gpt2_negative_n_embd", 734080380313, "negative_config_key",
     "GPT-2's n_embd -8 was reported as key 'hidden_size' (not a GPT-2 key)"),
    ("reg_qwen3_moe_negative_layers", 98000246, "negative_config_key",
     "num_hidden_layers -2 was reported as key 'mlp_only_layers'"),
    ("reg_f64_weight_converted", 5000016, "f64_dtype",
     "an f64 weight failed at the first matmul; transformers casts it to f32, as ohm now does"),
    ("reg_llama_heads_not_dividing_hidden", 30000200, None,
     "hidden_size not a multiple of the heads with an explicit head_dim: transformers refuses"),
    ("reg_gemma2_heads_not_dividing_hidden", 30000103, None, "the same for Gemma 2"),
    ("reg_gemma3_heads_not_dividing_hidden", 30000115, None, "the same for Gemma 3"),
]


def features(case):
    c = case["config"]
    f = {f"arch:{case['arch']}", f"dtype:{case['dtype']}", f"arch_dtype:{case['arch']}:{case['dtype']}"}
    f.add("sharded" if case["shards"] > 1 else "single")
    rs = c.get("rope_scaling") or c.get("rope_parameters")
    if rs:
        f.add("rope:" + (rs.get("rope_type") or rs.get("type")))
        f.add("rope_parameters" if "rope_parameters" in c else "rope_scaling")
    if c.get("alibi"):
        f.add("alibi")
    if c.get("tie_word_embeddings"):
        f.add("tied")
    if c.get("sliding_window") or c.get("use_sliding_window"):
        f.add(f"window:{case['arch']}")
    if case["break"]:
        f.add("break:" + case["break"]["kind"])
    return f


def write_case(out, name, case, why, torch):
    """Writes one case directory with its expected.json; returns its size in bytes."""
    d = os.path.join(out, name)
    nf = md.write_checkpoint(case, d)
    ref = md.expected_of(case, md.hf_logits(case, d))
    exp = {k: case[k] for k in ("seed", "arch", "dtype", "shards", "break")}
    exp["prompt"] = md.prompt_of(case)
    if "logits" in ref:
        t = torch.tensor(ref["logits"], dtype=torch.float32)
        exp["logits"] = [[float(f"{v:.9g}") for v in row] for row in t.tolist()]
    else:
        exp["error"] = ref["error"].replace(d, "<dir>")  # the same text wherever it is run
        exp["names_fault"] = [] if case.get("base_invalid") else nf  # see model_diff.compare
    if why:
        exp["why"] = why
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    print(f"{name}: {'logits' if 'logits' in exp else 'error'} {size} bytes")
    return size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "model_diff"))
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="(re)write just these REGRESSIONS cases, leaving the rest as it is")
    args = ap.parse_args()
    torch, transformers, _ = md._torch()
    import safetensors
    regressions = [(name, md.gen_case(seed, brk or False), why) for name, seed, brk, why in REGRESSIONS]
    if args.only:
        for name, case, why in regressions:
            if name in args.only:
                shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
                write_case(args.out, name, case, why, torch)
        return
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    wanted = set()
    for s in range(SEED_BASE, SEED_BASE + 3000):  # what the generator can produce
        wanted |= features(md.gen_case(s))
    # The sample is chosen without regard to the regression cases (adding one renames nothing).
    chosen, covered = [], set()
    # Two passes: first everything but the architecture x dtype pairs, then those.
    for pairs in (False, True):
        seed = SEED_BASE
        while len(chosen) < MAX_CASES and not wanted <= covered and seed < SEED_BASE + 20000:
            case = md.gen_case(seed)
            seed += 1
            new = {f for f in features(case) - covered if pairs or not f.startswith("arch_dtype:")}
            if not new:
                continue
            try:
                tensors = md.make_weights(case)
            except Exception:  # noqa: BLE001 -- transformers cannot build it: not in the sample
                continue
            if sum(t.numel() for t in tensors.values()) * 4 > MAX_BYTES:
                continue
            chosen.append((f"{len(chosen):02d}_{case['arch']}_{case['dtype']}", case, None))
            covered |= features(case)
    total = 0
    chosen = regressions + chosen
    for name, case, why in chosen:
        total += write_case(args.out, name, case, why, torch)
    missing = sorted(wanted - covered)
    with open(os.path.join(args.out, "VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\n"
                f"transformers {transformers.__version__}\nsafetensors {safetensors.__version__}\n"
                f"command: python scripts/make_model_diff_fixtures.py (SEED_BASE {SEED_BASE})\n"
                f"cases: {len(chosen)}, {total} bytes\n"
                f"features not covered: {', '.join(missing) if missing else 'none'}\n")
    print(f"{len(chosen)} cases, {total} bytes; not covered: {missing}")


if __name__ == "__main__":
    main()
