#!/usr/bin/env python3
"""Likes and gated repos through the official huggingface_hub client against `ohm hub serve`.

Usage: test_hub_gated.py --ohm build/.../ohm
Exit codes: 0 passed, 1 a check failed, 77 huggingface_hub is not installed (ctest: skipped).
"""
import argparse
import json
import os
import sys
import tempfile
import urllib.request

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check, run  # noqa: E402



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub"):
        print("SKIP: huggingface_hub is not installed (run scripts/hub-client-venv.sh)")
        return 77
    import huggingface_hub

    tmp = tempfile.mkdtemp(prefix="ohm-hub-gated-")
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)
    for u in ("alice", "bob", "carol"):
        run([ohm, "hub", "user", "add", u, "--data", data])
    tok = {u: run([ohm, "hub", "token", "create", "--data", data, "--user", u, "--scope", "write"])
           for u in ("alice", "bob", "carol")}
    server, base = hubtest.start_server(ohm, data)
    try:
        hubtest.use_endpoint(base, tmp)
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError
        api = {u: HfApi(endpoint=base, token=t) for u, t in tok.items()}
        alice, bob, carol = api["alice"], api["bob"], api["carol"]
        alice.create_repo("alice/gated")
        alice.upload_file(path_or_fileobj=b'{"a": 1}\n', path_in_repo="config.json", repo_id="alice/gated")

        def post(path, token, body=None):
            req = urllib.request.Request(base + path, method="POST", data=json.dumps(body or {}).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            return json.load(urllib.request.urlopen(req))

        def t_likes():
            # HfApi has no like() any more (the Hub wants it from the web UI); it is a POST
            assert post("/api/models/alice/gated/like", tok["bob"])["likes"] == 1
            assert post("/api/models/alice/gated/like", tok["bob"])["likes"] == 1  # once per user
            assert post("/api/models/alice/gated/like", tok["carol"])["likes"] == 2
            assert alice.model_info("alice/gated").likes == 2
            liked = bob.list_liked_repos()
            assert liked.user == "bob" and liked.models == ["alice/gated"] and liked.total == 1, liked
            assert [u.username for u in alice.list_repo_likers("alice/gated")] == ["bob", "carol"]
            carol.unlike("alice/gated")
            assert alice.model_info("alice/gated").likes == 1
            assert carol.list_liked_repos().total == 0
            assert [m.id for m in alice.list_models(sort="likes", author="alice")] == ["alice/gated"]

        fresh = iter(range(1000))

        def download(who):  # into a new cache each time, so every call asks the server
            return hf_hub_download("alice/gated", "config.json", token=tok.get(who, False),
                                   cache_dir=os.path.join(tmp, f"cache-{who}-{next(fresh)}"))

        def t_gated_manual():
            alice.update_repo_settings("alice/gated", gated="manual")
            assert alice.model_info("alice/gated").gated == "manual"
            assert bob.model_info("alice/gated").id == "alice/gated"  # metadata stays visible
            for who in ("bob", "anonymous"):
                try:
                    download(who)
                    raise AssertionError(f"{who} downloaded a gated file")
                except GatedRepoError:
                    pass
            assert open(download("alice")).read() == '{"a": 1}\n'  # the owner can
            # bob asks (what the Hub's request form does), alice sees it pending and accepts
            assert post("/api/models/alice/gated/user-access-request", tok["bob"])["status"] == "pending"
            try:
                download("bob")
                raise AssertionError("pending request gave access")
            except GatedRepoError:
                pass
            try:
                list(bob.list_pending_access_requests("alice/gated"))
                raise AssertionError("bob listed requests of alice's repo")
            except HfHubHTTPError as e:
                assert e.response.status_code == 403, e
            pending = list(alice.list_pending_access_requests("alice/gated"))
            assert [(r.username, r.status) for r in pending] == [("bob", "pending")], pending
            alice.accept_access_request("alice/gated", "bob")
            assert [r.username for r in alice.list_accepted_access_requests("alice/gated")] == ["bob"]
            assert open(download("bob")).read() == '{"a": 1}\n'
            alice.reject_access_request("alice/gated", "bob", rejection_reason="no")
            try:
                download("bob")
                raise AssertionError("rejected user downloaded")
            except GatedRepoError:
                pass
            assert [r.username for r in alice.list_rejected_access_requests("alice/gated")] == ["bob"]
            alice.cancel_access_request("alice/gated", "bob")
            assert [r.username for r in alice.list_pending_access_requests("alice/gated")] == ["bob"]
            # grant without a request
            alice.grant_access("alice/gated", "carol")
            assert open(download("carol")).read() == '{"a": 1}\n'
            try:
                alice.grant_access("alice/gated", "carol")
                raise AssertionError("granting twice")
            except HfHubHTTPError as e:
                assert e.response.status_code == 400, e

        def t_gated_auto():
            alice.update_repo_settings("alice/gated", gated="auto")
            try:
                download("bob")
                raise AssertionError("bob downloaded before asking")
            except GatedRepoError:
                pass
            assert post("/api/models/alice/gated/user-access-request", tok["bob"])["status"] == "accepted"
            assert open(download("bob")).read() == '{"a": 1}\n'
            alice.update_repo_settings("alice/gated", gated=False)
            assert open(download("anonymous")).read() == '{"a": 1}\n'

        check("likes: like once per user, unlike, list_liked_repos, likers, sort", t_likes)
        check("gated manual: GatedRepoError, request, accept, reject, cancel, grant", t_gated_manual)
        check("gated auto: access granted on request", t_gated_auto)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return hubtest.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
