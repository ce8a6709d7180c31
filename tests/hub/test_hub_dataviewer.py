#!/usr/bin/env python3
"""The Hub's dataset side (issue 17 item 2) against `ohm hub serve`, with PyPI `datasets`.

Usage: test_hub_dataviewer.py --ohm build/.../ohm [--out DIR] [--keep]
Pushes a dataset repo with two configs (README `configs:`, `default: true` on one; jsonl, as
`datasets` takes one builder for all configs of a repo) and three splits each, then checks:
  - load_dataset(id[, config]) and load_dataset(..., streaming=True) give the source's rows, and
    the features `datasets` itself infers from the source files;
  - the refs/convert/parquet branch: listed under "converts", <config>/<split>/0000.parquet files
    whose rows (pyarrow) equal the source; re-pushes without data changes add no convert commit;
    clients cannot commit to it or delete it;
  - the datasets-server endpoints (/datasets-server/splits|parquet|first-rows|rows|size|info|
    is-valid) and /api/datasets/{id}/parquet[...] in their documented shapes, with X-Revision;
  - hostile parameters (missing/invalid dataset, unknown config/split, path tricks, huge
    offset/length) get 4xx JSON naming the parameter;
  - private and gated datasets: viewer endpoints and the parquet branch exactly as visible as
    the repo (anonymous 401, other users 404, gate 401/403, like the repo's own endpoints);
  - a malformed data file: recorded conversion error on the endpoints, no branch;
  - the cap: a split over --viewer-max-split-rows is converted partially (partial-<split>/);
  - the web UI (headless Chromium): the first rows as a table, splits with row counts and sizes,
    hostile cell values shown as text; screenshot dataset-viewer.png in --out.
Prints the conversion time of a few-MB dataset and the /first-rows latency.
Exit codes: 0 passed, 1 a check failed, 77 huggingface_hub/datasets missing (skipped).
"""
import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser as browser_mod  # noqa: E402  (tests/hub/browser.py)
import hubtest  # noqa: E402
from hubtest import check, run  # noqa: E402

CAP_ROWS = 60000
HOSTILE = "<script>alert('cell')</script><img src=x onerror=alert('img')>"


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


README = """---
configs:
- config_name: en
  default: true
  data_files:
  - split: train
    path: en/train.jsonl
  - split: validation
    path: en/validation.jsonl
  - split: test
    path: en/test.jsonl
- config_name: zh
  data_files:
  - split: train
    path: zh/train-*.jsonl
  - split: validation
    path: zh/validation.jsonl
  - split: test
    path: zh/test.jsonl
---
# Two configs, three splits
"""


