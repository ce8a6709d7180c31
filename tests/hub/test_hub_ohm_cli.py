#!/usr/bin/env python3
"""The hub_client suite's operations performed with `ohm push` / `ohm pull` / `ohm login`, against
`ohm hub serve` on loopback, cross-checked with the official huggingface_hub / transformers clients.

Usage: test_hub_ohm_cli.py --ohm build/.../ohm [--keep]
Exit codes: 0 all checks passed, 1 a check failed, 77 clients not installed (ctest: skipped).
"""
import argparse
import hashlib
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import ROOT, check, results, run  # noqa: E402,F401
DEMO = os.path.join(ROOT, "models", "ohm-demo")
BIG = 52 * 2**20



class Server:
    def __init__(self, ohm, data, log):
        self.ohm, self.data, self.log = ohm, data, log
        self.proc = None

    def start(self, port=0):
        self.proc = subprocess.Popen(
            [self.ohm, "hub", "serve", "--data", self.data, "--port", str(port), "--page-size", "3"],
            stdout=subprocess.PIPE, stderr=open(self.log, "a"), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready:
            raise RuntimeError("server did not start")
        return int(self.proc.stdout.readline().strip().rsplit(":", 1)[1])

    def kill(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub"):
        print("SKIP: huggingface_hub is not installed (run scripts/hub-client-venv.sh)")
        return 77
    import huggingface_hub

    tmp = tempfile.mkdtemp(prefix="ohm-hub-cli-")
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)

    def out(cmd, **kw):
        r = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if r.returncode != 0:
            raise AssertionError(f"{cmd} -> {r.returncode}: {r.stderr[-2000:]}")
        return r.stdout.strip()

    out([ohm, "hub", "user", "add", "alice", "--data", data])
    out([ohm, "hub", "user", "add", "bob", "--data", data])
    out([ohm, "hub", "org", "add", "acme", "--data", data, "--member", "alice"])
    alice = out([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "write"])
    alice_ro = out([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "read"])
    bob = out([ohm, "hub", "token", "create", "--data", data, "--user", "bob", "--scope", "write"])

    server = Server(ohm, data, os.path.join(tmp, "server.log"))
    port = server.start()
    endpoint = f"http://127.0.0.1:{port}"
    home = os.path.join(tmp, "hf_home")  # HF_HOME of the ohm commands (token file, cache)
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH",
              "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_CACHE", "XDG_CACHE_HOME"):
        os.environ.pop(k, None)
    os.environ.update({
        "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": home, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HUB_ETAG_TIMEOUT": "30", "HF_HUB_DOWNLOAD_TIMEOUT": "60", "TRANSFORMERS_VERBOSITY": "error",
    })
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    api = HfApi(endpoint=endpoint, token=alice)
    print(f"huggingface_hub {huggingface_hub.__version__}, server {endpoint}, data {tmp}", flush=True)

    def ohm_run(*a, env=None, check_rc=True):
        e = dict(os.environ)
        e.update(env or {})
        r = subprocess.run([ohm, *a], capture_output=True, text=True, env=e, timeout=600)
        if check_rc and r.returncode != 0:
            raise AssertionError(f"ohm {' '.join(a)} -> {r.returncode}: {r.stderr[-2000:]}")
        return r

    # the folder to push
    folder = os.path.join(tmp, "upload")
    os.makedirs(os.path.join(folder, "sub"))
    os.makedirs(os.path.join(folder, "logs"))
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "generation_config.json"):
        shutil.copy(os.path.join(DEMO, f), folder)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("---\nlicense: mit\nlibrary_name: transformers\ntags:\n- ohm-cli\n---\n# Tiny\n")
    with open(os.path.join(folder, "sub", "notes.txt"), "w") as f:
        f.write("notes\n")
    with open(os.path.join(folder, "logs", "a.txt"), "w") as f:
        f.write("log a\n")
    big = os.path.join(folder, "big.bin")
    chunk = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
    with open(big, "wb") as f:
        for i in range(BIG >> 20):
            f.write(bytes([i]) + chunk[1:])
    big_sha = sha256_file(big)
    os.makedirs(os.path.join(folder, ".git"))  # ignored like upload_folder does
    with open(os.path.join(folder, ".git", "HEAD"), "w") as f:
        f.write("ref: refs/heads/main\n")
    state = {"downloads": 0}  # expected download count of alice/tiny-model
    cache = os.path.join(home, "hub")
    repo_dir = os.path.join(cache, "models--alice--tiny-model")

    def t_login():
        tok = os.path.join(home, "token")
        r = ohm_run("login", "--token", "hf_wrong", check_rc=False)
        assert r.returncode == 1 and "invalid token" in r.stderr, r.stderr
        assert not os.path.exists(tok)
        r = ohm_run("whoami", check_rc=False)
        assert r.returncode == 1 and "not logged in" in r.stderr, r.stderr
        ohm_run("login", "--token", alice)
        assert open(tok).read() == alice
        assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600, oct(os.stat(tok).st_mode)
        assert ohm_run("whoami").stdout.split("\n")[:2] == ["alice", "orgs: acme"]
        # the official client reads the same token file
        code = "import huggingface_hub; print(huggingface_hub.get_token())"
        got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        assert got == alice, got
        assert "Removed" in ohm_run("logout").stderr and not os.path.exists(tok)
        r = subprocess.run([ohm, "login"], input=alice + "\n", capture_output=True, text=True)  # token on stdin
        assert r.returncode == 0 and open(tok).read() == alice, r.stderr

    def t_push():
        r = ohm_run("push", folder, "alice/tiny-model", "--message", "Upload tiny model")
        c1 = r.stdout.strip()
        assert len(c1) == 40, r.stdout
        assert "created alice/tiny-model" in r.stderr, r.stderr
        state["c1"] = c1
        mi = api.model_info("alice/tiny-model", files_metadata=True)
        assert mi.sha == c1, (mi.sha, c1)
        sib = {s.rfilename: s for s in mi.siblings}
        assert set(sib) == {".gitattributes", "README.md", "big.bin", "config.json", "tokenizer.json",
                            "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                            "sub/notes.txt", "logs/a.txt"}, set(sib)
        assert sib["big.bin"].lfs is not None and sib["big.bin"].lfs.sha256 == big_sha and sib["big.bin"].size == BIG
        assert sib["config.json"].lfs is None
        assert "ohm-cli" in mi.tags and mi.card_data["license"] == "mit"
        assert api.list_repo_commits("alice/tiny-model")[0].title == "Upload tiny model"
        assert os.path.exists(os.path.join(data, "blobs", "lfs", big_sha[:2], big_sha))
        # the official client reads what ohm push wrote, byte for byte
        d = snapshot_download("alice/tiny-model", cache_dir=os.path.join(tmp, "official"))
        state["downloads"] += 1
        for rel in sib:
            if rel == ".gitattributes":
                continue
            assert sha256_file(os.path.join(d, rel)) == sha256_file(os.path.join(folder, rel)), rel

    def t_push_changes():
        with open(os.path.join(folder, "sub", "notes.txt"), "w") as f:
            f.write("notes v2\n")
        with open(os.path.join(folder, "extra.txt"), "w") as f:
            f.write("extra\n")
        os.remove(os.path.join(folder, "logs", "a.txt"))
        r = ohm_run("push", folder, "alice/tiny-model", "-m", "Second")
        c2 = r.stdout.strip()
        # only the two changed files travel; big.bin is not uploaded again
        assert "2 regular and 0 LFS files (0 LFS bytes sent)" in r.stderr, r.stderr
        assert "0 deleted" in r.stderr, r.stderr
        files = set(api.list_repo_files("alice/tiny-model"))
        assert "logs/a.txt" in files and "extra.txt" in files, files  # nothing deleted without --delete
        r = ohm_run("push", folder, "alice/tiny-model", "-m", "Drop logs", "--delete", "logs/*", "--delete", "*.md")
        c3 = r.stdout.strip()
        assert "0 regular and 0 LFS" in r.stderr and "1 deleted" in r.stderr, r.stderr  # README.md is local: kept
        files = set(api.list_repo_files("alice/tiny-model"))
        assert "logs/a.txt" not in files and "README.md" in files and "extra.txt" in files, files
        r = ohm_run("push", folder, "alice/tiny-model")
        assert r.stdout.strip() == c3 and "nothing to commit" in r.stderr, (r.stdout, r.stderr)
        commits = [c.commit_id for c in api.list_repo_commits("alice/tiny-model")]
        assert commits[:3] == [c3, c2, state["c1"]] and len(commits) == 4, commits
        state["c2"], state["c3"] = c2, c3
        api.create_tag("alice/tiny-model", tag="v1.0", revision=state["c1"])
        # a push to a new branch creates it from main
        other = os.path.join(tmp, "dev-folder")
        os.makedirs(other)
        with open(os.path.join(other, "dev.txt"), "w") as f:
            f.write("dev\n")
        cdev = ohm_run("push", other, "alice/tiny-model", "--revision", "dev", "--quiet").stdout.strip()
        refs = api.list_repo_refs("alice/tiny-model")
        assert {b.name: b.target_commit for b in refs.branches} == {"main": c3, "dev": cdev}
        assert "dev.txt" not in api.list_repo_files("alice/tiny-model")
        assert "dev.txt" in api.list_repo_files("alice/tiny-model", revision="dev")
        state["dev"] = cdev

    def t_pull_revisions():
        r = ohm_run("pull", "alice/tiny-model")
        snap = r.stdout.strip()
        assert snap == os.path.join(repo_dir, "snapshots", state["c3"]), snap
        state["downloads"] += 1
        assert open(os.path.join(repo_dir, "refs", "main")).read() == state["c3"]
        files = sorted(os.path.relpath(os.path.join(dp, f), snap) for dp, _, fs in os.walk(snap) for f in fs)
        assert files == sorted(api.list_repo_files("alice/tiny-model")), files
        for rel in files:
            p = os.path.join(snap, rel)
            assert os.path.islink(p) and not os.path.isabs(os.readlink(p)), rel
            if rel != ".gitattributes":
                assert sha256_file(p) == sha256_file(os.path.join(folder, rel)), rel
        assert os.path.basename(os.path.realpath(os.path.join(snap, "big.bin"))) == big_sha
        cfg_oid = [e for e in api.list_repo_tree("alice/tiny-model") if e.path == "config.json"][0].blob_id
        assert os.path.basename(os.path.realpath(os.path.join(snap, "config.json"))) == cfg_oid
        # by tag: the old notes, and nothing downloaded twice (blobs are shared)
        r = ohm_run("pull", "alice/tiny-model", "--revision", "v1.0")
        assert r.stdout.strip().endswith(state["c1"]) and "2 downloaded (12 bytes)" in r.stderr, r.stderr
        assert open(os.path.join(repo_dir, "snapshots", state["c1"], "sub", "notes.txt")).read() == "notes\n"
        assert open(os.path.join(repo_dir, "refs", "v1.0")).read() == state["c1"]
        # by commit sha: no ref file; by branch dev
        r = ohm_run("pull", "alice/tiny-model", "--revision", state["c2"], "--include", "logs/*")
        assert os.path.exists(os.path.join(repo_dir, "snapshots", state["c2"], "logs", "a.txt"))
        assert not os.path.exists(os.path.join(repo_dir, "refs", state["c2"]))
        r = ohm_run("pull", "alice/tiny-model", "--revision", "dev", "--include", "dev.txt")
        assert open(os.path.join(repo_dir, "snapshots", state["dev"], "dev.txt")).read() == "dev\n"
        # --include: only matching files, '*' crosses '/'
        c2 = os.path.join(tmp, "inc")
        r = ohm_run("pull", "alice/tiny-model", "--cache-dir", c2, "--include", "*.json", "--include", "sub/")
        got = sorted(os.path.relpath(os.path.join(dp, f), r.stdout.strip())
                     for dp, _, fs in os.walk(r.stdout.strip()) for f in fs)
        assert got == ["config.json", "generation_config.json", "special_tokens_map.json", "sub/notes.txt",
                       "tokenizer.json", "tokenizer_config.json"], got
        state["downloads"] += 1
        # HF_HUB_CACHE wins over HF_HOME
        c3 = os.path.join(tmp, "hubcache")
        r = ohm_run("pull", "alice/tiny-model", "--include", "extra.txt", env={"HF_HUB_CACHE": c3})
        assert r.stdout.strip().startswith(c3 + "/models--alice--tiny-model/snapshots/"), r.stdout

    def t_resume():
        cache2 = os.path.join(tmp, "resume")
        blobs = os.path.join(cache2, "models--alice--tiny-model", "blobs")
        os.makedirs(blobs)
        part = os.path.join(blobs, big_sha + ".incomplete")
        with open(big, "rb") as f:
            head = f.read(3 << 20)
        # a corrupt partial file is detected by the hash and removed
        with open(part, "wb") as f:
            f.write(b"x" * len(head))
        r = ohm_run("pull", "alice/tiny-model", "--cache-dir", cache2, "--include", "big.bin", check_rc=False)
        assert r.returncode == 1 and "checksum mismatch" in r.stderr, r.stderr
        assert not os.path.exists(part)
        # a good partial file is continued with Range: only the rest travels
        with open(part, "wb") as f:
            f.write(head)
        r = ohm_run("pull", "alice/tiny-model", "--cache-dir", cache2, "--include", "big.bin")
        assert f"1 downloaded ({BIG - len(head)} bytes)" in r.stderr, r.stderr
        assert sha256_file(os.path.join(blobs, big_sha)) == big_sha and not os.path.exists(part)
        # a pull killed mid-file leaves a .incomplete file that the next pull continues
        cache3 = os.path.join(tmp, "resume-kill")
        part3 = os.path.join(cache3, "models--alice--tiny-model", "blobs", big_sha + ".incomplete")
        killed = False
        for attempt in range(5):
            shutil.rmtree(cache3, ignore_errors=True)
            p = subprocess.Popen([ohm, "pull", "alice/tiny-model", "--cache-dir", cache3, "--include", "big.bin",
                                  "--parallel", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.time()
            while p.poll() is None and time.time() - t0 < 60:
                if os.path.exists(part3) and 0 < os.path.getsize(part3) < BIG // 2:
                    p.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.0005)
            p.wait()
            if killed:
                break
        if killed:
            have = os.path.getsize(part3)
            assert 0 < have < BIG, have
            r = ohm_run("pull", "alice/tiny-model", "--cache-dir", cache3, "--include", "big.bin")
            assert f"({BIG - have} bytes)" in r.stderr, (have, r.stderr)
            assert sha256_file(os.path.join(cache3, "models--alice--tiny-model", "blobs", big_sha)) == big_sha
        else:
            print("  (the pull finished before it could be killed: only the pre-seeded resume was checked)")

    def t_private():
        priv = os.path.join(tmp, "priv")
        os.makedirs(priv)
        with open(os.path.join(priv, "config.json"), "w") as f:
            f.write("{}")
        ohm_run("push", priv, "alice/secret", "--private", "--token", alice)
        assert api.model_info("alice/secret").private is True
        c = os.path.join(tmp, "pc")
        r = ohm_run("pull", "alice/secret", "--cache-dir", c, env={"HF_HOME": os.path.join(tmp, "nohome")},
                    check_rc=False)
        assert r.returncode == 1 and "HTTP 401 RepoNotFound" in r.stderr, r.stderr
        r = ohm_run("pull", "alice/secret", "--cache-dir", c, "--token", bob, check_rc=False)
        assert r.returncode == 1 and "HTTP 404 RepoNotFound" in r.stderr, r.stderr
        r = ohm_run("pull", "alice/secret", "--cache-dir", c, env={"HF_TOKEN": "hf_wrong"}, check_rc=False)
        assert r.returncode == 1 and "HTTP 401" in r.stderr, r.stderr
        r = ohm_run("push", priv, "alice/secret", "--token", alice_ro, check_rc=False)
        assert r.returncode == 1 and "403" in r.stderr, r.stderr
        r = ohm_run("push", priv, "alice/other", "--token", bob, check_rc=False)
        assert r.returncode == 1 and "403" in r.stderr, r.stderr
        # login, then pull with the stored token (no --token, no HF_TOKEN)
        h2 = os.path.join(tmp, "home2")
        ohm_run("login", "--token", alice_ro, env={"HF_HOME": h2})
        r = ohm_run("pull", "alice/secret", env={"HF_HOME": h2})
        assert open(os.path.join(r.stdout.strip(), "config.json")).read() == "{}"
        assert r.stdout.strip().startswith(os.path.join(h2, "hub")), r.stdout

    def t_offline():
        off = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}  # unreachable: must not be used
        r = ohm_run("pull", "alice/tiny-model", env=off)
        assert r.stdout.strip() == os.path.join(repo_dir, "snapshots", state["c3"]), r.stdout
        r = ohm_run("pull", "alice/tiny-model", "--revision", "v1.0", "--include", "sub/*", env=off)
        assert r.stdout.strip().endswith(state["c1"])
        for args_, what in ((["alice/missing"], "alice/missing at revision 'main'"),
                            (["alice/tiny-model", "--revision", "nope"], "alice/tiny-model at revision 'nope'")):
            r = ohm_run("pull", *args_, env=off, check_rc=False)
            assert r.returncode == 1 and what in r.stderr and "HF_HUB_OFFLINE" in r.stderr, r.stderr
        # transformers, offline, reads what ohm pull wrote
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("  (transformers not installed: skipped)")
            return
        code = ("from transformers import AutoConfig, AutoTokenizer\n"
                "c = AutoConfig.from_pretrained('alice/tiny-model')\n"
                "t = AutoTokenizer.from_pretrained('alice/tiny-model')\n"
                "print(c.model_type, len(t('hello world')['input_ids']))\n")
        e = dict(os.environ, **off)
        r = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and r.stdout.startswith("llama"), r.stderr[-3000:]

    def t_sigkill_mid_commit():
        # many small files make the commit slow (each blob is fsynced); the server is killed while
        # it runs, then restarted: the branch is at the old commit or at the complete new one.
        many = os.path.join(tmp, "many")
        os.makedirs(many)
        for i in range(1500):
            with open(os.path.join(many, f"f{i:04d}.txt"), "w") as f:
                f.write(f"file {i}\n")
        api.create_repo("alice/many")
        before = api.model_info("alice/many").sha
        outcomes = []
        log = os.path.join(tmp, "server.log")
        gitblobs = os.path.join(data, "blobs", "git")

        def nblobs():
            return sum(len(fs) for _, _, fs in os.walk(gitblobs))

        for delay in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0):
            mark = os.path.getsize(log)
            blobs_before = nblobs()
            p = subprocess.Popen([ohm, "push", many, "alice/many", "-m", "many", "--quiet"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            t0 = time.time()
            while time.time() - t0 < 120:  # wait until the 6 preupload batches are answered
                with open(log) as f:
                    f.seek(mark)
                    if f.read().count("/alice/many/preupload/main") >= 6:
                        break
                time.sleep(0.01)
            time.sleep(delay)  # the client hashes 1500 small files, then posts the commit
            server.kill(signal.SIGKILL)
            p.communicate(timeout=120)
            server.start(port)
            sha = api.model_info("alice/many").sha
            files = api.list_repo_files("alice/many")
            if sha == before:
                # "mid": the server had started storing the commit's blobs (orphans, invisible)
                outcomes.append("mid" if nblobs() > blobs_before else "before")
                assert files == [".gitattributes"], len(files)
            else:
                outcomes.append("after")
                assert len(files) == 1501, len(files)
                assert open(hf_hub_download("alice/many", "f1499.txt", cache_dir=os.path.join(tmp, "mk"))).read() == "file 1499\n"
                assert [c.title for c in api.list_repo_commits("alice/many")] == ["many", "initial commit"]
                break
        print(f"  outcomes: {outcomes}")
        assert outcomes[-1] == "after", outcomes
        if "mid" not in outcomes:  # timing-dependent; test_hub's SigkillMidCommit... is deterministic
            print("  (no kill landed while the server was storing the commit on this machine)")

    def t_download_counts():
        # one download per GET of config.json (pulls that already had the blob do not fetch it)
        got = api.model_info("alice/tiny-model").downloads
        assert got == state["downloads"], (got, state["downloads"])
        r = ohm_run("pull", "alice/tiny-model", "--cache-dir", os.path.join(tmp, "dl"), "--include", "config.json")
        r = ohm_run("pull", "alice/tiny-model", "--cache-dir", os.path.join(tmp, "dl"), "--include", "config.json")
        assert "0 downloaded" in r.stderr, r.stderr
        assert api.model_info("alice/tiny-model").downloads == state["downloads"] + 1

    t0 = time.time()
    for name, fn in [("ohm login/whoami/logout (token file shared with huggingface_hub)", t_login),
                     ("ohm push: new repo, 52 MiB via LFS, read back by the official client", t_push),
                     ("ohm push: changes, unchanged skipped, --delete, no-op, new branch", t_push_changes),
                     ("ohm pull by branch, tag, sha, --include; HF cache layout", t_pull_revisions),
                     ("ohm pull resumes an interrupted download", t_resume),
                     ("private repos 401/404, stored token from ohm login", t_private),
                     ("HF_HUB_OFFLINE: ohm pull and transformers from the cache", t_offline),
                     ("download counts", t_download_counts),
                     ("SIGKILL mid-commit restarts at a complete commit", t_sigkill_mid_commit)]:
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
