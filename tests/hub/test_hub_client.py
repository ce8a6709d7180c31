#!/usr/bin/env python3
"""The official huggingface_hub / transformers clients against `ohm hub serve` on loopback.

Usage: test_hub_client.py --ohm build/.../ohm [--keep]
Exit codes: 0 all checks passed, 1 a check failed, 77 clients not installed (ctest: skipped).
Needs `pip install huggingface_hub transformers` (no torch needed). Upload clients must not use
Xet against a non-Xet server, so HF_HUB_DISABLE_XET=1 is set.
"""
import argparse
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import ROOT, check, results, run  # noqa: E402,F401
DEMO = os.path.join(ROOT, "models", "ohm-demo")




class Server:
    def __init__(self, ohm, data, log):
        self.ohm, self.data, self.log = ohm, data, log
        self.proc = None
        self.port = None

    def start(self, port=0):
        self.proc = subprocess.Popen(
            [self.ohm, "hub", "serve", "--data", self.data, "--port", str(port), "--page-size", "3"],
            stdout=subprocess.PIPE, stderr=open(self.log, "a"), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready:
            raise RuntimeError("server did not start")
        line = self.proc.stdout.readline()
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self.port

    def kill(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub"):
        print("SKIP: huggingface_hub is not installed (run scripts/hub-client-venv.sh)")
        return 77
    import huggingface_hub

    tmp = tempfile.mkdtemp(prefix="ohm-hub-client-")
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)
    run([ohm, "hub", "user", "add", "alice", "--data", data])
    run([ohm, "hub", "user", "add", "bob", "--data", data])
    run([ohm, "hub", "org", "add", "acme", "--data", data, "--member", "alice"])
    alice = run([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "write"])
    alice_ro = run([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "read"])
    bob = run([ohm, "hub", "token", "create", "--data", data, "--user", "bob", "--scope", "write"])
    assert alice.startswith("hf_"), alice

    server = Server(ohm, data, os.path.join(tmp, "server.log"))
    port = server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": os.path.join(tmp, "hf_home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_ETAG_TIMEOUT": "30", "HF_HUB_DOWNLOAD_TIMEOUT": "60",
        "TRANSFORMERS_VERBOSITY": "error", "DISABLE_SAFETENSORS_CONVERSION": "1",
    }
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
              "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_CACHE"):
        os.environ.pop(k, None)
    os.environ.update(env)

    # imported after the environment is set: the client reads it at import time
    from huggingface_hub import (CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download,
                                 snapshot_download)
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    api = HfApi(endpoint=endpoint, token=alice)
    anon = HfApi(endpoint=endpoint, token=False)
    print(f"huggingface_hub {huggingface_hub.__version__}, server {endpoint}, data {tmp}", flush=True)

    folder = os.path.join(tmp, "upload")
    os.makedirs(os.path.join(folder, "sub"))
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "generation_config.json"):
        shutil.copy(os.path.join(DEMO, f), folder)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("---\nlicense: mit\nlibrary_name: transformers\npipeline_tag: text-generation\n"
                "tags:\n- ohm-test\n- tiny\n---\n# Tiny\n")
    with open(os.path.join(folder, "sub", "notes.txt"), "w") as f:
        f.write("notes\n")
    big = os.path.join(folder, "big.bin")
    chunk = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB, not compressible by accident
    with open(big, "wb") as f:
        for i in range(52):
            f.write(bytes([i]) + chunk[1:])
    big_sha = hashlib.sha256(open(big, "rb").read()).hexdigest()
    state = {}

    def t_whoami():
        me = api.whoami()
        assert me["name"] == "alice", me
        assert [o["name"] for o in me["orgs"]] == ["acme"], me
        try:
            HfApi(endpoint=endpoint, token="hf_wrong").whoami()
            raise AssertionError("whoami with a wrong token succeeded")
        except HfHubHTTPError as e:
            assert e.response.status_code == 401

    def t_create():
        url = api.create_repo("alice/tiny-model")
        assert str(url).startswith(endpoint + "/alice/tiny-model"), url
        api.create_repo("alice/tiny-model", exist_ok=True)
        try:
            api.create_repo("alice/tiny-model")
            raise AssertionError("duplicate create succeeded")
        except HfHubHTTPError as e:
            assert e.response.status_code == 409
        api.create_repo("acme/corpus", repo_type="dataset")
        api.create_repo("alice/secret", private=True)
        for name in ("alice/tiny-a", "alice/tiny-b", "acme/tiny-c", "alice/other"):
            api.create_repo(name)
        try:
            HfApi(endpoint=endpoint, token=bob).create_repo("acme/nope")
            raise AssertionError("bob created a repo in acme")
        except HfHubHTTPError as e:
            assert e.response.status_code == 403
        try:
            HfApi(endpoint=endpoint, token=alice_ro).create_repo("alice/ro")
            raise AssertionError("a read token created a repo")
        except HfHubHTTPError as e:
            assert e.response.status_code == 403

    def t_upload_folder():
        info = api.upload_folder(repo_id="alice/tiny-model", folder_path=folder, commit_message="Upload tiny model")
        state["c1"] = info.oid
        mi = api.model_info("alice/tiny-model", files_metadata=True)
        assert mi.sha == info.oid, (mi.sha, info.oid)
        sib = {s.rfilename: s for s in mi.siblings}
        assert set(sib) >= {"config.json", "README.md", "big.bin", "sub/notes.txt", ".gitattributes"}, set(sib)
        assert sib["big.bin"].lfs is not None and sib["big.bin"].lfs.sha256 == big_sha, sib["big.bin"]
        assert sib["big.bin"].size == 52 * 2**20
        assert sib["config.json"].lfs is None
        assert "license:mit" in mi.tags and "ohm-test" in mi.tags, mi.tags
        assert mi.card_data["license"] == "mit" and mi.pipeline_tag == "text-generation"
        assert mi.library_name == "transformers"
        # blob really stored under its sha256
        assert os.path.exists(os.path.join(data, "blobs", "lfs", big_sha[:2], big_sha))

    def t_commit_deletions():
        ops = [CommitOperationDelete("sub/notes.txt"), CommitOperationAdd("extra.txt", b"extra\n"),
               CommitOperationAdd("logs/a.txt", b"a"), CommitOperationAdd("logs/b.txt", b"b")]
        c2 = api.create_commit("alice/tiny-model", ops, commit_message="Second", parent_commit=state["c1"])
        c3 = api.create_commit("alice/tiny-model", [CommitOperationDelete("logs/")], commit_message="Drop logs")
        state["c2"], state["c3"] = c2.oid, c3.oid
        files = set(api.list_repo_files("alice/tiny-model"))
        assert "sub/notes.txt" not in files and "extra.txt" in files and not any(f.startswith("logs/") for f in files), files
        try:  # stale parent
            api.create_commit("alice/tiny-model", [CommitOperationAdd("x.txt", b"x")], commit_message="stale",
                              parent_commit=state["c1"])
            raise AssertionError("stale parent accepted")
        except HfHubHTTPError as e:
            assert e.response.status_code == 412, e
        try:
            api.delete_file("does-not-exist.txt", "alice/tiny-model")
            raise AssertionError("deleting a missing file succeeded")
        except (EntryNotFoundError, HfHubHTTPError) as e:
            assert e.response.status_code == 404

    def t_refs():
        api.create_tag("alice/tiny-model", tag="v1.0", revision=state["c1"], tag_message="first")
        api.create_branch("alice/tiny-model", branch="dev", revision=state["c2"])
        api.create_branch("alice/tiny-model", branch="dev", exist_ok=True)
        api.create_branch("alice/tiny-model", branch="tmp")
        api.delete_branch("alice/tiny-model", branch="tmp")
        api.create_tag("alice/tiny-model", tag="gone")
        api.delete_tag("alice/tiny-model", tag="gone")
        refs = api.list_repo_refs("alice/tiny-model")
        br = {b.name: b.target_commit for b in refs.branches}
        tg = {t.name: t.target_commit for t in refs.tags}
        assert br == {"main": state["c3"], "dev": state["c2"]}, br
        assert tg == {"v1.0": state["c1"]}, tg
        try:
            api.create_branch("alice/tiny-model", branch="x", revision="nope")
            raise AssertionError("branch from unknown revision")
        except (RevisionNotFoundError, HfHubHTTPError) as e:
            assert e.response.status_code == 404

    def t_listing():
        files = api.list_repo_files("alice/tiny-model")
        assert "big.bin" in files and "config.json" in files, files
        tree = list(api.list_repo_tree("alice/tiny-model", recursive=True))  # page size 3: paginated
        paths = {e.path for e in tree}
        assert paths >= set(files), paths
        big_e = [e for e in tree if e.path == "big.bin"][0]
        assert big_e.lfs.sha256 == big_sha and big_e.size == 52 * 2**20
        old = list(api.list_repo_tree("alice/tiny-model", revision="v1.0", path_in_repo="sub"))
        assert [e.path for e in old] == ["sub/notes.txt"], old
        exp = list(api.list_repo_tree("alice/tiny-model", expand=True))
        cfg = [e for e in exp if e.path == "config.json"][0]
        assert cfg.last_commit is not None and cfg.last_commit.oid == state["c1"], cfg.last_commit
        try:
            list(api.list_repo_tree("alice/tiny-model", path_in_repo="nope"))
            raise AssertionError("tree of a missing folder")
        except (EntryNotFoundError, HfHubHTTPError) as e:
            assert e.response.status_code == 404
        commits = api.list_repo_commits("alice/tiny-model")
        assert [c.commit_id for c in commits][:3] == [state["c3"], state["c2"], state["c1"]], commits
        assert commits[0].title == "Drop logs" and len(commits) == 4
        assert api.model_info("alice/tiny-model", revision="dev").sha == state["c2"]

    def t_downloads():
        p = hf_hub_download("alice/tiny-model", "config.json")
        assert open(p, "rb").read() == open(os.path.join(DEMO, "config.json"), "rb").read()
        assert f"snapshots/{state['c3']}/config.json" in p, p
        assert os.path.islink(p)
        ptag = hf_hub_download("alice/tiny-model", "sub/notes.txt", revision="v1.0")
        assert open(ptag).read() == "notes\n"
        psha = hf_hub_download("alice/tiny-model", "sub/notes.txt", revision=state["c1"])
        assert open(psha).read() == "notes\n"
        pdev = hf_hub_download("alice/tiny-model", "extra.txt", revision="dev")
        assert open(pdev).read() == "extra\n"
        pbig = hf_hub_download("alice/tiny-model", "big.bin")
        h = hashlib.sha256()
        with open(pbig, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        assert h.hexdigest() == big_sha
        assert os.path.basename(os.path.realpath(pbig)) == big_sha  # blob named by ETag
        refs_main = open(os.path.join(os.environ["HF_HOME"], "hub", "models--alice--tiny-model", "refs", "main")).read()
        assert refs_main == state["c3"]
        try:
            hf_hub_download("alice/tiny-model", "missing.json")
            raise AssertionError("missing file downloaded")
        except EntryNotFoundError:
            pass
        try:
            hf_hub_download("alice/tiny-model", "config.json", revision="nope")
            raise AssertionError("unknown revision")
        except RevisionNotFoundError:
            pass

    def t_resume():
        url = f"{endpoint}/alice/tiny-model/resolve/main/big.bin"
        size = 52 * 2**20
        part = 0
        h = hashlib.sha256()
        # read the first 7 MB, "disconnect", then resume with Range like the client does
        with urllib.request.urlopen(url) as r:
            assert int(r.headers["Content-Length"]) == size
            while part < 7_000_000:
                b = r.read(1 << 20)
                h.update(b)
                part += len(b)
        req = urllib.request.Request(url, headers={"Range": f"bytes={part}-"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes {part}-{size - 1}/{size}", r.headers["Content-Range"]
            for b in iter(lambda: r.read(1 << 20), b""):
                h.update(b)
        assert h.hexdigest() == big_sha
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={"Range": f"bytes={size}-"}))
            raise AssertionError("unsatisfiable range accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 416

    def t_snapshot():
        d = snapshot_download("alice/tiny-model", allow_patterns=["*.json"], cache_dir=os.path.join(tmp, "snap"))
        got = sorted(os.listdir(d))
        assert got == ["config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json",
                       "tokenizer_config.json"], got
        d2 = snapshot_download("alice/tiny-model", revision="v1.0", allow_patterns=["sub/*"],
                               cache_dir=os.path.join(tmp, "snap"))
        assert os.listdir(os.path.join(d2, "sub")) == ["notes.txt"]

    def t_list_models():
        ids = [m.id for m in api.list_models(search="tiny")]
        assert sorted(ids) == ["acme/tiny-c", "alice/tiny-a", "alice/tiny-b", "alice/tiny-model"], ids  # 2 pages
        assert sorted(m.id for m in api.list_models(author="alice", search="tiny")) == [
            "alice/tiny-a", "alice/tiny-b", "alice/tiny-model"]
        top = list(api.list_models(sort="downloads", limit=2))
        assert len(top) == 2 and top[0].id == "alice/tiny-model", top
        assert "alice/secret" not in [m.id for m in anon.list_models()]
        assert "alice/secret" in [m.id for m in api.list_models(author="alice")]
        tagged = [m.id for m in api.list_models(filter="ohm-test")]
        assert tagged == ["alice/tiny-model"], tagged
        full = list(api.list_models(search="tiny-model", full=True))
        assert full[0].sha == state["c3"] and any(s.rfilename == "big.bin" for s in full[0].siblings)

    def t_dataset():
        api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data/train.csv", repo_id="acme/corpus",
                        repo_type="dataset")
        p = hf_hub_download("acme/corpus", "data/train.csv", repo_type="dataset")
        assert open(p).read() == "a,b\n1,2\n"
        assert [d.id for d in api.list_datasets(author="acme")] == ["acme/corpus"]
        di = api.dataset_info("acme/corpus")
        assert "data/train.csv" in [s.rfilename for s in di.siblings]

    def t_private():
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/secret")
        assert api.model_info("alice/secret").private is True
        for who in (anon, HfApi(endpoint=endpoint, token=bob)):
            try:
                who.model_info("alice/secret")
                raise AssertionError("private repo visible")
            except RepositoryNotFoundError as e:
                assert e.response.status_code in (401, 404)
        try:
            hf_hub_download("alice/secret", "config.json", token=False, cache_dir=os.path.join(tmp, "c2"))
            raise AssertionError("private file downloaded anonymously")
        except RepositoryNotFoundError as e:
            assert e.response.status_code == 401
        try:
            hf_hub_download("alice/secret", "config.json", token=bob, cache_dir=os.path.join(tmp, "c3"))
            raise AssertionError("private file downloaded by another user")
        except RepositoryNotFoundError as e:
            assert e.response.status_code == 404
        try:
            HfApi(endpoint=endpoint, token="hf_wrong").model_info("alice/secret")
            raise AssertionError("wrong token accepted")
        except HfHubHTTPError as e:
            assert e.response.status_code == 401
        p = hf_hub_download("alice/secret", "config.json", token=alice_ro, cache_dir=os.path.join(tmp, "c4"))
        assert open(p).read() == "{}"
        try:
            HfApi(endpoint=endpoint, token=alice_ro).upload_file(path_or_fileobj=b"x", path_in_repo="x",
                                                                  repo_id="alice/secret")
            raise AssertionError("read token wrote")
        except HfHubHTTPError as e:
            assert e.response.status_code == 403

    def t_download_counts():
        before = api.model_info("alice/tiny-model").downloads
        for i in range(3):
            hf_hub_download("alice/tiny-model", "config.json", cache_dir=os.path.join(tmp, f"dl{i}"))
            hf_hub_download("alice/tiny-model", "big.bin" if i == 0 else "tokenizer.json",
                            cache_dir=os.path.join(tmp, f"dl{i}"))
        hf_hub_download("alice/tiny-model", "config.json")  # cached: HEAD only, not a download
        after = api.model_info("alice/tiny-model").downloads
        assert after - before == 3, (before, after)
        # earlier in the suite: t_downloads fetched config.json once, snapshot_download once
        assert after == 5, after

    def t_transformers():
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("  (transformers not installed: skipped)")
            return
        code = ("import sys\nfrom transformers import AutoConfig, AutoTokenizer\n"
                "c = AutoConfig.from_pretrained('alice/tiny-model')\n"
                "t = AutoTokenizer.from_pretrained('alice/tiny-model')\n"
                "ids = t('hello world')['input_ids']\n"
                "assert c.model_type == 'llama' and len(ids) > 0, (c.model_type, ids)\n"
                "print(c.model_type, len(ids))\n")
        env2 = dict(os.environ, HF_HOME=os.path.join(tmp, "tf_home"))
        out = subprocess.run([sys.executable, "-c", code], env=env2, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        off = dict(env2, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")  # unreachable: must not be used
        out2 = subprocess.run([sys.executable, "-c", code], env=off, capture_output=True, text=True, timeout=300)
        assert out2.returncode == 0, out2.stderr[-3000:]
        assert out.stdout == out2.stdout, (out.stdout, out2.stdout)

    def t_ohm_pull():
        home = os.path.join(tmp, "pull_home")
        cache = os.path.join(home, "hub")
        out = run([ohm, "pull", "alice/tiny-model", "--endpoint", endpoint, "--cache-dir", cache, "--include", "*.json",
                   "--quiet"])
        assert out == os.path.join(cache, "models--alice--tiny-model", "snapshots", state["c3"]), out
        assert sorted(os.listdir(out)) == ["config.json", "generation_config.json", "special_tokens_map.json",
                                           "tokenizer.json", "tokenizer_config.json"], os.listdir(out)
        assert open(os.path.join(cache, "models--alice--tiny-model", "refs", "main")).read() == state["c3"]
        # by tag, a nested path
        run([ohm, "pull", "alice/tiny-model", "--endpoint", endpoint, "--cache-dir", cache, "--revision", "v1.0",
             "--include", "sub/*", "--quiet"])
        assert open(os.path.join(cache, "models--alice--tiny-model", "snapshots", state["c1"], "sub", "notes.txt")).read() == "notes\n"
        # resume: a partial blob is continued; a corrupt one is detected and removed
        blobs = os.path.join(cache, "models--alice--tiny-model", "blobs")
        with open(big, "rb") as f:
            head = f.read(3 << 20)
        with open(os.path.join(blobs, big_sha + ".incomplete"), "wb") as f:
            f.write(b"x" * len(head))
        r = subprocess.run([ohm, "pull", "alice/tiny-model", "--endpoint", endpoint, "--cache-dir", cache, "--include",
                            "big.bin", "--quiet"], capture_output=True, text=True)
        assert r.returncode == 1 and "checksum mismatch" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(blobs, big_sha + ".incomplete"))
        with open(os.path.join(blobs, big_sha + ".incomplete"), "wb") as f:
            f.write(head)
        run([ohm, "pull", "alice/tiny-model", "--endpoint", endpoint, "--cache-dir", cache, "--include", "big.bin", "--quiet"])
        assert os.path.getsize(os.path.join(blobs, big_sha)) == 52 * 2**20
        # private repo: token required
        r = subprocess.run([ohm, "pull", "alice/secret", "--endpoint", endpoint, "--cache-dir", cache, "--quiet"],
                           capture_output=True, text=True, env=dict(os.environ, HF_TOKEN=""))
        assert r.returncode == 1 and "RepoNotFound" in r.stderr, r.stderr
        run([ohm, "pull", "alice/secret", "--endpoint", endpoint, "--cache-dir", cache, "--token", alice_ro, "--quiet"])
        # transformers finds what ohm pull wrote, offline
        try:
            import transformers  # noqa: F401
        except ImportError:
            return
        code = ("from transformers import AutoConfig, AutoTokenizer\n"
                "c = AutoConfig.from_pretrained('alice/tiny-model')\n"
                "t = AutoTokenizer.from_pretrained('alice/tiny-model')\n"
                "print(c.model_type, len(t('hello world')['input_ids']))\n")
        off = dict(os.environ, HF_HOME=home, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
        out2 = subprocess.run([sys.executable, "-c", code], env=off, capture_output=True, text=True, timeout=300)
        assert out2.returncode == 0 and out2.stdout.startswith("llama"), out2.stderr[-3000:]

    def t_delete_repo():
        api.delete_repo("alice/other")
        try:
            api.model_info("alice/other")
            raise AssertionError("deleted repo still there")
        except RepositoryNotFoundError:
            pass
        api.delete_repo("alice/other", missing_ok=True)

    def t_restart_after_sigkill():
        sha = api.model_info("alice/tiny-model").sha
        server.kill(signal.SIGKILL)
        server.start(port)
        for _ in range(100):
            try:
                info = api.model_info("alice/tiny-model")
                break
            except HfHubHTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the restarted server did not answer within 10 s")
        assert info.sha == sha, (info.sha, sha)
        p = hf_hub_download("alice/tiny-model", "extra.txt", force_download=True)
        assert open(p).read() == "extra\n"

    t0 = time.time()
    for name, fn in [("whoami", t_whoami), ("create_repo", t_create), ("upload_folder (52 MiB via LFS)", t_upload_folder),
                     ("create_commit with deletions, 412 on stale parent", t_commit_deletions),
                     ("branches and tags", t_refs), ("list files/tree/commits", t_listing),
                     ("hf_hub_download by branch, tag, sha", t_downloads), ("interrupted download resumed (Range)", t_resume),
                     ("snapshot_download allow_patterns", t_snapshot), ("list_models search/author/sort/limit/pages", t_list_models),
                     ("dataset repo", t_dataset), ("private repos 401/404", t_private),
                     ("download counts", t_download_counts), ("transformers AutoConfig/AutoTokenizer online+offline", t_transformers),
                     ("ohm pull (cache layout, tag, resume, verify, private, offline transformers)", t_ohm_pull),
                     ("delete_repo", t_delete_repo), ("restart after SIGKILL", t_restart_after_sigkill)]:
        check(name, fn)
    server.kill()
    failed = [r for r in results if not r[1]]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed in {time.time() - t0:.0f}s")
    if failed:
        print("server log:", os.path.join(tmp, "server.log"))
        for name, _, err in failed:
            print(f"  FAILED {name}: {err}")
    if not args.keep and not failed:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
