#!/usr/bin/env python3
"""Reference perplexity of models/ohm-demo on held-out Shakespeare, computed with transformers
the way llama.cpp's llama-perplexity does (ohm/eval/perplexity.h): non-overlapping chunks of
N_CTX tokens, BOS replacing the first token when the tokenizer adds one, only positions
N_CTX/2 .. N_CTX-2 scored. Writes tests/fixtures/demo/perplexity.json and the text it used
(tests/fixtures/demo/heldout.txt: the start of the validation split train_demo_model.py held
out, i.e. the last 10% of ../shared/data/corpora/tinyshakespeare.txt).

Usage (from the repository root): python3 scripts/make_perplexity_fixture.py
"""
import json
import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
N_CTX, CHUNKS, CHARS = 128, 8, 6000

text = (ROOT.parent / "shared/data/corpora/tinyshakespeare.txt").read_text()
val = text[int(len(text) * 0.9):]
snippet = val[:CHARS]
out_dir = ROOT / "tests/fixtures/demo"
(out_dir / "heldout.txt").write_text(snippet)

demo = ROOT / "models/ohm-demo"
tok = AutoTokenizer.from_pretrained(demo)
model = AutoModelForCausalLM.from_pretrained(demo, dtype=torch.float32, attn_implementation="eager").eval()
ids = tok(snippet)["input_ids"]
bos = tok.bos_token_id if ids and ids[0] == tok.bos_token_id else None
n_chunks = min(CHUNKS, len(ids) // N_CTX)
assert n_chunks == CHUNKS, f"only {len(ids)} tokens"
first = N_CTX // 2
nll, count, running = 0.0, 0, []
with torch.no_grad():
    for c in range(n_chunks):
        chunk = list(ids[c * N_CTX:(c + 1) * N_CTX])
        if bos is not None:
            chunk[0] = bos
        logits = model(torch.tensor([chunk])).logits[0].float()
        lp = torch.log_softmax(logits.double(), dim=-1)
        for i in range(first, N_CTX - 1):
            nll += -float(lp[i, ids[c * N_CTX + i + 1]])
            count += 1
        running.append(math.exp(nll / count))
res = {"model": "models/ohm-demo", "text": "tests/fixtures/demo/heldout.txt", "n_ctx": N_CTX, "chunks": n_chunks,
       "tokens": len(ids), "tokens_scored": count, "bos_replaced": bos is not None, "nll": nll / count,
       "ppl": math.exp(nll / count), "chunk_ppl": running,
       "how": "transformers float32 eager, log_softmax in float64", "transformers": transformers.__version__,
       "torch": torch.__version__}
(out_dir / "perplexity.json").write_text(json.dumps(res, indent=1) + "\n")
print(json.dumps(res))