def make_source(root):
    rnd = random.Random(17)
    src = {"en": {}, "zh": {}}
    for split, n in (("train", 250), ("validation", 40), ("test", 37)):
        rows = [{"text": f"{split} sentence {i} " + "x" * rnd.randrange(0, 40),
                 "label": rnd.randrange(0, 3), "score": round(rnd.random(), 6),
                 "tags": [f"t{j}" for j in range(rnd.randrange(0, 4))]} for i in range(n)]
        if split == "train":
            rows[1]["text"] = HOSTILE
        src["en"][split] = rows
        write_jsonl(os.path.join(root, "en", f"{split}.jsonl"), rows)
    for split, n in (("train", 120), ("validation", 15), ("test", 9)):
        rows = [{"id": i, "text": f"中文 {split} {i}", "ok": "yes" if i % 2 else "no"}
                for i in range(n)]
        src["zh"][split] = rows
        if split == "train":  # two shards
            write_jsonl(os.path.join(root, "zh", "train-00000-of-00002.jsonl"), rows[:60])
            write_jsonl(os.path.join(root, "zh", "train-00001-of-00002.jsonl"), rows[60:])
        else:
            write_jsonl(os.path.join(root, "zh", f"{split}.jsonl"), rows)
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write(README)
    return src


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--out", default="")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    # find_spec, not import: huggingface_hub and datasets read HF_ENDPOINT when first imported
    import importlib.util
    mods = ("huggingface_hub", "datasets", "pyarrow")
    if not all(importlib.util.find_spec(m) for m in mods) and \
            not hubtest.have_modules_or_reexec(*mods):
        print("SKIP: huggingface_hub/datasets not installed (run scripts/hub-client-venv.sh)")
        return 77
    tmp = tempfile.mkdtemp(prefix="ohm-hub-dataviewer-")
    out = os.path.abspath(args.out or os.path.join(tmp, "screenshots"))
    os.makedirs(out, exist_ok=True)
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)
    tok = {}
    for u in ("alice", "bob"):
        run([ohm, "hub", "user", "add", u, "--data", data])
        tok[u] = run([ohm, "hub", "token", "create", "--data", data, "--user", u,
                      "--scope", "write"])
    server, base = hubtest.start_server(ohm, data, "--viewer-max-split-rows", str(CAP_ROWS))
    browser = None
    try:
        hubtest.use_endpoint(base, tmp)
        os.environ["HF_DATASETS_CACHE"] = os.path.join(tmp, "ds_cache")
        import datasets
        import pyarrow.parquet as pq
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError
        datasets.disable_progress_bars()
        alice = HfApi(endpoint=base, token=tok["alice"])
        anon = HfApi(endpoint=base, token=False)

        def get(path, token=None, raw=False):
            h = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                with urllib.request.urlopen(urllib.request.Request(base + path, headers=h)) as r:
                    body = r.read()
                    return r.status, (body if raw else json.loads(body)), dict(r.headers)
            except urllib.error.HTTPError as e:
                body = e.read()
                try:
                    body = json.loads(body)
                except ValueError:
                    pass
                return e.code, body, dict(e.headers)

        def q(ep, token=None, **params):
            return get(f"/datasets-server/{ep}?" + urllib.parse.urlencode(params), token)

        def wait_ready(repo, token=None, timeout=120, want=200):
            end = time.time() + timeout
            while time.time() < end:
                st, body, h = q("splits", token, dataset=repo)
                if st != 500 or h.get("X-Error-Code") != "ResponseNotReady":
                    if st != want:
                        raise AssertionError((st, body))
                    return body, h
                time.sleep(0.05)
            raise AssertionError(f"{repo}: conversion did not finish")

        src_dir = os.path.join(tmp, "src")
        src = make_source(src_dir)
        repo = "alice/two-configs"
        alice.create_repo(repo, repo_type="dataset")
        alice.upload_folder(repo_id=repo, repo_type="dataset", folder_path=src_dir)
        main_sha = alice.dataset_info(repo).sha

        def local_features(cfg):
            # what `datasets` itself infers from the source files
            files = {"train": sorted(os.path.join(src_dir, cfg, f) for f in os.listdir(os.path.join(src_dir, cfg))
                               if f.startswith("train"))}
            return datasets.load_dataset("json", data_files=files, split="train").features

        def t_converted():
            body, h = wait_ready(repo)
            assert h.get("X-Revision") == main_sha, (h, main_sha)
            got = [(s["config"], s["split"]) for s in body["splits"]]
            assert got == [(c, s) for c in ("en", "zh") for s in ("train", "validation", "test")], got
            assert all(s["dataset"] == repo for s in body["splits"])
            assert body["pending"] == [] and body["failed"] == []

        def t_load_dataset():
            for cfg, name in (("en", "en"), ("zh", "zh"), ("en", None)):  # None: the default
                dd = datasets.load_dataset(repo, name) if name else datasets.load_dataset(repo)
                assert sorted(dd.keys()) == ["test", "train", "validation"], dd
                for split in ("train", "validation", "test"):
                    assert dd[split].to_list() == src[cfg][split], (cfg, split)
                    assert dd[split].features == local_features(cfg), (dd[split].features,)

        def t_load_streaming():
            for cfg, name in (("en", "en"), ("zh", "zh"), ("en", None)):
                dd = (datasets.load_dataset(repo, name, streaming=True) if name
                      else datasets.load_dataset(repo, streaming=True))
                assert sorted(dd.keys()) == ["test", "train", "validation"], dd
                for split in ("train", "validation", "test"):
                    assert list(dd[split]) == src[cfg][split], (cfg, split)
                    f = dd[split].features
                    assert f is None or f == local_features(cfg), f

        def t_parquet_branch():
            refs = anon.list_repo_refs(repo, repo_type="dataset")
            conv = [(r.name, r.ref) for r in refs.converts]
            assert conv == [("parquet", "refs/convert/parquet")], conv
            assert [b.name for b in refs.branches] == ["main"], refs.branches
            files = sorted(f for f in anon.list_repo_files(repo, repo_type="dataset",
                                                             revision="refs/convert/parquet")
                           if f != ".gitattributes")
            want = sorted(f"{c}/{s}/0000.parquet" for c in ("en", "zh")
                          for s in ("train", "validation", "test"))
            assert files == want, files
            for f in files:
                c, s, _ = f.split("/")
                p = hf_hub_download(repo, f, repo_type="dataset", revision="refs/convert/parquet")
                t = pq.read_table(p)
                assert t.to_pylist() == src[c][s], f
                # the features `datasets` reads from the file's metadata
                assert datasets.Features.from_arrow_schema(t.schema) == local_features(c), f
            st, page, _ = get(f"/datasets/{repo}/tree/refs%2Fconvert%2Fparquet/en/train", raw=True)
            assert st == 200 and b"0000.parquet" in page, st  # the page's link to the branch
            # and `datasets` loads the branch's files as a parquet dataset
            st, body, _ = q("parquet", dataset=repo, config="zh")
            urls = {}
            for e in body["parquet_files"]:
                urls.setdefault(e["split"], []).append(e["url"])
            dd = datasets.load_dataset("parquet", data_files=urls)
            for s in ("train", "validation", "test"):
                assert dd[s].to_list() == src["zh"][s], s

        def t_endpoints():
            st, b, h = q("parquet", dataset=repo)
            assert st == 200 and h.get("X-Revision") == main_sha
            assert set(b) >= {"parquet_files", "pending", "failed", "partial"} and b["partial"] is False
            assert len(b["parquet_files"]) == 6
            e0 = b["parquet_files"][0]
            assert set(e0) == {"dataset", "config", "split", "url", "filename", "size"}, e0
            assert e0["url"] == (f"{base}/datasets/{repo}/resolve/refs%2Fconvert%2Fparquet/"
                                 f"{e0['config']}/{e0['split']}/{e0['filename']}"), e0
            assert e0["size"] == len(get(e0["url"][len(base):], raw=True)[1])
            st, b, _ = q("parquet", dataset=repo, config="en")
            assert {e["config"] for e in b["parquet_files"]} == {"en"} and "features" in b

            st, b, h = q("first-rows", dataset=repo, config="en", split="train")
            assert st == 200 and h.get("X-Revision") == main_sha
            assert set(b) == {"dataset", "config", "split", "features", "rows", "truncated"}, b.keys()
            assert (b["dataset"], b["config"], b["split"]) == (repo, "en", "train")
            feats = local_features("en").to_dict()
            assert b["features"] == [{"feature_idx": i, "name": k, "type": feats[k]}
                                     for i, k in enumerate(feats)], b["features"]
            assert [r["row_idx"] for r in b["rows"]] == list(range(100))
            assert [r["row"] for r in b["rows"]] == src["en"]["train"][:100]
            assert all(r["truncated_cells"] == [] for r in b["rows"]) and b["truncated"] is True
            st, b, _ = q("first-rows", dataset=repo, config="zh", split="test")
            assert [r["row"] for r in b["rows"]] == src["zh"]["test"] and b["truncated"] is False

            st, b, _ = q("rows", dataset=repo, config="en", split="train", offset=120, length=7)
            assert st == 200 and set(b) >= {"features", "rows", "num_rows_total", "partial"}
            assert [r["row"] for r in b["rows"]] == src["en"]["train"][120:127]
            assert [r["row_idx"] for r in b["rows"]] == list(range(120, 127))
            assert b["num_rows_total"] == 250
            st, b, _ = q("rows", dataset=repo, config="en", split="train", offset=10**12)
            assert st == 200 and b["rows"] == [], b

            st, b, _ = q("size", dataset=repo)
            sz = b["size"]
            assert sz["dataset"]["num_rows"] == sum(len(v) for c in src.values() for v in c.values())
            assert [(c["config"], c["num_rows"], c["num_columns"]) for c in sz["configs"]] == \
                [("en", 327, 4), ("zh", 144, 3)], sz["configs"]
            assert len(sz["splits"]) == 6 and all(s["num_bytes_parquet_files"] > 0 for s in sz["splits"])
            for k in ("num_bytes_original_files", "num_bytes_parquet_files", "num_bytes_memory"):
                assert sz["dataset"][k] > 0, k
            assert b["partial"] is False

            st, b, _ = q("info", dataset=repo)
            assert set(b["dataset_info"]) == {"en", "zh"} and b["partial"] is False
            for cfg in ("en", "zh"):
                info = datasets.DatasetInfo.from_dict(b["dataset_info"][cfg])
                assert info.features == local_features(cfg), cfg
                assert info.config_name == cfg
                assert {k: v.num_examples for k, v in info.splits.items()} == \
                    {s: len(src[cfg][s]) for s in ("train", "validation", "test")}
            st, b, _ = q("info", dataset=repo, config="zh")
            assert b["dataset_info"]["config_name"] == "zh" and "partial" in b
            st, b, _ = q("is-valid", dataset=repo)
            assert b == {"preview": True, "viewer": True, "search": False, "filter": False,
                         "statistics": False}, b

            # what `datasets` calls: HF_ENDPOINT with "datasets-server." before the host
            host = "datasets-server." + base.split("://", 1)[1]
            r = urllib.request.Request(f"{base}/info?dataset={repo}", headers={"Host": host})
            with urllib.request.urlopen(r) as resp:
                assert resp.headers["X-Revision"] == main_sha
                assert set(json.loads(resp.read())["dataset_info"]) == {"en", "zh"}
            st, b, h = get(f"/api/datasets/{repo}/parquet")
            assert st == 200 and set(b) == {"en", "zh"} and set(b["en"]) == {"train", "validation", "test"}
            assert b["en"]["train"] == [f"{base}/api/datasets/{repo}/parquet/en/train/0.parquet"]
            st, b2, _ = get(f"/api/datasets/{repo}/parquet/zh")
            assert b2 == b["zh"]
            st, b3, _ = get(f"/api/datasets/{repo}/parquet/zh/test")
            assert b3 == b["zh"]["test"]
            st, blob, _ = get(f"/api/datasets/{repo}/parquet/zh/test/0.parquet", raw=True)
            assert st == 200 and blob[:4] == b"PAR1"  # redirected to the branch's file

        def t_hostile_params():
            cases = [
                ({}, 422, "dataset"),
                ({"dataset": "nonamespace"}, 422, "dataset"),
                ({"dataset": "a/b/c"}, 422, "dataset"),
                ({"dataset": repo}, 422, "config"),
                ({"dataset": repo, "config": "nope", "split": "train"}, 404, "config"),
                ({"dataset": repo, "config": "../../etc", "split": "train"}, 404, "config"),
                ({"dataset": repo, "config": "en", "split": "../../x"}, 404, "split"),
                ({"dataset": repo, "config": "en"}, 422, "split"),
            ]
            for params, want, name in cases:
                st, b, _ = q("first-rows", **params)
                assert st == want and f"'{name}'" in b["error"], (params, st, b)
            for params, name in (({"offset": "-1"}, "offset"), ({"offset": "1e99"}, "offset"),
                                 ({"offset": "99999999999999999999999"}, "offset"),
                                 ({"length": "1000"}, "length"), ({"length": "x"}, "length")):
                st, b, _ = q("rows", dataset=repo, config="en", split="train", **params)
                assert st == 422 and f"'{name}'" in b["error"], (params, st, b)
            st, b, _ = q("splits", dataset=repo, config="nope")
            assert st == 404 and "'config'" in b["error"], b
            for path in (f"/api/datasets/{repo}/parquet/..%2F..%2Fx/train",
                         f"/api/datasets/{repo}/parquet/en/train/9.parquet",
                         f"/api/datasets/{repo}/parquet/en/train/x.parquet",
                         "/datasets-server/nope?dataset=" + repo,
                         "/datasets-server/splits/extra?dataset=" + repo):
                st, b, _ = get(path)
                assert st == 404 and "error" in b, (path, st, b)
            st, b, _ = q("splits", dataset="alice/does-not-exist", token=tok["alice"])
            assert st == 404, (st, b)

        def t_branch_read_only():
            from huggingface_hub import CommitOperationAdd
            try:
                alice.create_commit(repo, operations=[CommitOperationAdd("x.txt", b"x")],
                                    commit_message="x", repo_type="dataset",
                                    revision="refs/convert/parquet")
                raise AssertionError("commit to refs/convert/parquet accepted")
            except HfHubHTTPError as e:
                assert e.response.status_code == 403, e
            try:
                alice.delete_branch(repo, branch="refs/convert/parquet", repo_type="dataset")
                raise AssertionError("refs/convert/parquet deleted")
            except HfHubHTTPError as e:
                assert e.response.status_code == 403, e

        def convert_commits():
            return len(alice.list_repo_commits(repo, repo_type="dataset",
                                               revision="refs/convert/parquet"))

        def t_idempotent():
            n0 = convert_commits()
            alice.upload_file(path_or_fileobj=b"notes\n", path_in_repo="notes.txt", repo_id=repo,
                              repo_type="dataset")
            alice.upload_file(path_or_fileobj=(README + "More prose.\n").encode(),
                              path_in_repo="README.md", repo_id=repo, repo_type="dataset")
            sha = alice.dataset_info(repo).sha
            end = time.time() + 60
            while q("splits", dataset=repo)[2].get("X-Revision") != sha:
                assert time.time() < end, "X-Revision did not follow main"
                time.sleep(0.05)
            assert convert_commits() == n0, (convert_commits(), n0)
            # a data change does convert again
            write_jsonl(os.path.join(src_dir, "en", "test.jsonl"), src["en"]["test"][:5])
            alice.upload_file(path_or_fileobj=os.path.join(src_dir, "en", "test.jsonl"),
                              path_in_repo="en/test.jsonl", repo_id=repo, repo_type="dataset")
            sha = alice.dataset_info(repo).sha
            while q("splits", dataset=repo)[2].get("X-Revision") != sha:
                assert time.time() < end, "no conversion after a data change"
                time.sleep(0.05)
            assert convert_commits() == n0 + 1
            st, b, _ = q("size", dataset=repo, config="en")
            assert st == 200 and b["size"]["config"]["num_rows"] == 250 + 40 + 5, b
            write_jsonl(os.path.join(src_dir, "en", "test.jsonl"), src["en"]["test"])
            alice.upload_file(path_or_fileobj=os.path.join(src_dir, "en", "test.jsonl"),
                              path_in_repo="en/test.jsonl", repo_id=repo, repo_type="dataset")
            wait_ready(repo)
            end = time.time() + 60
            while q("size", dataset=repo, config="en")[1].get("size", {}).get("config", {}).get("num_rows") != 327:
                assert time.time() < end
                time.sleep(0.05)

        def t_private_and_gated():
            alice.create_repo("alice/secret", repo_type="dataset", private=True)
            alice.upload_file(path_or_fileobj=b'{"s": "top secret"}\n', path_in_repo="data/train.jsonl",
                              repo_id="alice/secret", repo_type="dataset")
            wait_ready("alice/secret", tok["alice"])
            endpoints = [("splits", {}), ("parquet", {}), ("size", {}), ("info", {}),
                         ("is-valid", {}), ("first-rows", {"config": "default", "split": "train"}),
                         ("rows", {"config": "default", "split": "train"})]
            def viewer_refuses(repo, secret, who, token, status):
                """Every viewer endpoint answers `status` (the repo's or its file's) and no byte
                of the row `secret`."""
                for ep, extra in endpoints:
                    st, b, _ = q(ep, token, dataset=repo, **extra)
                    assert st == status, (who, ep, st, b)
                    assert secret not in json.dumps(b)

            for who, token in (("anonymous", None), ("bob", tok["bob"])):
                repo_status = get("/api/datasets/alice/secret", token)[0]
                assert repo_status in (401, 404), repo_status
                viewer_refuses("alice/secret", "top secret", who, token, repo_status)
                for path in ("/api/datasets/alice/secret/parquet",
                             "/api/datasets/alice/secret/parquet/default/train/0.parquet",
                             "/datasets/alice/secret/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet",
                             "/api/datasets/alice/secret/tree/refs%2Fconvert%2Fparquet",
                             "/api/datasets/alice/secret/refs"):
                    st, b, _ = get(path, token, raw=True)
                    assert st == repo_status and b"top secret" not in b, (who, path, st)
                st, page, _ = get("/datasets/alice/secret", token, raw=True)
                assert st == 404 and b"top secret" not in page, (who, st)
            st, b, _ = q("first-rows", tok["alice"], dataset="alice/secret", config="default", split="train")
            assert st == 200 and b["rows"][0]["row"] == {"s": "top secret"}, b

            alice.create_repo("alice/gated", repo_type="dataset")
            alice.upload_file(path_or_fileobj=b'{"g": "gated row"}\n', path_in_repo="train.jsonl",
                              repo_id="alice/gated", repo_type="dataset")
            wait_ready("alice/gated")
            alice.update_repo_settings("alice/gated", gated="auto", repo_type="dataset")
            for who, token in (("anonymous", None), ("bob", tok["bob"])):
                file_status = get("/datasets/alice/gated/resolve/main/train.jsonl", token)[0]
                assert file_status in (401, 403), file_status
                viewer_refuses("alice/gated", "gated row", who, token, file_status)
                st, b, _ = get("/api/datasets/alice/gated/parquet/default/train/0.parquet", token, raw=True)
                assert st == file_status and b"gated row" not in b
                st, page, _ = get("/datasets/alice/gated", token, raw=True)
                assert b"gated row" not in page and b'id="dv-gated"' in page, (who, st)
            r = urllib.request.Request(base + "/api/datasets/alice/gated/user-access-request",
                                       data=b"{}", method="POST",
                                       headers={"Authorization": f"Bearer {tok['bob']}",
                                                "Content-Type": "application/json"})
            urllib.request.urlopen(r).read()
            st, b, _ = q("first-rows", tok["bob"], dataset="alice/gated", config="default", split="train")
            assert st == 200 and b["rows"][0]["row"] == {"g": "gated row"}, (st, b)

        def t_malformed():
            alice.create_repo("alice/broken", repo_type="dataset")
            alice.upload_file(path_or_fileobj=b'{"a": 1}\n{"a": 2}\n{"a": 3\n',
                              path_in_repo="data/train.jsonl", repo_id="alice/broken",
                              repo_type="dataset")
            end = time.time() + 60
            while True:
                st, b, h = q("splits", dataset="alice/broken")
                if h.get("X-Error-Code") != "ResponseNotReady":
                    break
                assert time.time() < end
                time.sleep(0.05)
            assert st == 500 and h.get("X-Error-Code") == "DatasetGenerationError", (st, b, h)
            assert "data/train.jsonl" in b["error"] and "line 3" in b["error"], b
            assert "/tmp" not in b["error"] and "viewer" not in b["error"], b  # no server paths
            for ep in ("parquet", "size", "info"):
                st2, b2, _ = q(ep, dataset="alice/broken")
                assert st2 == 500 and b2["error"] == b["error"], (ep, b2)
            assert anon.list_repo_refs("alice/broken", repo_type="dataset").converts == []
            st, page, _ = get("/datasets/alice/broken", raw=True)
            assert b'id="dv-error"' in page and b"line 3" in page
            # fixed: converted
            alice.upload_file(path_or_fileobj=b'{"a": 1}\n{"a": 2}\n{"a": 3}\n',
                              path_in_repo="data/train.jsonl", repo_id="alice/broken",
                              repo_type="dataset")
            sha = alice.dataset_info("alice/broken").sha
            while True:
                st, b, h = q("first-rows", dataset="alice/broken", config="default", split="train")
                if st == 200 and h.get("X-Revision") == sha:
                    break
                assert time.time() < end, (st, b)
                time.sleep(0.05)
            assert [r["row"]["a"] for r in b["rows"]] == [1, 2, 3]

        def t_cap_partial():
            alice.create_repo("alice/big", repo_type="dataset")
            n = CAP_ROWS + 5000
            payload = "".join(json.dumps({"i": i}) + "\n" for i in range(n)).encode()
            alice.upload_file(path_or_fileobj=payload, path_in_repo="train.jsonl",
                              repo_id="alice/big", repo_type="dataset")
            wait_ready("alice/big")
            st, b, _ = q("parquet", dataset="alice/big")
            assert b["partial"] is True, b
            assert [e["url"].split("refs%2Fconvert%2Fparquet/")[1] for e in b["parquet_files"]] == \
                ["default/partial-train/0000.parquet"], b
            st, b, _ = q("size", dataset="alice/big")
            assert b["size"]["dataset"]["num_rows"] == CAP_ROWS and b["partial"] is True, b
            p = hf_hub_download("alice/big", "default/partial-train/0000.parquet", repo_type="dataset",
                                revision="refs/convert/parquet")
            assert pq.read_table(p).column("i").to_pylist() == list(range(CAP_ROWS))

        def t_measure():
            # a few-MB dataset: conversion time (push accepted -> viewer ready), /first-rows latency
            rows = 40000
            rnd = random.Random(3)
            words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
            path = os.path.join(tmp, "perf.jsonl")
            write_jsonl(path, ({"text": " ".join(rnd.choice(words) for _ in range(14)),
                                "label": i % 5, "score": rnd.random()} for i in range(rows)))
            mb = os.path.getsize(path) / 1e6
            alice.create_repo("alice/perf", repo_type="dataset")
            alice.upload_file(path_or_fileobj=path, path_in_repo="train.jsonl", repo_id="alice/perf",
                              repo_type="dataset")
            t0 = time.time()
            wait_ready("alice/perf")
            wall = time.time() - t0
            rid = None
            for f in os.listdir(os.path.join(data, "viewer", "status")):
                stj = json.load(open(os.path.join(data, "viewer", "status", f)))
                if stj.get("repo") == "alice/perf":
                    rid = stj
            lat = []
            for _ in range(50):
                t1 = time.perf_counter()
                st, b, _ = q("first-rows", dataset="alice/perf", config="default", split="train")
                lat.append((time.perf_counter() - t1) * 1000)
                assert st == 200 and len(b["rows"]) == 100
            lat.sort()
            print(f"  MEASURE conversion: {rows} rows, {mb:.2f} MB jsonl: {rid['duration_ms']:.0f} ms "
                  f"in the worker, {wall * 1000:.0f} ms push-accepted -> viewer ready (polled)")
            print(f"  MEASURE /first-rows: median {statistics.median(lat):.2f} ms, "
                  f"p90 {lat[int(len(lat) * 0.9)]:.2f} ms over {len(lat)} requests; "
                  f"loadavg {open('/proc/loadavg').read().split()[:3]}")

        check("push converts to refs/convert/parquet; /splits lists 2 configs x 3 splits", t_converted)
        check("load_dataset(id[, config]): rows and features equal the source", t_load_dataset)
        check("load_dataset(..., streaming=True): rows equal the source", t_load_streaming)
        check("refs/convert/parquet: converts ref, layout, rows, features", t_parquet_branch)
        check("viewer endpoints: documented shapes, X-Revision, /api/datasets/{id}/parquet", t_endpoints)
        check("hostile parameters: 4xx JSON naming the parameter", t_hostile_params)
        check("refs/convert/parquet is read-only for clients", t_branch_read_only)
        check("re-push without data change: no convert commit; data change: one", t_idempotent)
        check("private and gated datasets: viewer and branch as visible as the repo", t_private_and_gated)
        check("malformed data file: recorded error, no branch; fixed: converted", t_malformed)
        check("cap: a split over the cap is converted partially (partial-train/)", t_cap_partial)
        check("measure: conversion time and /first-rows latency", t_measure)

        # ---------------------------------------------------------------- the browser
        try:
            import websocket  # noqa: F401
        except ImportError:
            print("SKIP browser checks: websocket-client missing")
            return hubtest.finish(tmp, keep=args.keep)
        if not browser_mod.find_chromium():
            print("SKIP browser checks: chromium missing")
            return hubtest.finish(tmp, keep=args.keep)
        browser, cdp = browser_mod.launch(tmp)
        cells_js = ("Array.from(document.querySelectorAll('#dv-rows tbody tr'))"
                    ".map(r => Array.from(r.cells).slice(1).map(c => c.textContent))")

        def t_web_viewer():
            cdp.navigate(f"{base}/datasets/{repo}")
            assert cdp.eval("!!document.getElementById('dataset-viewer')")
            assert cdp.eval("document.getElementById('dv-rows').dataset.config") == "en"
            splits = cdp.eval("Array.from(document.querySelectorAll('a.dv-split'))"
                              ".map(a => [a.dataset.split, +a.dataset.rows])")
            assert splits == [["train", 250], ["validation", 40], ["test", 37]], splits
            assert cdp.eval("Array.from(document.querySelectorAll('a.dv-config'))"
                            ".map(a => a.dataset.config)") == ["en", "zh"]
            heads = cdp.eval("Array.from(document.querySelectorAll('#dv-rows th'))"
                             ".map(t => t.dataset.col).filter(Boolean)")
            assert heads == ["text", "label", "score", "tags"], heads
            cells = cdp.eval(cells_js)
            assert len(cells) == 100 and cells[0][0] == src["en"]["train"][0]["text"], cells[:2]
            assert cells[1][0] == HOSTILE, cells[1]  # shown as text
            assert cells[0][1] == str(src["en"]["train"][0]["label"])
            assert "rows" in cdp.eval("document.getElementById('dv-total-rows').textContent")
            print("  viewer:", cdp.screenshot(os.path.join(out, "dataset-viewer.png")))
            cdp.eval("document.querySelector('a.dv-config[data-config=\"zh\"]').click()")
            cdp.wait_event("Page.loadEventFired")
            cdp.eval("document.querySelector('a.dv-split[data-split=\"test\"]').click()")
            cdp.wait_event("Page.loadEventFired")
            t = cdp.eval("[document.getElementById('dv-rows').dataset.config,"
                         " document.getElementById('dv-rows').dataset.split]")
            assert t == ["zh", "test"], t
            cells = cdp.eval(cells_js)
            assert [c[1] for c in cells] == [r["text"] for r in src["zh"]["test"]], cells
            print("  viewer (zh/test):", cdp.screenshot(os.path.join(out, "dataset-viewer-zh.png")))

        def t_no_dialogs():
            assert not cdp.dialogs(), cdp.dialogs()
            assert cdp.eval("document.querySelectorAll('#dv-rows img, #dv-rows script').length") == 0

        check("web UI: first rows as a table with splits and sizes (Chromium)", t_web_viewer)
        check("no injected script ran", t_no_dialogs)
    finally:
        browser_mod.stop_all(browser, server)
    print(f"screenshots in {out}")
    return hubtest.finish(tmp, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
