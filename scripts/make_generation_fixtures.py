#!/usr/bin/env python3
"""Reference outputs of transformers' logits processors/warpers on fixed score vectors.

Writes tests/fixtures/generation/processors.json: for each case, the input ids, the raw
scores, the processor and its parameters, and the processed scores (-inf as null) exactly as
transformers computes them. Run by developers (pip install torch transformers); CI never runs it.
"""
import json
import math
import os

import torch
import transformers
from transformers.generation import logits_process as lp

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "generation", "processors.json")


def main():
    g = torch.Generator().manual_seed(7)
    V = 40
    cases = []
    seqs = [
        [3, 5, 7, 5, 3, 9, 5],
        [1, 2, 3, 1, 2, 3, 1, 2],
        [10, 11, 12, 13],
    ]
    procs = [
        ("repetition_penalty", {"penalty": 1.3}, lambda p: lp.RepetitionPenaltyLogitsProcessor(p["penalty"])),
        ("repetition_penalty", {"penalty": 0.7}, lambda p: lp.RepetitionPenaltyLogitsProcessor(p["penalty"])),
        ("no_repeat_ngram_size", {"n": 2}, lambda p: lp.NoRepeatNGramLogitsProcessor(p["n"])),
        ("no_repeat_ngram_size", {"n": 3}, lambda p: lp.NoRepeatNGramLogitsProcessor(p["n"])),
        ("bad_words_ids", {"bad_words_ids": [[5], [1, 2], [9, 9, 4], [0]], "eos": [0]},
         lambda p: lp.NoBadWordsLogitsProcessor(p["bad_words_ids"], eos_token_id=p["eos"])),
        ("min_length", {"min_length": 8, "eos": [2, 4]}, lambda p: lp.MinLengthLogitsProcessor(p["min_length"], p["eos"])),
        ("min_new_tokens", {"prompt_len": 3, "min_new_tokens": 5, "eos": [2]},
         lambda p: lp.MinNewTokensLengthLogitsProcessor(p["prompt_len"], p["min_new_tokens"], p["eos"])),
        ("temperature", {"temperature": 0.7}, lambda p: lp.TemperatureLogitsWarper(p["temperature"])),
        ("top_k", {"top_k": 5}, lambda p: lp.TopKLogitsWarper(p["top_k"])),
        ("top_k", {"top_k": 1}, lambda p: lp.TopKLogitsWarper(p["top_k"])),
        ("top_p", {"top_p": 0.9}, lambda p: lp.TopPLogitsWarper(p["top_p"])),
        ("top_p", {"top_p": 0.3}, lambda p: lp.TopPLogitsWarper(p["top_p"])),
        ("min_p", {"min_p": 0.1}, lambda p: lp.MinPLogitsWarper(p["min_p"])),
        ("min_p", {"min_p": 0.5}, lambda p: lp.MinPLogitsWarper(p["min_p"])),
        ("typical_p", {"typical_p": 0.9}, lambda p: lp.TypicalLogitsWarper(p["typical_p"])),
        ("typical_p", {"typical_p": 0.5}, lambda p: lp.TypicalLogitsWarper(p["typical_p"])),
    ]
    for name, params, make in procs:
        for seq in seqs:
            scores = torch.randn(1, V, generator=g) * 3
            out = make(params)(torch.tensor([seq]), scores.clone())
            cases.append({
                "processor": name, "params": params, "input_ids": seq,
                "scores": scores[0].tolist(),
                "expected": [None if math.isinf(v) else v for v in out[0].tolist()],
            })
    # The full sampling chain as GenerationMixin builds it, for the distribution test.
    cfg = transformers.GenerationConfig(do_sample=True, temperature=0.8, top_k=8, top_p=0.9, min_p=0.05)
    chain = [lp.TemperatureLogitsWarper(0.8), lp.TopKLogitsWarper(8), lp.TopPLogitsWarper(0.9),
             lp.MinPLogitsWarper(0.05)]
    scores = torch.randn(1, 16, generator=g) * 2
    x = scores.clone()
    for p in chain:
        x = p(torch.tensor([[1]]), x)
    probs = torch.softmax(x, dim=-1)[0].tolist()
    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "cases": cases,
           "chain": {"config": {"temperature": 0.8, "top_k": 8, "top_p": 0.9, "min_p": 0.05},
                     "scores": scores[0].tolist(), "probs": probs}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=0)
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
