#!/usr/bin/env python3
"""`ohm datasets` against PyPI `datasets` and `pyarrow` (issue 17, item 1):
- ohm reads what `datasets` writes (parquet, Arrow, jsonl, json, csv) with equal rows;
- `datasets.load_dataset` reads what ohm writes (parquet, Arrow IPC) with equal features and rows;
- a directory with README `configs:` (two configs, three splits) resolves as `datasets` does;
- map-tokenize gives transformers' input_ids; dedup drops exact and near duplicates;
- bad input fails with exit 1 and a message naming the file, the line/row and the column;
- push uploads a dataset repo to `ohm hub serve`, and `ohm datasets info` reads it back by id;
- `ohm datasets deid` on parquet, Arrow and text keeps the features and the other columns.

Usage: test_datasets_interop.py --ohm build/.../ohm [--keep]
Exit codes: 0 all passed, 1 a check failed, 77 `datasets`/pyarrow not installed (ctest: skipped).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hub"))
import hubtest  # noqa: E402  (tests/hub/hubtest.py: check recorder, venv re-exec, hub server)
from hubtest import ROOT, check, finish  # noqa: E402

ROWS = {
    "text": ["the quick brown fox", "", "naïve café ünïcode — 中文", "a,b \"quoted\"", "last one"],
    "label": [0, 1, 1, 0, 1],
    "score": [0.5, -1.25, 3.0, 1e-3, 2.5],
    "flag": [True, False, True, True, False],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("datasets", "pyarrow", "transformers"):
        print("skipped: datasets/pyarrow/transformers not installed (scripts/hub-client-venv.sh)")
        return 77
    import datasets
    import pyarrow.parquet as pq
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    ohm = os.path.abspath(args.ohm)
    tmp = tempfile.mkdtemp(prefix="ohm-datasets-")
    os.environ["HF_HOME"] = os.path.join(tmp, "hf_home")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(tmp, "ds_cache")
    for k in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        os.environ.pop(k, None)

    def ohm_run(*a, rc=0):
        r = subprocess.run([ohm, *a], capture_output=True, text=True, timeout=300)
        if rc is not None and r.returncode != rc:
            raise AssertionError(f"ohm {' '.join(a)} -> {r.returncode} (want {rc}): {r.stderr[-2000:]}")
        return r

    def ohm_rows(src, *extra):
        out = ohm_run("datasets", "head", src, "-n", "1000000", *extra).stdout
        return [json.loads(line) for line in out.splitlines()]

    def same_rows(a, b):
        assert len(a) == len(b), f"{len(a)} rows vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert x.keys() == y.keys(), f"row {i}: columns {sorted(x)} vs {sorted(y)}"
            for k in x:
                if isinstance(x[k], float) or isinstance(y[k], float):
                    assert math.isclose(x[k], y[k], rel_tol=1e-12), f"row {i} {k}: {x[k]} vs {y[k]}"
                else:
                    assert x[k] == y[k], f"row {i} {k}: {x[k]!r} vs {y[k]!r}"

    nested = dict(ROWS, tokens=[t.split() for t in ROWS["text"]],
                  meta=[{"id": i, "src": f"s{i}"} for i in range(5)])
    features = datasets.Features({
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["neg", "pos"]),
        "score": datasets.Value("float64"),
        "flag": datasets.Value("bool"),
        "tokens": datasets.List(datasets.Value("string")),
        "meta": {"id": datasets.Value("int32"), "src": datasets.Value("string")},
    })
    ds = datasets.Dataset.from_dict(nested, features=features)
    flat = datasets.Dataset.from_dict(ROWS)
    src = os.path.join(tmp, "src")
    os.makedirs(src)

    # --- ohm loads what datasets writes ---
    def read_parquet():
        p = os.path.join(src, "d.parquet")
        ds.to_parquet(p)
        same_rows(ohm_rows(p), ds.to_list())

    def read_arrow():
        d = os.path.join(src, "saved")
        ds.save_to_disk(d)  # data-00000-of-00001.arrow: an IPC stream
        arrow = [os.path.join(d, f) for f in os.listdir(d) if f.endswith(".arrow")]
        same_rows(ohm_rows(arrow[0]), ds.to_list())

    def read_jsonl():
        p = os.path.join(src, "d.jsonl")
        ds.to_json(p)
        same_rows(ohm_rows(p), ds.to_list())

    def read_json_array():
        p = os.path.join(src, "arr.json")
        flat.to_json(p, lines=False)
        same_rows(ohm_rows(p), flat.to_list())

    def read_csv():
        p = os.path.join(src, "d.csv")
        flat.to_csv(p, index=False)
        ohm_got = ohm_rows(p)
        # csv has no types: compare with what datasets itself reads back from the csv (an empty
        # field is null for both)
        same_rows(ohm_got, datasets.load_dataset("csv", data_files=p, split="train").to_list())

    for name, fn in [("read datasets' parquet", read_parquet), ("read datasets' arrow", read_arrow),
                     ("read datasets' jsonl", read_jsonl), ("read json array", read_json_array),
                     ("read datasets' csv", read_csv)]:
        check(name, fn)

    # --- datasets loads what ohm writes ---
    def write_back(fmt):
        def fn():
            out = os.path.join(tmp, f"out-{fmt}")
            ohm_run("datasets", "convert", os.path.join(src, "d.parquet"), out, "--format", fmt)
            got = datasets.load_dataset(out, split="train")
            assert got.features == features, f"{got.features} != {features}"
            assert got.to_list() == ds.to_list()
            builder = "parquet" if fmt == "parquet" else "arrow"
            one = datasets.load_dataset(builder, data_files=os.path.join(out, f"train.{fmt}"), split="train")
            assert one.features == features
        return fn

    check("load_dataset reads ohm's parquet", write_back("parquet"))
    check("load_dataset reads ohm's arrow", write_back("arrow"))

    def jsonl_to_parquet():
        out = os.path.join(tmp, "from-jsonl.parquet")
        ohm_run("datasets", "convert", os.path.join(src, "d.jsonl"), out)
        got = datasets.load_dataset("parquet", data_files=out, split="train")
        ref = datasets.load_dataset("json", data_files=os.path.join(src, "d.jsonl"), split="train")
        assert got.features == ref.features, f"{got.features} != {ref.features}"
        assert got.to_list() == ref.to_list()
        # pyarrow sees the same table
        assert pq.read_table(out).num_rows == len(ds)

    check("jsonl -> parquet matches datasets' json loader", jsonl_to_parquet)

    # --- README configs: two configs, three splits ---
    repo = os.path.join(tmp, "repo")

    def configs():
        for sub, n in (("en", 4), ("fr", 3)):
            for split in ("train", "validation", "test"):
                d = os.path.join(repo, sub)
                os.makedirs(d, exist_ok=True)
                datasets.Dataset.from_dict({"text": [f"{sub} {split} {i}" for i in range(n)],
                                            "n": list(range(n))}).to_parquet(
                    os.path.join(d, f"{split}-00000-of-00001.parquet"))
        with open(os.path.join(repo, "README.md"), "w") as f:
            f.write("---\nconfigs:\n- config_name: en\n  default: true\n  data_files:\n"
                    "  - split: train\n    path: en/train-*\n  - split: validation\n    path: en/validation-*\n"
                    "  - split: test\n    path: en/test-*\n"
                    "- config_name: fr\n  data_files:\n  - split: train\n    path: fr/train-*\n"
                    "  - split: validation\n    path: fr/validation-*\n  - split: test\n    path: fr/test-*\n"
                    "---\n# test\n")
        info = json.loads(ohm_run("datasets", "info", repo, "--json").stdout)
        got = {c["config_name"]: {s["name"]: s["num_rows"] for s in c["splits"]} for c in info["configs"]}
        for cfg in ("en", "fr"):
            ref = datasets.load_dataset(repo, cfg)
            assert got[cfg] == {k: len(v) for k, v in ref.items()}, f"{cfg}: {got[cfg]}"
            same_rows(ohm_rows(repo, "--config", cfg, "--split", "validation"), ref["validation"].to_list())
        out = os.path.join(tmp, "fr-out")
        ohm_run("datasets", "convert", repo, out, "--config", "fr")
        back = datasets.load_dataset(out)
        assert {k: len(v) for k, v in back.items()} == {"train": 3, "validation": 3, "test": 3}, back

    check("README configs and splits as datasets resolves them", configs)

    # --- bad input names the file, the line/row and the column ---
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)

    def expect_error(args, *needles):
        r = ohm_run(*args, rc=1)
        for n in needles:
            assert n in r.stderr, f"{n!r} not in {r.stderr!r}"

    def bad_jsonl():
        p = os.path.join(bad, "broken.jsonl")
        with open(p, "w") as f:
            f.write('{"a": 1}\n{"a": 2}\n{"a": 3,, }\n')
        expect_error(["datasets", "head", p], "broken.jsonl", "line 3", "malformed JSON")

    def jsonl_type_change():
        p = os.path.join(bad, "types.jsonl")
        with open(p, "w") as f:
            f.write("".join('{"a": %d, "b": "x"}\n' % i for i in range(3)) + '{"a": "oops", "b": "y"}\n')
        expect_error(["datasets", "convert", p, os.path.join(bad, "o.parquet")], "types.jsonl", "'a'",
                     "line 4")

    def ragged_csv():
        p = os.path.join(bad, "ragged.csv")
        with open(p, "w") as f:
            f.write("a,b\n1,2\n3,4\n5,6,7\n")
        expect_error(["datasets", "head", p], "ragged.csv", "row 4", "expected 2 columns (a, b), got 3")

    def shard_conflict():
        d = os.path.join(bad, "shards")
        os.makedirs(d)
        datasets.Dataset.from_dict({"x": [1, 2]}).to_parquet(os.path.join(d, "train-0.parquet"))
        datasets.Dataset.from_dict({"x": ["a", "b"]}).to_parquet(os.path.join(d, "train-1.parquet"))
        expect_error(["datasets", "convert", d, os.path.join(bad, "s.parquet")], "train-0.parquet",
                     "train-1.parquet", "'x'")

    def unknown_config_split():
        expect_error(["datasets", "head", repo, "--config", "de"], "no config 'de'", "en, fr")
        expect_error(["datasets", "head", repo, "--config", "fr", "--split", "dev"], "no split 'dev'",
                     "train, validation, test")

    for name, fn in [("malformed jsonl line", bad_jsonl), ("jsonl column type change", jsonl_type_change),
                     ("ragged csv row", ragged_csv), ("schema conflict between shards", shard_conflict),
                     ("unknown config and split", unknown_config_split)]:
        check(name, fn)

    # --- deid on parquet, Arrow IPC and text: the other columns and the features kept, the text
    # as the jsonl path rewrites it, dropped rows across record batches ---
    def deid_formats():
        d = os.path.join(tmp, "deid")
        os.makedirs(d)
        texts = ["mail jane.doe@example.com today", None, "call +1 415 555 0132 now", "nothing here",
                 "from 192.168.1.20 via 10.0.0.1", "card 4111 1111 1111 1111", "plain words"] * 3
        feats = datasets.Features({"text": datasets.Value("string"), "n": datasets.Value("int32"),
                                   "label": datasets.ClassLabel(names=["a", "b"])})
        src_ds = datasets.Dataset.from_dict(
            {"text": texts, "n": list(range(len(texts))), "label": [i % 2 for i in range(len(texts))]},
            features=feats)
        pq_in = os.path.join(d, "in.parquet")
        src_ds.to_parquet(pq_in, batch_size=4)  # row groups of 4: rows dropped across batches
        assert pq.ParquetFile(pq_in).num_row_groups > 1
        jl_in = os.path.join(d, "in.jsonl")
        src_ds.to_json(jl_in)
        for mode in ("mask", "drop"):
            ohm_run("datasets", "deid", jl_in, os.path.join(d, f"{mode}.jsonl"), "--columns", "text",
                    "--mode", mode)
            want = [json.loads(line) for line in open(os.path.join(d, f"{mode}.jsonl"))]
            out = os.path.join(d, f"{mode}.parquet")
            ohm_run("datasets", "deid", pq_in, out, "--columns", "text", "--mode", mode)
            got = datasets.load_dataset("parquet", data_files=out, split="train")
            assert got.features == feats, f"{got.features} != {feats}"
            assert got.to_list() == want, f"{mode}: {got.to_list()} != {want}"
        assert len(want) < len(texts) and "<EMAIL>" in open(os.path.join(d, "mask.jsonl")).read()
        # Arrow IPC (datasets' own cache format)
        saved = os.path.join(d, "saved")
        src_ds.save_to_disk(saved)
        arrow_in = [os.path.join(saved, f) for f in os.listdir(saved) if f.endswith(".arrow")][0]
        ohm_run("datasets", "deid", arrow_in, os.path.join(d, "mask.arrow"), "--columns", "text")
        got = datasets.load_dataset("arrow", data_files=os.path.join(d, "mask.arrow"), split="train")
        assert got.features == feats
        want = [json.loads(line) for line in open(os.path.join(d, "mask.jsonl"))]
        assert got.to_list() == want
        # text: one row per line, column "text"
        with open(os.path.join(d, "in.txt"), "w") as f:
            f.write("".join((t or "") + "\n" for t in texts))
        ohm_run("datasets", "deid", os.path.join(d, "in.txt"), os.path.join(d, "mask.txt"),
                "--columns", "text")
        got = open(os.path.join(d, "mask.txt")).read().split("\n")[:-1]
        assert got == [r["text"] or "" for r in want], got
        # a non-string column, a missing column: errors naming them, no output left
        bad_out = os.path.join(d, "bad.parquet")
        expect_error(["datasets", "deid", pq_in, bad_out, "--columns", "n"], "in.parquet", "'n'",
                     "not a string")
        expect_error(["datasets", "deid", pq_in, bad_out, "--columns", "zzz"], "no column 'zzz'")
        assert not os.path.exists(bad_out)

    check("deid on parquet, arrow and text keeps features and other columns", deid_formats)

    # --- transforms through the CLI ---
    demo = os.path.join(ROOT, "models", "ohm-demo")

    def map_tokenize():
        from transformers import AutoTokenizer
        out = os.path.join(tmp, "tok.parquet")
        ohm_run("datasets", "map-tokenize", os.path.join(src, "d.parquet"), out, "--tokenizer", demo,
                "--threads", "2", "--batch-size", "2")
        got = datasets.load_dataset("parquet", data_files=out, split="train")
        tok = AutoTokenizer.from_pretrained(demo)
        ref = ds.map(lambda b: tok(b["text"]), batched=True)
        got, ref = got.to_dict(), ref.to_dict()  # (a Column does not compare as a list)
        assert got["input_ids"] == ref["input_ids"], (got["input_ids"], ref["input_ids"])
        assert got["attention_mask"] == ref["attention_mask"]
        assert got["text"] == ROWS["text"] and got["label"] == ROWS["label"]

    def dedup():
        p = os.path.join(tmp, "dups.jsonl")
        base = "the cat sat on the mat while the dog slept by the warm fire all night long"
        rows = [{"text": base, "id": 0}, {"text": "something else entirely different here", "id": 1},
                {"text": base, "id": 2}, {"text": base.replace("night", "evening"), "id": 3}]
        with open(p, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        out = os.path.join(tmp, "exact.parquet")
        ohm_run("datasets", "dedup", p, out, "--columns", "text")
        assert [r["id"] for r in pq.read_table(out).to_pylist()] == [0, 1, 3]
        near = os.path.join(tmp, "near.parquet")
        ohm_run("datasets", "dedup", p, near, "--near", "--threshold", "0.5")
        assert [r["id"] for r in pq.read_table(near).to_pylist()] == [0, 1]

    check("map-tokenize equals transformers' tokenizer in datasets.map", map_tokenize)
    check("dedup exact and near", dedup)

    # --- push to ohm hub serve, read back by id ---
    def push():
        data = os.path.join(tmp, "hub")
        ohm_run("hub", "user", "add", "alice", "--data", data)
        token = ohm_run("hub", "token", "create", "--data", data, "--user", "alice", "--scope",
                        "write").stdout.strip()
        server, base = hubtest.start_server(ohm, data)
        try:
            os.environ.update({"HF_ENDPOINT": base, "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1"})
            ohm_run("datasets", "push", repo, "alice/two-configs")
            info = json.loads(ohm_run("datasets", "info", "alice/two-configs", "--json").stdout)
            assert [c["config_name"] for c in info["configs"]] == ["en", "fr"], info
            same_rows(ohm_rows("alice/two-configs", "--config", "fr", "--split", "test"),
                      datasets.load_dataset(repo, "fr", split="test").to_list())
        finally:
            server.terminate()
            server.wait(timeout=30)
            for k in ("HF_ENDPOINT", "HF_TOKEN"):
                os.environ.pop(k, None)

    check("push a dataset repo and read it back by id", push)
    return finish(tmp, args.keep)


if __name__ == "__main__":
    sys.exit(main())
