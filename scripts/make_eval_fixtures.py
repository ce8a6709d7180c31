#!/usr/bin/env python3
"""Runs the PyPI lm-eval package (0.4.13, HF backend, torch CPU, float32) on the demo model
and writes the fixtures tests/unit/test_eval.cpp compares `ohm eval` with:
tests/fixtures/eval/<case>.json = lm-eval's per-document requests (context, continuation),
loglikelihoods, is_greedy and acc / acc_norm, and its aggregated results.

The data are the files in ../shared/data/eval, converted here to the HF layouts lm-eval's task
definitions read (json rows through `dataset_path: json`); the task YAMLs are lm-eval's own
(hellaswag's process_docs is its utils.py), renamed fx_* so they do not clash with the
registered ones. Python's random.Random samples are recorded too (the few-shot sampler).

arc_easy, arc_challenge, winogrande, truthfulqa_mc1/mc2 and lambada_openai have no files in
../shared/data/eval: they read the hand-written samples in tests/fixtures/eval/data (HF row
format, JSON lines) with lm-eval's own YAMLs and the Python they name (preprocess_winogrande.py,
truthfulqa's utils.py) copied beside them.

Usage (needs `pip install lm-eval==0.4.13` in the venv; CI never runs this):
  build/fixture-venv/bin/python scripts/make_eval_fixtures.py [--data-dir ../shared/data/eval]
"""
import argparse
import bz2
import csv
import json
import pathlib
import random
import shutil
import tempfile

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "eval"
MODEL = ROOT / "models" / "ohm-demo"
MMLU_SUBJECTS = ["anatomy", "abstract_algebra"]
FIXTURE_DATA = OUT / "data"


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def convert(data, tmp):
    d = tmp / "data"
    d.mkdir()
    goals = [json.loads(x) for x in open(data / "piqa" / "valid.jsonl")]
    labels = [int(x) for x in open(data / "piqa" / "valid-labels.lst").read().split()]
    write_jsonl(d / "piqa.jsonl", [dict(g, label=l) for g, l in zip(goals, labels)])
    lines = bz2.open(data / "hellaswag" / "hellaswag_val_full.txt.bz2", "rt").read().split("\n")
    rows = []
    for i in range(0, len(lines) - 5, 6):
        lab, ctx = lines[i].split(": ", 1)
        rows.append({"ind": i // 6, "activity_label": lab, "ctx_a": ctx, "ctx_b": "", "ctx": ctx,
                     "endings": lines[i + 2:i + 6], "label": lines[i + 1]})
    write_jsonl(d / "hellaswag.jsonl", rows)
    for sub in MMLU_SUBJECTS:
        for split in ("test", "dev"):
            with open(data / "mmlu" / split / f"{sub}_{split}.csv", newline="") as f:
                rs = list(csv.DictReader(f))
            write_jsonl(d / f"mmlu_{sub}_{split}.jsonl",
                        [{"question": r["question"], "subject": sub,
                          "choices": [r[f"choice{k}"] for k in range(4)],
                          "answer": int(r["answer"])} for r in rs])
    # wikitext_document_level's pages: a level-1 heading line starts a page.
    pages, cur = [], []
    for line in (data.parent / "corpora" / "wikitext-2-raw" / "wiki.test.raw").read_text(
            encoding="utf-8").split("\n"):
        r = line.replace("= = =", "===").replace("= =", "==").strip()
        if r.startswith("= ") and r.endswith(" ="):
            page = "\n".join(cur)
            if page.strip():
                pages.append({"page": page})
            cur = []
        cur.append(line)
    pages.append({"page": "\n".join(cur)})
    write_jsonl(d / "wikitext.jsonl", pages)
    shutil.copy(data / "gsm8k" / "test.jsonl", d / "gsm8k.jsonl")
    return d


