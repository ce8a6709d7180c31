#!/usr/bin/env python3
"""`ohm eval` vs lm-eval (HF backend, transformers on torch CPU) on HellaSwag, timed
alternately on one machine with the same thread count: wall seconds of each whole run (model
load included) and their ratio.

  ohm make-bench-model --shape tinyllama-1.1b --format safetensors-bf16 --out /tmp/bench11b
  cp ../shared/data/tokenizers/mistral-7b-v0.1/{tokenizer.json,tokenizer_config.json,special_tokens_map.json} /tmp/bench11b/
  build/fixture-venv/bin/python scripts/bench_eval.py --model /tmp/bench11b --limit 500 --threads 2

(random weights of TinyLlama's shape with Mistral's 32000-token vocabulary: the scores mean
nothing, the work is real). ohm runs with --dtype f16 and with --quantize q8_0; lm-eval with
dtype float32 (torch's fast CPU path) unless --lm-dtype says otherwise.
"""
import argparse
import bz2
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lm-dtype", default="float32")
    ap.add_argument("--ohm", default=str(ROOT / "build" / "release" / "ohm"))
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "eval"))
    ap.add_argument("--skip-lm-eval", action="store_true")
    args = ap.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OHM_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as td:
        tmp = pathlib.Path(td)
        lines = bz2.open(pathlib.Path(args.data_dir) / "hellaswag" / "hellaswag_val_full.txt.bz2",
                         "rt").read().split("\n")
        with open(tmp / "hellaswag.jsonl", "w") as f:
            for i in range(0, min(len(lines) - 5, 6 * args.limit), 6):
                lab, ctx = lines[i].split(": ", 1)
                f.write(json.dumps({"activity_label": lab, "ctx_a": ctx, "ctx_b": "",
                                    "endings": lines[i + 2:i + 6], "label": lines[i + 1]}) + "\n")
        import lm_eval
        src = pathlib.Path(lm_eval.__file__).parent / "tasks" / "hellaswag"
        (tmp / "tasks").mkdir()
        shutil.copy(src / "utils.py", tmp / "tasks" / "utils.py")
        (tmp / "tasks" / "bench_hellaswag.yaml").write_text(
            (src / "hellaswag.yaml").read_text().replace("task: hellaswag", "task: bench_hellaswag")
            .replace("dataset_path: Rowan/hellaswag",
                     f"dataset_path: json\ndataset_kwargs:\n  data_files:\n"
                     f"    validation: {tmp}/hellaswag.jsonl\n    train: {tmp}/hellaswag.jsonl"))
        lm_cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                  f"pretrained={args.model},dtype={args.lm_dtype}", "--tasks", "bench_hellaswag",
                  "--include_path", str(tmp / "tasks"), "--limit", str(args.limit),
                  "--batch_size", str(args.batch_size), "--device", "cpu",
                  "--output_path", str(tmp / "lm_out")]
        runs = {
            "ohm f16": [args.ohm, "eval", args.model, "--tasks", "hellaswag", "--limit",
                        str(args.limit), "--data-dir", args.data_dir, "-t", str(args.threads),
                        "--batch-size", str(args.batch_size), "--dtype", "f16", "-q",
                        "-o", str(tmp / "ohm_f16.json")],
            "ohm q8_0": [args.ohm, "eval", args.model, "--tasks", "hellaswag", "--limit",
                         str(args.limit), "--data-dir", args.data_dir, "-t", str(args.threads),
                         "--batch-size", str(args.batch_size), "--quantize", "q8_0", "-q",
                         "-o", str(tmp / "ohm_q8.json")],
        }
        if not args.skip_lm_eval:
            runs[f"lm-eval hf {args.lm_dtype}"] = lm_cmd
        times = {k: [] for k in runs}
        for r in range(args.rounds):
            for name, cmd in runs.items():
                t0 = time.time()
                p = subprocess.run(cmd, env=env, capture_output=True, text=True)
                dt = time.time() - t0
                if p.returncode != 0:
                    print(name, "failed:", p.stderr[-2000:], file=sys.stderr)
                    sys.exit(1)
                times[name].append(dt)
                print(f"round {r + 1} {name}: {dt:.1f} s", flush=True)
        for name, ts in times.items():
            print(f"{name}: " + ", ".join(f"{t:.1f}" for t in ts) + " s")
        for f in ("ohm_f16.json", "ohm_q8.json"):
            if (tmp / f).exists():
                print(f, json.dumps(json.load(open(tmp / f))["results"]))
        for f in (tmp / "lm_out").rglob("*.json"):
            print("lm-eval", json.dumps(json.load(open(f))["results"]))


if __name__ == "__main__":
    main()
