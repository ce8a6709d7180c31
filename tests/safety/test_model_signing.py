#!/usr/bin/env python3
"""`ohm sign` / `ohm verify` against the PyPI `model_signing` package (OpenSSF model signing).

usage: test_model_signing.py OHM MODEL_DIR

- model_signing verifies ohm's signatures and ohm verifies model_signing's (P-256 and P-384);
- each tamper case is refused by ohm with its cause named: a flipped byte, an added file, a
  removed file, a renamed file, the wrong key (and model_signing refuses the same directories);
- malformed signature files and wrong key types get clear errors;
- `--verify-key` / OHM_VERIFY_KEY: a model that does not verify is not loaded.
Re-executes itself with build/hub-venv's python when the system python lacks model_signing;
exits 77 (skip) when neither has it (scripts/hub-client-venv.sh installs it).
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import model_signing  # noqa: F401
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as e:  # pragma: no cover
    venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                        "hub-venv", "bin", "python")
    if os.path.exists(venv) and not os.environ.get("OHM_SIGN_TEST_REEXEC"):
        os.environ["OHM_SIGN_TEST_REEXEC"] = "1"
        os.execv(venv, [venv, *sys.argv])
    print(f"skip: {e} (scripts/hub-client-venv.sh installs model-signing)")
    sys.exit(77)

OHM, MODEL = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("OHM_VERIFY_KEY", None)
    if env:
        e.update(env)
    return subprocess.run([*args], capture_output=True, text=True, env=e, timeout=300)


def ohm(*args, env=None):
    return run(OHM, *args, env=env)


def ms(*args):
    return run(sys.executable, "-m", "model_signing", *args)


def write_key(path, key):
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(path.replace(".pem", ".pub"), "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, path.replace(".pem", ".pub")


def fresh(tmp, name):
    d = os.path.join(tmp, name)
    shutil.copytree(MODEL, d)
    for f in os.listdir(d):
        if f.endswith(".sig"):
            os.remove(os.path.join(d, f))
    return d


def main():
    tmp = tempfile.mkdtemp(prefix="ohm-sign-")
    try:
        k256, p256 = write_key(os.path.join(tmp, "k256.pem"), ec.generate_private_key(ec.SECP256R1()))
        k384, p384 = write_key(os.path.join(tmp, "k384.pem"), ec.generate_private_key(ec.SECP384R1()))
        other, other_pub = write_key(os.path.join(tmp, "other.pem"),
                                     ec.generate_private_key(ec.SECP256R1()))
        krsa, prsa = write_key(os.path.join(tmp, "rsa.pem"),
                               rsa.generate_private_key(public_exponent=65537, key_size=2048))
        ked, ped = write_key(os.path.join(tmp, "ed.pem"), ed25519.Ed25519PrivateKey.generate())

        # --- interop, both directions, two curves
        for key, pub, tag in ((k256, p256, "P-256"), (k384, p384, "P-384")):
            d = fresh(tmp, "ohm-signed-" + tag)
            r = ohm("sign", d, "--key", key, "--json")
            check(r.returncode == 0, f"ohm sign ({tag}): {r.stderr.strip()}")
            info = json.loads(r.stdout) if r.returncode == 0 else {}
            check(info.get("files", 0) >= 3, f"ohm sign --json reports the files ({tag})")
            r = ms("verify", "key", d, "--public_key", pub, "--signature",
                   os.path.join(d, "model.sig"))
            check(r.returncode == 0 and "succeeded" in r.stdout,
                  f"model_signing verifies ohm's {tag} signature: {r.stdout.strip()} {r.stderr[-300:]}")
            r = ohm("verify", d, "--key", pub)
            check(r.returncode == 0 and "verified" in r.stdout, f"ohm verifies its own ({tag})")

            d = fresh(tmp, "ms-signed-" + tag)
            r = ms("sign", "key", d, "--private_key", key, "--signature",
                   os.path.join(d, "model.sig"))
            check(r.returncode == 0, f"model_signing sign ({tag}): {r.stderr[-300:]}")
            r = ohm("verify", d, "--key", pub, "--json")
            ok = r.returncode == 0 and json.loads(r.stdout).get("verified") is True
            check(ok, f"ohm verifies model_signing's {tag} signature: {r.stderr.strip()}")
            # The key hint in both bundles is the same fingerprint.
            r2 = ohm("sign", fresh(tmp, "fp-" + tag), "--key", key, "--json")
            bundle = json.load(open(os.path.join(d, "model.sig")))
            check(bundle["verificationMaterial"]["publicKey"]["hint"] ==
                  json.loads(r2.stdout)["key_fingerprint"], f"key fingerprints agree ({tag})")

        # --- tampering: ohm refuses each with its cause; model_signing agrees
        def tamper_case(name, mutate, expect):
            d = fresh(tmp, "tamper-" + name)
            ms("sign", "key", d, "--private_key", k256, "--signature", os.path.join(d, "model.sig"))
            mutate(d)
            r = ohm("verify", d, "--key", p256)
            msg = r.stderr
            check(r.returncode == 1 and all(e in msg for e in expect),
                  f"tamper '{name}' refused by ohm naming {expect}: {msg.strip()[:300]}")
            r = ms("verify", "key", d, "--public_key", p256, "--signature",
                   os.path.join(d, "model.sig"))
            check(r.returncode != 0, f"tamper '{name}' refused by model_signing too")

        def flip(d):
            p = os.path.join(d, "model.safetensors")
            with open(p, "r+b") as f:
                f.seek(os.path.getsize(p) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 1]))

        tamper_case("flipped byte", flip, ["modified: model.safetensors"])
        tamper_case("added file", lambda d: open(os.path.join(d, "extra.txt"), "w").write("x"),
                    ["not signed", "extra.txt"])
        tamper_case("removed file", lambda d: os.remove(os.path.join(d, "generation_config.json")),
                    ["missing", "generation_config.json"])
        tamper_case("renamed file",
                    lambda d: os.rename(os.path.join(d, "README.md"), os.path.join(d, "README2.md")),
                    ["missing", "README.md", "not signed", "README2.md"])

        d = fresh(tmp, "wrong-key")
        ohm("sign", d, "--key", k256)
        r = ohm("verify", d, "--key", other_pub)
        check(r.returncode == 1 and "wrong key" in r.stderr, f"wrong key refused: {r.stderr.strip()}")
        # A bundle whose key hint is removed still fails on the signature itself.
        sig = os.path.join(d, "model.sig")
        b = json.load(open(sig))
        b["verificationMaterial"]["publicKey"]["hint"] = ""
        json.dump(b, open(sig, "w"))
        r = ohm("verify", d, "--key", other_pub)
        check(r.returncode == 1 and "does not verify" in r.stderr,
              f"wrong key without a hint refused: {r.stderr.strip()}")

        # --- malformed signatures and wrong key types
        d = fresh(tmp, "malformed")
        ohm("sign", d, "--key", k256)
        good = open(os.path.join(d, "model.sig")).read()

        def bad_sig(text, expect, what):
            open(os.path.join(d, "model.sig"), "w").write(text)
            r = ohm("verify", d, "--key", p256)
            check(r.returncode == 1 and expect in r.stderr and "model.sig" in r.stderr,
                  f"{what}: {r.stderr.strip()[:200]}")

        bad_sig(good[: len(good) // 2], "not JSON", "truncated signature file")
        bad_sig("[]", "mediaType", "a JSON array")
        b = json.loads(good)
        b["dsseEnvelope"]["payload"] = "@@@"
        bad_sig(json.dumps(b), "not base64", "payload not base64")
        b = json.loads(good)
        payload = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
        payload["predicate"]["resources"][0]["digest"] = "0" * 64
        b["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
        bad_sig(json.dumps(b), "does not verify", "a re-written payload")
        b = json.loads(good)
        del b["dsseEnvelope"]["signatures"]
        bad_sig(json.dumps(b), "signatures", "no signatures")
        open(os.path.join(d, "model.sig"), "w").write(good)
        for key, what in ((prsa, "an RSA key"), (ped, "an Ed25519 key")):
            r = ohm("verify", d, "--key", key)
            check(r.returncode == 1 and "not an elliptic-curve key" in r.stderr,
                  f"verify with {what}: {r.stderr.strip()}")
        r = ohm("sign", d, "--key", krsa)
        check(r.returncode == 1 and "not an elliptic-curve key" in r.stderr,
              f"sign with an RSA key: {r.stderr.strip()}")
        r = ohm("sign", d, "--key", os.path.join(d, "config.json"))
        check(r.returncode == 1 and "not a PEM private key" in r.stderr,
              f"sign with a non-key file: {r.stderr.strip()}")
        os.remove(os.path.join(d, "model.sig"))
        r = ohm("verify", d, "--key", p256)
        check(r.returncode == 1 and "no signature file" in r.stderr, "verify without model.sig")

        # --- symbolic links: refused when signing unless --allow-symlinks
        d = fresh(tmp, "links")
        os.symlink(os.path.join(d, "config.json"), os.path.join(d, "link.json"))
        r = ohm("sign", d, "--key", k256)
        check(r.returncode == 1 and "link.json" in r.stderr and "symbolic link" in r.stderr,
              f"a symlink is refused: {r.stderr.strip()}")
        r = ohm("sign", d, "--key", k256, "--allow-symlinks")
        check(r.returncode == 0 and ohm("verify", d, "--key", p256).returncode == 0,
              "--allow-symlinks signs and verifies")

        # --- verification on load
        d = fresh(tmp, "load")
        ohm("sign", d, "--key", k256)
        args = ("generate", d, "-p", "ROMEO:", "-n", "3", "--greedy", "-t", "1")
        r = ohm(*args, "--verify-key", p256)
        check(r.returncode == 0 and "verified" in r.stderr and r.stdout.strip(),
              f"generate --verify-key loads a verified model: {r.stderr.strip()[:200]}")
        r = ohm(*args, env={"OHM_VERIFY_KEY": p256})
        check(r.returncode == 0 and "verified" in r.stderr, "OHM_VERIFY_KEY verifies too")
        flip(d)
        r = ohm(*args, "--verify-key", p256)
        check(r.returncode == 1 and "model.safetensors" in r.stderr and not r.stdout.strip(),
              f"a tampered model is not loaded: {r.stderr.strip()[:200]}")
        r = ohm(*args, env={"OHM_VERIFY_KEY": p256})
        check(r.returncode == 1 and "model.safetensors" in r.stderr,
              "OHM_VERIFY_KEY refuses a tampered model")
        r = ohm("bench", d, "-r", "1", "--prompt-tokens", "8", "-n", "4", "--verify-key", p256)
        check(r.returncode == 1 and "model.safetensors" in r.stderr, "bench --verify-key refuses")
        r = ohm("perplexity", d, "--text", "x " * 300, "-c", "64", "--verify-key", p256)
        check(r.returncode == 1 and "model.safetensors" in r.stderr,
              "perplexity --verify-key refuses")
        r = ohm("inspect", d, "--verify-key", p256)
        check(r.returncode == 1 and "model.safetensors" in r.stderr, "inspect --verify-key refuses")
        out = os.path.join(tmp, "q.gguf")
        r = ohm("quantize", d, out, "--type", "q8_0", "--verify-key", p256)
        check(r.returncode == 1 and "model.safetensors" in r.stderr and not os.path.exists(out),
              "quantize --verify-key refuses and writes nothing")
        r = ohm(*args)
        check(r.returncode == 0, "without a key the model loads as before")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