def task_yamls(tmp, d):
    import lm_eval
    src = pathlib.Path(lm_eval.__file__).parent / "tasks"
    t = tmp / "tasks"
    t.mkdir()
    shutil.copy(src / "hellaswag" / "utils.py", t / "utils.py")
    hs = (src / "hellaswag" / "hellaswag.yaml").read_text()
    hs = hs.replace("task: hellaswag", "task: fx_hellaswag").replace(
        "dataset_path: Rowan/hellaswag",
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: {d}/hellaswag.jsonl\n"
        f"    train: {d}/hellaswag.jsonl")
    (t / "fx_hellaswag.yaml").write_text(hs)
    pq = (src / "piqa" / "piqa.yaml").read_text()
    pq = pq.replace("task: piqa", "task: fx_piqa").replace(
        "dataset_path: baber/piqa",
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: {d}/piqa.jsonl\n"
        f"    train: {d}/piqa.jsonl")
    (t / "fx_piqa.yaml").write_text(pq)
    # Few-shot with the random sampler: the validation split as the training split (the
    # evaluated document is left out of its own examples, as lm-eval does when fewshot_split
    # and test_split are both unset).
    (t / "fx_piqa_fewshot.yaml").write_text(
        pq.replace("task: fx_piqa", "task: fx_piqa_fewshot").replace(
            "training_split: train", "training_split: validation"))
    (t / "fx_hellaswag_fewshot.yaml").write_text(
        hs.replace("task: fx_hellaswag", "task: fx_hellaswag_fewshot").replace(
            "training_split: train", "training_split: validation"))
    shutil.copy(src / "wikitext" / "preprocess_wikitext.py", t / "preprocess_wikitext.py")
    wt = (src / "wikitext" / "wikitext.yaml").read_text()
    wt = wt.replace("task: wikitext", "task: fx_wikitext").replace(
        "dataset_path: EleutherAI/wikitext_document_level\ndataset_name: wikitext-2-raw-v1",
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {d}/wikitext.jsonl\n"
        f"    train: {d}/wikitext.jsonl\n    validation: {d}/wikitext.jsonl")
    (t / "fx_wikitext.yaml").write_text(wt)
    gs = (src / "gsm8k" / "gsm8k.yaml").read_text()
    gs = gs.replace("task: gsm8k", "task: fx_gsm8k").replace(
        "dataset_path: openai/gsm8k\ndataset_name: main",
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {d}/gsm8k.jsonl").replace(
        "training_split: train", "training_split: test").replace(
        "fewshot_split: train", "fewshot_split: test")
    (t / "fx_gsm8k.yaml").write_text(gs)
    tmpl = (src / "mmlu" / "default" / "_default_template_yaml").read_text()
    tmpl = tmpl.replace("dataset_path: cais/mmlu\n", "dataset_path: json\n")
    (t / "_fx_mmlu_template_yaml").write_text(tmpl)
    for sub in MMLU_SUBJECTS:
        desc = json.dumps("The following are multiple choice questions (with answers) about "
                          + sub.replace("_", " ") + ".\n\n")
        (t / f"fx_mmlu_{sub}.yaml").write_text(
            f"include: _fx_mmlu_template_yaml\ntask: fx_mmlu_{sub}\ntask_alias: {sub}\n"
            f"tag: fx_mmlu_subset_tasks\ndescription: {desc}\n"
            f"dataset_kwargs:\n  data_files:\n    test: {d}/mmlu_{sub}_test.jsonl\n"
            f"    dev: {d}/mmlu_{sub}_dev.jsonl\n")
    new_task_yamls(src, t)
    (t / "_fx_mmlu_subset.yaml").write_text(
        "group: fx_mmlu_subset\ntask:\n  - fx_mmlu_subset_tasks\naggregate_metric_list:\n"
        "  - metric: acc\n    weight_by_size: True\nmetadata:\n  version: 2\n")
    return t


