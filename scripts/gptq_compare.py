#!/usr/bin/env python3
"""GPTQModel's GPTQ on the same data as `ohm quantize --method gptq`, and transformers' perplexity.

Not run by CI (GPTQModel on CPU takes minutes). It
  1. cuts the calibration text (the first --split of TEXT, by bytes) into --samples windows of
     --seq-len tokens from its start, tokenized without special tokens: the samples
     `ohm quantize --method gptq --calibration` takes from the same file;
  2. quantizes MODEL with GPTQModel (bits, group size, sym, desc_act, damp as given) into
     OUT/gptqmodel (unless it is there already);
  3. prints, as one JSON object, transformers' float32 perplexity of MODEL, of OUT/gptqmodel and
     of every --checkpoint (e.g. ohm's) on the rest of TEXT, by llama-perplexity's procedure as
     `ohm perplexity -c CTX` runs it (chunks of CTX tokens, the second half of each scored,
     log-softmax in float64).

It also writes OUT/train.txt and OUT/heldout.txt (the split), for `ohm quantize` and
`ohm perplexity`. Usage (repository root; build/fixture-venv has gptqmodel):
    GPTQMODEL_CPU_WORKERS=2 build/fixture-venv/bin/python scripts/gptq_compare.py OUT \\
        [--model models/ohm-demo] [--text ../shared/data/corpora/tinyshakespeare.txt] \\
        [--samples 128] [--seq-len 512] [--bits 4] [--group-size 128] [--sym] [--desc-act] \\
        [--ctx 512] [--checkpoint DIR]... [--backend gptq_torch]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def perplexity(model_dir: str, ids: list[int], ctx: int, bos: int | None,
               chunks: int | None = None, backend: str | None = None) -> float:
    kw = {}
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if backend and "quantization_config" in cfg:
        # GPTQModel picks a kernel by itself otherwise (TorchCpuAvx512Linear, bf16 arithmetic,
        # refuses 704 inputs at g128); a loading attribute overrides the checkpoint's config.
        from transformers import GPTQConfig
        kw["quantization_config"] = GPTQConfig(bits=cfg["quantization_config"]["bits"],
                                               backend=backend)
    m = AutoModelForCausalLM.from_pretrained(model_dir, device_map="cpu", dtype=torch.float32,
                                             **kw)
    m.eval()
    first = ctx // 2
    nll, count = 0.0, 0
    with torch.no_grad():
        n = len(ids) // ctx if chunks is None else min(chunks, len(ids) // ctx)
        for c in range(n):
            chunk = list(ids[c * ctx:(c + 1) * ctx])
            if bos is not None:
                chunk[0] = bos
            logits = m(torch.tensor([chunk])).logits[0].double()
            lp = torch.log_softmax(logits[first:ctx - 1], dim=-1)
            tgt = torch.tensor(chunk[first + 1:ctx])
            nll -= lp.gather(1, tgt[:, None]).sum().item()
            count += ctx - 1 - first
    return float(torch.exp(torch.tensor(nll / count)).item())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--model", default="models/ohm-demo")
    ap.add_argument("--text", default="../shared/data/corpora/tinyshakespeare.txt")
    ap.add_argument("--split", type=float, default=0.9)
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--sym", action="store_true")
    ap.add_argument("--desc-act", action="store_true")
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--checkpoint", action="append", default=[])
    ap.add_argument("--chunks", type=int, default=None, help="score the first N chunks only")
    ap.add_argument("--backend", default="gptq_torch",
                    help="GPTQModel kernel for quantized checkpoints (gptq_torch: dequantize, "
                         "float32 matmul; 'auto' lets GPTQModel choose)")
    ap.add_argument("--only-checkpoints", action="store_true",
                    help="skip MODEL and GPTQModel (perplexity of the --checkpoint dirs only)")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    data = open(args.text, "rb").read()
    cut = int(len(data) * args.split)
    train, held = os.path.join(args.out, "train.txt"), os.path.join(args.out, "heldout.txt")
    open(train, "wb").write(data[:cut])
    open(held, "wb").write(data[cut:])

    tok = AutoTokenizer.from_pretrained(args.model)
    ids = tok(data[:cut].decode("utf-8"), add_special_tokens=False)["input_ids"]
    n = min(args.samples, len(ids) // args.seq_len)
    calib = [{"input_ids": torch.tensor([ids[i * args.seq_len:(i + 1) * args.seq_len]]),
              "attention_mask": torch.ones(1, args.seq_len, dtype=torch.long)}
             for i in range(n)]

    gdir = os.path.join(args.out, "gptqmodel")
    seconds = None
    if not args.only_checkpoints and not os.path.exists(os.path.join(gdir, "config.json")):
        from gptqmodel import GPTQModel, QuantizeConfig
        qc = QuantizeConfig(bits=args.bits, group_size=args.group_size, desc_act=args.desc_act,
                            sym=args.sym, damp_percent=args.damp)
        t0 = time.time()
        model = GPTQModel.load(args.model, qc, device="cpu")
        model.quantize(calib, batch_size=1)
        model.save(gdir)
        seconds = time.time() - t0

    held_ids = tok(data[cut:].decode("utf-8"), add_special_tokens=True)["input_ids"]
    bos = tok.bos_token_id if held_ids and held_ids[0] == tok.bos_token_id else None
    out = {"samples": n, "seq_len": args.seq_len, "bits": args.bits,
           "group_size": args.group_size, "sym": args.sym, "desc_act": args.desc_act,
           "ctx": args.ctx, "chunks": args.chunks, "backend": args.backend,
           "heldout_tokens": len(held_ids),
           "gptqmodel_seconds": seconds, "ppl": {}}
    ref = [] if args.only_checkpoints else [("f32", args.model), ("gptqmodel", gdir)]
    for name, d in ref + [(c, c) for c in args.checkpoint]:
        out["ppl"][name] = perplexity(d, held_ids, args.ctx, bos, args.chunks,
                                     None if args.backend == "auto" else args.backend)
        print(name, out["ppl"][name], flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
