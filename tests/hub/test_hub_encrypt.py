#!/usr/bin/env python3
"""Encrypted upload through a running `ohm hub serve`: `ohm keygen`, `ohm push --encrypt` to two
recipients, the Hub's view of the files (tree API, web UI, the stored blobs hold no plaintext),
`ohm pull --decrypt` by each recipient (identical bytes), and the failures: a wrong identity, a
tampered and a truncated encrypted file served by the Hub (reported, no plaintext written).

Usage: test_hub_encrypt.py --ohm build/.../ohm [--keep]
Exit codes: 0 all checks passed, 1 a check failed, 77 huggingface_hub not installed (skipped).
"""
import argparse
import hashlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import urllib.request

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check  # noqa: E402

MARKER = b"PLAINTEXT-MARKER-7f3a9c"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub"):
        print("SKIP: huggingface_hub is not installed (run scripts/hub-client-venv.sh)")
        return 77
    from huggingface_hub import HfApi, hf_hub_download

    tmp = tempfile.mkdtemp(prefix="ohm-hub-encrypt-")
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)

    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
              "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME",
              "OHM_IDENTITY"):
        os.environ.pop(k, None)

    def ohm_run(*a, check_rc=True, env=None):
        e = dict(os.environ)
        e.update(env or {})
        r = subprocess.run([ohm, *a], capture_output=True, text=True, env=e, timeout=600)
        if check_rc and r.returncode != 0:
            raise AssertionError(f"ohm {' '.join(a)} -> {r.returncode}: {r.stderr[-2000:]}")
        return r

    ohm_run("hub", "user", "add", "alice", "--data", data)
    token = ohm_run("hub", "token", "create", "--data", data, "--user", "alice", "--scope",
                    "write").stdout.strip()
    proc = subprocess.Popen([ohm, "hub", "serve", "--data", data, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "a"),
                            text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        raise RuntimeError("server did not start")
    port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
    endpoint = f"http://127.0.0.1:{port}"
    home = os.path.join(tmp, "hf_home")
    os.environ.update({"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": home,
                       "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                       "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_TOKEN": token})
    api = HfApi(endpoint=endpoint, token=token)

    # Identities: alice and bob are recipients, eve is not.
    keys = {n: os.path.join(tmp, f"{n}.key") for n in ("alice", "bob", "eve")}
    pubs = {n: ohm_run("keygen", "--out", p).stdout.strip() for n, p in keys.items()}

    # The folder: a multi-chunk file with a recognisable plaintext, small, empty and nested files.
    folder = os.path.join(tmp, "upload")
    os.makedirs(os.path.join(folder, "sub"))
    files = {
        "data.bin": (MARKER + os.urandom(100_000)) * 30 + MARKER,  # ~3 MB, 46 chunks
        "train.jsonl": b'{"text": "' + MARKER + b'"}\n' * 100,
        "empty.txt": b"",
        "sub/notes.txt": MARKER + b"\n",
    }
    for name, content in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    repo = "alice/secret-data"

    def t_keygen():
        for n, p in keys.items():
            assert pubs[n].startswith("ohm1") and len(pubs[n]) == 52, pubs[n]
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        assert ohm_run("keygen", "--public", "--out", keys["alice"]).stdout.strip() == pubs["alice"]
        r = ohm_run("keygen", "--out", keys["alice"], check_rc=False)
        assert r.returncode == 1 and "not overwriting" in r.stderr, r.stderr

    def t_push_encrypted():
        r = ohm_run("push", folder, repo, "--repo-type", "dataset", "--encrypt", "--recipient",
                    pubs["alice"], "--recipients-file", keys["bob"])
        assert "encrypted 4 files to 2 recipient(s)" in r.stderr, r.stderr
        names = sorted(api.list_repo_files(repo, repo_type="dataset"))
        assert names == sorted([".gitattributes"] + [n + ".ohmenc" for n in files]), names

    def t_hub_sees_no_plaintext():
        tree = json.load(urllib.request.urlopen(
            f"{endpoint}/api/datasets/{repo}/tree/main?recursive=1"))
        enc = {e["path"]: e for e in tree if e["type"] == "file" and e["path"] != ".gitattributes"}
        assert len(enc) == 4, tree
        for p, e in enc.items():
            assert e.get("encrypted") is True and "lfs" in e, e  # an ordinary LFS blob
        # every byte the Hub stored: no plaintext marker, no secret key
        secrets = [open(k, "rb").read().split(b"OHM-SECRET-KEY-1")[1][:48] for k in keys.values()]
        for dirpath, _, fnames in os.walk(data):
            for fn in fnames:
                with open(os.path.join(dirpath, fn), "rb") as f:
                    blob = f.read()
                assert MARKER not in blob, os.path.join(dirpath, fn)
                for s in secrets:
                    assert s not in blob, os.path.join(dirpath, fn)
        raw = hf_hub_download(repo, "data.bin.ohmenc", repo_type="dataset", endpoint=endpoint,
                              cache_dir=os.path.join(tmp, "raw"))
        with open(raw, "rb") as f:
            head = f.read()
        assert head.startswith(b"OHMENC\x01") and MARKER not in head

    def t_web_ui_marks_encrypted():
        page = urllib.request.urlopen(f"{endpoint}/datasets/{repo}/tree/main").read().decode()
        assert page.count('class="badge encrypted"') == 3, page  # data.bin, train.jsonl, empty
        blob = urllib.request.urlopen(
            f"{endpoint}/datasets/{repo}/blob/main/data.bin.ohmenc").read().decode()
        assert 'id="encrypted"' in blob and "Encrypted with ohm" in blob, blob

    def pull(who, cache, check_rc=True):
        return ohm_run("pull", repo, "--repo-type", "dataset", "--decrypt", "--identity",
                       keys[who], "--cache-dir", cache, check_rc=check_rc)

    def t_pull_decrypt_each_recipient():
        for who in ("alice", "bob"):
            r = pull(who, os.path.join(tmp, f"cache-{who}"))
            snap = r.stdout.strip()
            assert "4 files decrypted and verified" in r.stderr, r.stderr
            for name, content in files.items():
                p = os.path.join(snap, name)
                with open(p, "rb") as f:
                    got = f.read()
                assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest(), (who, name)
                assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
                assert not os.path.islink(p)
            # a second pull decrypts again over the same files
            assert "4 files decrypted" in pull(who, os.path.join(tmp, f"cache-{who}")).stderr

    def t_wrong_identity():
        cache = os.path.join(tmp, "cache-eve")
        r = pull("eve", cache, check_rc=False)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "data.bin.ohmenc: not encrypted to this identity" in r.stderr, r.stderr
        for dirpath, _, fnames in os.walk(cache):
            for fn in fnames:
                assert not fn.endswith((".bin", ".jsonl", ".txt")) or fn.endswith(".ohmenc"), fn
                assert ".ohmtmp-" not in fn, fn

    def t_tampered_and_truncated_on_the_hub():
        # A Hub (or anyone with write access) that changes an encrypted file: the blob's sha256
        # matches what it serves, so only the authentication catches it.
        d = os.path.join(tmp, "bad")
        os.makedirs(d)
        src = os.path.join(tmp, "plain.bin")
        with open(src, "wb") as f:
            f.write(MARKER * 10_000)
        enc = os.path.join(tmp, "plain.bin.ohmenc")
        ohm_run("encrypt", src, enc, "--recipient", pubs["alice"])
        c = bytearray(open(enc, "rb").read())
        flipped = bytearray(c)
        flipped[len(c) // 2] ^= 1
        open(os.path.join(d, "flipped.bin.ohmenc"), "wb").write(flipped)
        open(os.path.join(d, "truncated.bin.ohmenc"), "wb").write(c[:128 + 65536 + 17])
        open(os.path.join(d, "good.bin.ohmenc"), "wb").write(c)
        # already encrypted *.ohmenc files are uploaded as they are
        ohm_run("push", d, "alice/tampered", "--encrypt", "-r", pubs["alice"])
        cache = os.path.join(tmp, "cache-tampered")
        r = ohm_run("pull", "alice/tampered", "--decrypt", "-i", keys["alice"], "--cache-dir",
                    cache, check_rc=False)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "flipped.bin.ohmenc: authentication failed at chunk" in r.stderr, r.stderr
        assert "truncated.bin.ohmenc: truncated" in r.stderr, r.stderr
        assert "2 file(s) did not decrypt" in r.stderr, r.stderr
        snap = [os.path.join(dp, "") for dp, dn, _ in os.walk(cache) if "snapshots" in dp]
        snap = max(snap, key=len)
        left = sorted(os.listdir(snap))
        assert left == ["flipped.bin.ohmenc", "good.bin", "good.bin.ohmenc",
                        "truncated.bin.ohmenc"] or left == [".gitattributes", "flipped.bin.ohmenc",
                                                            "good.bin", "good.bin.ohmenc",
                                                            "truncated.bin.ohmenc"], left
        assert open(os.path.join(snap, "good.bin"), "rb").read() == MARKER * 10_000

    def t_usage_errors():
        r = ohm_run("push", folder, "alice/x", "--encrypt", check_rc=False)
        assert r.returncode == 2 and "no recipients" in r.stderr, r.stderr
        r = ohm_run("push", folder, "alice/x", "--recipient", pubs["alice"], check_rc=False)
        assert r.returncode == 2 and "need --encrypt" in r.stderr, r.stderr
        r = ohm_run("push", folder, "alice/x", "--encrypt", "-r", "ohm1nope", check_rc=False)
        assert r.returncode == 1 and "not an ohm public key" in r.stderr, r.stderr
        r = ohm_run("pull", repo, "--repo-type", "dataset", "--decrypt", "--identity",
                    os.path.join(tmp, "missing.key"), check_rc=False)
        assert r.returncode == 1 and "missing.key" in r.stderr, r.stderr

    try:
        check("keygen", t_keygen)
        check("push --encrypt to two recipients", t_push_encrypted)
        check("the Hub stores no plaintext and no key; tree API marks the files", t_hub_sees_no_plaintext)
        check("web UI marks encrypted files", t_web_ui_marks_encrypted)
        check("pull --decrypt by each recipient: identical bytes", t_pull_decrypt_each_recipient)
        check("pull --decrypt with a wrong identity fails, no plaintext", t_wrong_identity)
        check("tampered and truncated files fail, no plaintext", t_tampered_and_truncated_on_the_hub)
        check("usage errors", t_usage_errors)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return hubtest.finish(tmp, args.keep)


if __name__ == "__main__":
    sys.exit(main())