def new_task_yamls(src, t):
    """arc_easy, arc_challenge, winogrande, truthfulqa_mc1/mc2 and lambada_openai: lm-eval's own
    YAMLs (and the Python they name) reading the HF-layout jsonl samples in
    tests/fixtures/eval/data (these datasets have no files in ../shared/data/eval)."""
    d = FIXTURE_DATA
    for f in ("preprocess_winogrande.py",):
        shutil.copy(src / "winogrande" / f, t / f)
    shutil.copy(src / "truthfulqa" / "utils.py", t / "utils_truthfulqa.py")
    arc = (src / "arc" / "arc_easy.yaml").read_text()
    for sub, name in (("ARC-Easy", "arc_easy"), ("ARC-Challenge", "arc_challenge")):
        y = arc.replace("task: arc_easy", f"task: fx_{name}").replace(
            "dataset_path: allenai/ai2_arc\ndataset_name: ARC-Easy",
            f"dataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    test: {d}/ai2_arc/{sub}/test.jsonl\n").replace("  - ai2_arc\n", "  - fx_ai2_arc\n")
        y = y.replace("training_split: train\nvalidation_split: validation\n", "")
        assert "dataset_path: json" in y, name
        (t / f"fx_{name}.yaml").write_text(y)
    wg = (src / "winogrande" / "default.yaml").read_text()
    wg = wg.replace("task: winogrande", "task: fx_winogrande").replace(
        "dataset_path: allenai/winogrande\ndataset_name: winogrande_xl",
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    validation: {d}/winogrande/winogrande_xl/validation.jsonl\n")
    assert "dataset_path: json" in wg
    (t / "fx_winogrande.yaml").write_text(wg.replace("training_split: train\n", ""))
    # Few-shot (partial evaluation of the examples too) from its own validation split.
    (t / "fx_winogrande_fewshot.yaml").write_text(
        wg.replace("task: fx_winogrande", "task: fx_winogrande_fewshot").replace(
            "training_split: train", "training_split: validation"))
    for mc in ("mc1", "mc2"):
        y = (src / "truthfulqa" / f"truthfulqa_{mc}.yaml").read_text()
        y = y.replace(f"task: truthfulqa_{mc}", f"task: fx_truthfulqa_{mc}").replace(
            "include: truthfulqa_mc1.yaml", "include: fx_truthfulqa_mc1.yaml").replace(
            "utils.process_results_mc2", "utils_truthfulqa.process_results_mc2").replace(
            "  - truthfulqa\n", "  - fx_truthfulqa\n")
        y = y.replace(
            "dataset_path: truthfulqa/truthful_qa\ndataset_name: multiple_choice",
            f"dataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    validation: {d}/truthful_qa/multiple_choice/validation.jsonl\n")
        (t / f"fx_truthfulqa_{mc}.yaml").write_text(y)
    lb = (src / "lambada" / "lambada_openai.yaml").read_text()
    lb = lb.replace("task: lambada_openai", "task: fx_lambada_openai").replace(
        "dataset_path: EleutherAI/lambada_openai\ndataset_name: default",
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {d}/lambada_openai/test.jsonl\n").replace("  - lambada\n", "  - fx_lambada\n")
    assert "dataset_path: json" in lb
    (t / "fx_lambada_openai.yaml").write_text(lb)


# case name -> (lm-eval tasks, ohm tasks, num_fewshot, limit)
CASES = {
    "piqa_0shot": (["fx_piqa"], ["piqa"], 0, 40),
    "hellaswag_0shot": (["fx_hellaswag"], ["hellaswag"], 0, 40),
    "mmlu_0shot": (["fx_mmlu_subset"], ["fx_mmlu_subset"], 0, 20),
    "mmlu_5shot": (["fx_mmlu_subset"], ["fx_mmlu_subset"], 5, 8),
    "piqa_3shot": (["fx_piqa_fewshot"], ["fx_piqa_fewshot"], 3, 20),
    "hellaswag_2shot": (["fx_hellaswag_fewshot"], ["fx_hellaswag_fewshot"], 2, 12),
    "wikitext": (["fx_wikitext"], ["wikitext"], 0, 3),
    "gsm8k_5shot": (["fx_gsm8k"], ["fx_gsm8k"], 5, 20),
    # The samples in tests/fixtures/eval/data (all documents).
    "arc_easy_0shot": (["fx_arc_easy"], ["arc_easy"], 0, None),
    "arc_challenge_0shot": (["fx_arc_challenge"], ["arc_challenge"], 0, None),
    "winogrande_0shot": (["fx_winogrande"], ["winogrande"], 0, None),
    "winogrande_2shot": (["fx_winogrande_fewshot"], ["fx_winogrande_fewshot"], 2, None),
    "truthfulqa_mc1": (["fx_truthfulqa_mc1"], ["truthfulqa_mc1"], 0, None),
    "truthfulqa_mc2": (["fx_truthfulqa_mc2"], ["truthfulqa_mc2"], 0, None),
    "lambada_openai": (["fx_lambada_openai"], ["lambada_openai"], 0, None),
}
RENAME = {"fx_piqa": "piqa", "fx_hellaswag": "hellaswag", "fx_wikitext": "wikitext",
          "fx_arc_easy": "arc_easy", "fx_arc_challenge": "arc_challenge",
          "fx_winogrande": "winogrande", "fx_truthfulqa_mc1": "truthfulqa_mc1",
          "fx_truthfulqa_mc2": "truthfulqa_mc2", "fx_lambada_openai": "lambada_openai"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "eval"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="", help="comma-separated cases (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import lm_eval
    from lm_eval.tasks import TaskManager

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        tmp = pathlib.Path(td)
        d = convert(pathlib.Path(args.data_dir), tmp)
        tm = TaskManager(include_path=str(task_yamls(tmp, d)))
        only = set(args.cases.split(",")) if args.cases else set(CASES)
        for case, (lm_tasks, ohm_tasks, shots, limit) in CASES.items():
            if case not in only:
                continue
            res = lm_eval.simple_evaluate(
                model="hf", model_args=f"pretrained={MODEL},dtype=float32",
                tasks=lm_tasks, num_fewshot=shots, limit=limit,
                # generation one request at a time: left padding would change the numbers
                batch_size=1 if case.startswith("gsm8k") else 8, device="cpu",
                log_samples=True, task_manager=tm)
            rename = lambda n: n.replace("fx_mmlu_", "mmlu_") if n.startswith("fx_mmlu_") and \
                n != "fx_mmlu_subset" and n != "fx_mmlu_subset_tasks" else \
                RENAME.get(n, n)
            samples = {}
            for task, ss in res["samples"].items():
                out = []
                for s in ss:
                    if "exact_match" in s["metrics"]:
                        out.append({"doc_id": s["doc_id"], "filter": s["filter"],
                                    "context": s["arguments"][0][0], "resp": s["resps"][0][0],
                                    "filtered": s["filtered_resps"][0],
                                    "exact_match": s["exact_match"]})
                        continue
                    if "word_perplexity" in s["metrics"]:
                        out.append({"doc_id": s["doc_id"], "ll": float(s["resps"][0][0]),
                                    "words": s["word_perplexity"][1],
                                    "bytes": s["byte_perplexity"][1]})
                        continue
                    if "perplexity" in s["metrics"]:
                        a = s["arguments"][0]
                        a = a if isinstance(a, dict) else {"arg_0": a[0], "arg_1": a[1]}
                        r = s["resps"][0][0]
                        out.append({"doc_id": s["doc_id"], "target": s["target"],
                                    "requests": [{"context": a["arg_0"], "continuation": a["arg_1"],
                                                  "ll": float(r[0]),
                                                  "is_greedy": r[1] in (True, "True")}],
                                    "perplexity": float(s["perplexity"]), "acc": s["acc"]})
                        continue
                    reqs = []
                    for k in range(len(s["arguments"])):
                        a = s["arguments"][k]
                        a = a if isinstance(a, dict) else {"arg_0": a[0], "arg_1": a[1]}
                        r = s["resps"][k][0]
                        reqs.append({"context": a["arg_0"], "continuation": a["arg_1"],
                                     "ll": float(r[0]), "is_greedy": r[1] in (True, "True")})
                    out.append({"doc_id": s["doc_id"], "target": s["target"], "requests": reqs,
                                **{m: s[m] for m in s["metrics"]}})
                samples[rename(task)] = out
            results = {rename(k): {m: v for m, v in r.items()}
                       for k, r in res["results"].items()}
            fx = {"lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.13",
                  "model": "models/ohm-demo", "dtype": "float32", "tasks": ohm_tasks,
                  "num_fewshot": shots, "limit": limit, "fewshot_seed": 1234,
                  "results": results, "n-shot": {rename(k): v for k, v in res["n-shot"].items()},
                  "samples": samples}
            (OUT / f"{case}.json").write_text(json.dumps(fx, indent=1, ensure_ascii=False) + "\n")
            print(case, json.dumps(results))
    # Python's random.Random, as the few-shot sampler draws (seed, population, k, draws...).
    draws = []
    for seed, n, k, reps in [(1234, 40, 4, 3), (1234, 1838, 4, 3), (0, 10, 10, 1),
                             (42, 100, 26, 2), (2**40 + 7, 5000, 3, 2)]:
        r = random.Random(seed)
        draws.append({"seed": seed, "n": n, "k": k,
                      "samples": [r.sample(range(n), k) for _ in range(reps)]})
    (OUT / "py_random.json").write_text(json.dumps(draws) + "\n")


if __name__ == "__main__":
    main()
