#!/usr/bin/env python3
"""`ohm datasets` against PyPI `datasets`/`pyarrow`, side by side in one run (a benchmark, not a
test; issue 17's speed lines).

map-tokenize: the lines of wiki.test.raw (repeated --copies times) tokenized with the llama3
tokenizer (../shared/data/tokenizers/llama3).
  - ohm: the whole `ohm datasets map-tokenize LINES.txt OUT.parquet --tokenizer DIR --threads T`
    process: start-up, tokenizer load, reading the text, tokenizing, writing parquet;
  - datasets: `ds.map(lambda b: tok(b["text"]), batched=True, num_proc=T)` alone on the loaded
    text dataset (its load and the tokenizer load are not timed; it writes its cache files as it
    does by default), transformers' AutoTokenizer (the Rust tokenizers library).
  The outputs are compared id for id.
parquet scan: a parquet file of the tokenized lines (text, input_ids, attention_mask), and each
--scan-file, read through, all columns decoded.
  - ohm: `ohm datasets info FILE --scan --json` (the in-process scan time it reports);
  - pyarrow: `for b in pq.ParquetFile(FILE).iter_batches(): pass` timed inside a fresh python
    process (pyarrow imported before the clock starts), as ohm's scan runs in a fresh process.
Each side alternates --rounds times; the table gives the medians and the ratio.

  python3 bench/datasets_bench.py --ohm build/release/ohm [--copies 4] [--threads 2] [--rounds 3]
"""
import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OHM_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


PYARROW_SCAN = """
import json, sys, time
import pyarrow.parquet as pq
t0 = time.perf_counter()
rows = 0
for b in pq.ParquetFile(sys.argv[1]).iter_batches():
    rows += b.num_rows
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scan-rounds", type=int, default=9)
    ap.add_argument("--scan-file", action="append", default=[],
                    help="also time the scan of this parquet file (repeatable)")
    args = ap.parse_args()
    try:
        import datasets
        import pyarrow.parquet as pq
        from transformers import AutoTokenizer
    except ImportError:
        venv = os.path.join(ROOT, "build", "hub-venv")
        venv_py = os.path.join(venv, "bin", "python")
        if os.path.exists(venv_py) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(venv_py, [venv_py] + sys.argv)
        sys.exit("needs datasets, pyarrow and transformers (scripts/hub-client-venv.sh)")
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    tmp = tempfile.mkdtemp(prefix="ohm-ds-bench-")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(tmp, "cache")
    try:
        tokdir = os.path.join(tmp, "llama3")
        os.makedirs(tokdir)
        src = os.path.join(SHARED, "tokenizers", "llama3")
        with gzip.open(os.path.join(src, "tokenizer.json.gz"), "rb") as f, \
                open(os.path.join(tokdir, "tokenizer.json"), "wb") as g:
            g.write(f.read())
        shutil.copy(os.path.join(src, "tokenizer_config.json"), tokdir)
        with open(os.path.join(SHARED, "corpora", "wikitext-2-raw", "wiki.test.raw"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        lines = lines * args.copies
        txt = os.path.join(tmp, "wiki.txt")
        with open(txt, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        tok = AutoTokenizer.from_pretrained(tokdir)
        ds = datasets.load_dataset("text", data_files=txt, split="train", keep_in_memory=False)
        assert len(ds) == len(lines)

        out = os.path.join(tmp, "tok.parquet")
        ohm_t, hf_t = [], []
        ref = None
        for r in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run([args.ohm, "datasets", "map-tokenize", txt, out, "--tokenizer", tokdir,
                            "--threads", str(args.threads)], check=True, capture_output=True)
            ohm_t.append(time.perf_counter() - t0)
            ds.cleanup_cache_files()
            t0 = time.perf_counter()
            ref = ds.map(lambda b: tok(b["text"]), batched=True, num_proc=args.threads,
                         load_from_cache_file=False)
            hf_t.append(time.perf_counter() - t0)
        got = pq.read_table(out, columns=["input_ids"]).column("input_ids").to_pylist()
        want = ref["input_ids"][:]
        same = got == list(want)
        n_tok = sum(len(x) for x in got)

        def scan_times(path):
            ohm_s, pa_s = [], []
            for r in range(args.scan_rounds):
                j = json.loads(subprocess.run([args.ohm, "datasets", "info", path, "--scan", "--json"],
                                              check=True, capture_output=True, text=True).stdout)
                ohm_s.append(j["configs"][0]["splits"][0]["scan_seconds"])
                # a fresh process each time, as ohm's (Arrow's thread pool and allocator start cold)
                pa = json.loads(subprocess.run([sys.executable, "-c", PYARROW_SCAN, path], check=True,
                                               capture_output=True, text=True).stdout)
                pa_s.append(pa["seconds"])
                assert pa["rows"] == j["configs"][0]["splits"][0]["num_rows"]
            return ohm_s, pa_s

        m = statistics.median
        print(f"lines {len(lines)}, tokens {n_tok}, threads {args.threads}, rounds {args.rounds}, "
              f"ids equal: {same}")
        print(f"map-tokenize  ohm {m(ohm_t):.3f} s   datasets.map(num_proc={args.threads}) {m(hf_t):.3f} s"
              f"   speed-up {m(hf_t) / m(ohm_t):.2f}x   (all: ohm {['%.3f' % x for x in ohm_t]}, "
              f"datasets {['%.3f' % x for x in hf_t]})")
        for path in [out] + args.scan_file:
            ohm_s, pa_s = scan_times(path)
            size = os.path.getsize(path) / 2**20
            print(f"parquet scan {os.path.basename(path)} ({size:.1f} MiB)  ohm {m(ohm_s):.4f} s   "
                  f"pyarrow {m(pa_s):.4f} s   ohm/pyarrow throughput {m(pa_s) / m(ohm_s):.2f}x (best of "
                  f"each: {min(pa_s) / min(ohm_s):.2f}x)   (all: ohm {ohm_s}, "
                  f"pyarrow {['%.4f' % x for x in pa_s]})")
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
