#!/usr/bin/env python3
"""`ohm hub serve --require-signed --trusted-keys DIR` through the official huggingface_hub client.

A signed model repo is accepted and shown verified (/api/models/{id} `signature`, the repo
page's badge); a tampered one (a regular file, an LFS file, an added file), an unsigned one and
one signed by an untrusted key are refused with 403 and the reason; datasets are not affected.

Usage: test_hub_signing.py --ohm build/.../ohm --model models/ohm-demo
Exit codes: 0 passed, 1 a check failed, 77 huggingface_hub or cryptography is not installed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub", "cryptography"):
        print("SKIP: huggingface_hub / cryptography are not installed (run scripts/hub-client-venv.sh)")
        return 77
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = tempfile.mkdtemp(prefix="ohm-hub-signing-")
    ohm = os.path.abspath(args.ohm)
    data = os.path.join(tmp, "data")
    trusted = os.path.join(tmp, "trusted")
    os.makedirs(trusted)

    def keypair(name, trust):
        k = ec.generate_private_key(ec.SECP256R1())
        priv = os.path.join(tmp, name + ".pem")
        with open(priv, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        if trust:
            with open(os.path.join(trusted, name + ".pub"), "wb") as f:
                f.write(pub)
        return priv

    alice_key = keypair("alice-release", True)
    mallory_key = keypair("mallory", False)

    def model_dir(name, key=None):
        d = os.path.join(tmp, name)
        shutil.copytree(args.model, d)
        if key:
            run([ohm, "sign", d, "--key", key])
        return d

    run([ohm, "hub", "user", "add", "alice", "--data", data])
    tok = run([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "write"])

    # A private key among the trusted ones, or --require-signed without keys: refused at start.
    bad = subprocess.run([ohm, "hub", "serve", "--data", data, "--port", "0", "--require-signed"],
                         capture_output=True, text=True, timeout=60)
    check("--require-signed without --trusted-keys is refused",
          lambda: (bad.returncode != 0 and "--trusted-keys" in bad.stderr) or
          (_ for _ in ()).throw(AssertionError(bad.stderr)))

    server, base = hubtest.start_server(ohm, data, "--require-signed", "--trusted-keys", trusted)
    try:
        hubtest.use_endpoint(base, tmp)
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi(endpoint=base, token=tok)

        def get_json(path):
            req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {tok}"})
            return json.load(urllib.request.urlopen(req))

        def refused(repo, folder, *expect):
            api.create_repo(repo, exist_ok=True)
            try:
                api.upload_folder(folder_path=folder, repo_id=repo)
            except HfHubHTTPError as e:
                msg = str(e)
                assert e.response.status_code == 403, (e.response.status_code, msg)
                for x in expect:
                    assert x in msg, (x, msg)
                return
            raise AssertionError(f"{repo}: the commit was accepted")

        def t_signed():
            d = model_dir("signed", alice_key)
            api.create_repo("alice/signed")
            api.upload_folder(folder_path=d, repo_id="alice/signed")
            files = api.list_repo_files("alice/signed")
            assert "model.sig" in files and "model.safetensors" in files, files
            s = get_json("/api/models/alice/signed")["signature"]
            assert s["signed"] and s["verified"] and s["keyName"] == "alice-release", s
            page = urllib.request.urlopen(base + "/alice/signed").read().decode()
            assert "badge verified" in page and "alice-release" in page, page[:2000]
            assert s["keyFingerprint"][:16] in page

        def t_tampered_regular():
            d = model_dir("tampered-regular", alice_key)
            with open(os.path.join(d, "config.json"), "a") as f:
                f.write(" ")
            refused("alice/tampered-regular", d, "modified: config.json")

        def t_tampered_lfs():
            d = model_dir("tampered-lfs", alice_key)
            p = os.path.join(d, "model.safetensors")
            with open(p, "r+b") as f:
                f.seek(os.path.getsize(p) - 5)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0x40]))
            refused("alice/tampered-lfs", d, "modified: model.safetensors")

        def t_added_file():
            d = model_dir("added", alice_key)
            with open(os.path.join(d, "extra.py"), "w") as f:
                f.write("import os\n")
            refused("alice/added", d, "not signed", "extra.py")

        def t_unsigned():
            refused("alice/unsigned", model_dir("unsigned"), "no model.sig")

        def t_untrusted_key():
            refused("alice/untrusted", model_dir("untrusted", mallory_key), "does not trust")

        def t_follow_up_commit_needs_a_new_signature():
            try:
                api.upload_file(path_or_fileobj=b"x\n", path_in_repo="notes.txt",
                                repo_id="alice/signed")
            except HfHubHTTPError as e:
                assert e.response.status_code == 403 and "notes.txt" in str(e), str(e)
            else:
                raise AssertionError("an unsigned file was added to a signed repo")
            assert get_json("/api/models/alice/signed")["signature"]["verified"]

        def t_datasets_unaffected():
            api.create_repo("alice/data", repo_type="dataset")
            api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data.csv",
                            repo_id="alice/data", repo_type="dataset")

        check("a signed repo is accepted and shown verified", t_signed)
        check("a modified regular file is refused (403, named)", t_tampered_regular)
        check("a modified LFS file is refused (403, named)", t_tampered_lfs)
        check("an added file is refused (403, named)", t_added_file)
        check("an unsigned model is refused", t_unsigned)
        check("a signature by an untrusted key is refused", t_untrusted_key)
        check("a later commit must keep the signature valid", t_follow_up_commit_needs_a_new_signature)
        check("dataset repos need no signature", t_datasets_unaffected)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return hubtest.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
