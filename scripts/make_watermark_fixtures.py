#!/usr/bin/env python3
"""Reference fixtures for ohm's watermarking: transformers' WatermarkLogitsProcessor (greedy
generate(..., watermarking_config=...)) and WatermarkDetector on the demo model.

CPU only, deterministic. Not run by CI; its output is committed as
tests/fixtures/watermark/cases.json.

Usage (from the repository root, with torch + transformers, e.g. build/fixture-venv):
    nice -n 10 build/fixture-venv/bin/python scripts/make_watermark_fixtures.py

Per configuration (lefthash and selfhash, different gamma / delta / context_width / key):
  - greenlists: the first 16 green ids and the green-list size for a few contexts;
  - greedy: per prompt, the prompt ids, the greedy output without and with the watermark;
  - detect: per text (watermarked outputs, unwatermarked outputs, a tokenized passage with BOS),
    the detector's num_tokens_scored, num_green_tokens, z_score, p_value, with
    ignore_repeated_ngrams false and true.
"""
import argparse
import importlib.metadata
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, WatermarkDetector, WatermarkingConfig

CONFIGS = [
    {"greenlist_ratio": 0.25, "bias": 2.0, "seeding_scheme": "lefthash", "context_width": 1,
     "hashing_key": 15485863},
    {"greenlist_ratio": 0.5, "bias": 1.5, "seeding_scheme": "selfhash", "context_width": 4,
     "hashing_key": 15485863},
    {"greenlist_ratio": 0.4, "bias": 3.0, "seeding_scheme": "lefthash", "context_width": 2,
     "hashing_key": 12345},
    {"greenlist_ratio": 0.25, "bias": 2.0, "seeding_scheme": "selfhash", "context_width": 1,
     "hashing_key": 987654321},
]
PROMPTS = ["ROMEO:", "First Citizen:\nBefore we proceed any further, hear me speak.",
           "To be, or not to be"]
PASSAGE = ("KING RICHARD III:\nNow is the winter of our discontent\nMade glorious summer by this "
           "sun of York;\nAnd all the clouds that lour'd upon our house\nIn the deep bosom of the "
           "ocean buried.")
NEW_TOKENS = 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/ohm-demo")
    ap.add_argument("--out", default="tests/fixtures/watermark/cases.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    model.eval()
    out = {"model": args.model, "transformers": importlib.metadata.version("transformers"),
           "torch": torch.__version__, "new_tokens": NEW_TOKENS, "cases": []}
    plain = {}
    for p in PROMPTS:
        ids = tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            g = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)
        plain[p] = g[0, ids.shape[1]:].tolist()
    for cfg in CONFIGS:
        wcfg = WatermarkingConfig(**cfg)
        proc = wcfg.construct_processor(model.config.vocab_size, "cpu")
        case = {"config": cfg, "greenlists": [], "greedy": [], "detect": []}
        for ctx in ([1], [5, 17], [100, 2, 3, 4, 4000], [4095, 0, 7, 7, 7, 9]):
            if len(ctx) < cfg["context_width"]:
                continue
            gl = proc._get_greenlist_ids(torch.tensor(ctx))
            case["greenlists"].append({"context": ctx, "size": len(gl), "first": gl[:16].tolist()})
        for p in PROMPTS:
            ids = tok(p, return_tensors="pt").input_ids
            with torch.no_grad():
                g = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                   watermarking_config=wcfg)
            case["greedy"].append({"prompt": p, "input_ids": ids[0].tolist(),
                                   "plain": plain[p], "watermarked": g[0, ids.shape[1]:].tolist()})
        texts = [("watermarked:" + c["prompt"], c["watermarked"]) for c in case["greedy"]]
        texts += [("plain:" + c["prompt"], c["plain"]) for c in case["greedy"]]
        texts.append(("passage", tok(PASSAGE).input_ids))
        for name, ids in texts:
            for ignore in (False, True):
                det = WatermarkDetector(model_config=model.config, device="cpu",
                                        watermarking_config=wcfg, ignore_repeated_ngrams=ignore)
                r = det(torch.tensor([ids]), z_threshold=3.0, return_dict=True)
                case["detect"].append({
                    "name": name, "ids": ids, "ignore_repeated_ngrams": ignore,
                    "num_tokens_scored": int(r.num_tokens_scored[0]),
                    "num_green_tokens": int(r.num_green_tokens[0]),
                    "z_score": float(r.z_score[0]), "p_value": float(r.p_value[0]),
                    "prediction": bool(r.prediction[0])})
        changed = sum(c["plain"] != c["watermarked"] for c in case["greedy"])
        print(f"{cfg['seeding_scheme']} gamma={cfg['greenlist_ratio']} delta={cfg['bias']}: "
              f"{changed}/{len(PROMPTS)} greedy outputs changed by the watermark")
        out["cases"].append(case)
    out["bos_token_id"] = model.config.bos_token_id
    out["vocab_size"] = model.config.vocab_size
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
