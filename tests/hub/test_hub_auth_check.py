#!/usr/bin/env python3
"""HfApi.auth_check (GET /api/{T}/{repo}/auth-check[/write]) through the official huggingface_hub
client against `ohm hub serve`: public, private, gated and missing repos, read and write access,
anonymous and authenticated callers, a token that is not valid.

Usage: test_hub_auth_check.py --ohm build/.../ohm
Exit codes: 0 passed, 1 a check failed, 77 huggingface_hub is not installed (ctest: skipped).
"""
import argparse
import os
import sys
import tempfile

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub"):
        print("SKIP: huggingface_hub is not installed (run scripts/hub-client-venv.sh)")
        return 77

    tmp = tempfile.mkdtemp(prefix="ohm-hub-auth-check-")
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)
    for u in ("alice", "bob"):
        run([ohm, "hub", "user", "add", u, "--data", data])
    tok = {u: run([ohm, "hub", "token", "create", "--data", data, "--user", u, "--scope", "write"])
           for u in ("alice", "bob")}
    tok["alice_ro"] = run([ohm, "hub", "token", "create", "--data", data, "--user", "alice",
                           "--scope", "read"])
    server, base = hubtest.start_server(ohm, data)
    try:
        hubtest.use_endpoint(base, tmp)
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
        api = {u: HfApi(endpoint=base, token=t) for u, t in tok.items()}
        api["anonymous"] = HfApi(endpoint=base, token=False)
        alice = api["alice"]
        alice.create_repo("alice/public")
        alice.create_repo("alice/private", private=True)
        alice.create_repo("alice/data", repo_type="dataset")
        alice.create_repo("alice/gated")
        alice.update_repo_settings("alice/gated", gated="manual")

        def fails(who, repo, exc, status, **kw):
            try:
                api[who].auth_check(repo, **kw)
            except exc as e:
                assert e.response.status_code == status, (who, repo, kw, e.response.status_code)
                return
            raise AssertionError(f"auth_check({repo}, {kw}) as {who} passed")

        def t_read():
            for who in ("alice", "alice_ro", "bob", "anonymous"):
                api[who].auth_check("alice/public")
                api[who].auth_check("alice/data", repo_type="dataset")
            alice.auth_check("alice/private")
            alice.auth_check("alice/gated")  # the owner passes its own gate
            fails("bob", "alice/private", RepositoryNotFoundError, 404)
            fails("anonymous", "alice/private", RepositoryNotFoundError, 401)
            fails("bob", "alice/nope", RepositoryNotFoundError, 404)
            fails("alice", "alice/data", RepositoryNotFoundError, 404)  # a dataset, not a model

        def t_gated():
            fails("bob", "alice/gated", GatedRepoError, 403)
            fails("anonymous", "alice/gated", GatedRepoError, 401)
            alice.grant_access("alice/gated", "bob")
            api["bob"].auth_check("alice/gated")

        def t_write():
            alice.auth_check("alice/public", write=True)
            alice.auth_check("alice/data", repo_type="dataset", write=True)
            fails("alice_ro", "alice/public", HfHubHTTPError, 403, write=True)
            fails("bob", "alice/public", HfHubHTTPError, 403, write=True)
            fails("anonymous", "alice/public", HfHubHTTPError, 401, write=True)
            fails("bob", "alice/private", RepositoryNotFoundError, 404, write=True)

        def t_bad_token():
            bad = HfApi(endpoint=base, token="hf_" + "0" * 40)
            try:
                bad.auth_check("alice/public")
                raise AssertionError("an unknown token passed")
            except HfHubHTTPError as e:
                assert e.response.status_code == 401, e

        check("auth_check: public, private, missing and other-type repos", t_read)
        check("auth_check: gated repos (GatedRepoError until access is granted)", t_gated)
        check("auth_check(write=True): write tokens of the namespace only", t_write)
        check("auth_check: an unknown token is refused (401)", t_bad_token)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return hubtest.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
