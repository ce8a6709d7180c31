#!/usr/bin/env python3
"""Access-control attacks on `ohm hub serve` (issue 12): each check reproduces an attack and shows
that it is refused, next to the legitimate flow that must keep working.

- cross-repository LFS references (NDJSON `lfsFile` and the JSON form) and the resolve of the
  stolen path; the LFS batch/verify oracle; preupload and paths-info;
- `deletedFolder` / `deletedFile` with "/", ".", "./", "//", "", ".." and friends;
- file modes in the data directory (0600 files, 0700 directories, with the server run under
  umask 000);
- admin endpoints and commands (403/401 for others, list and revoke, a revoked token gets 401);
- web login: session cookie flags, CSRF on every POST form, logout, cookies never authenticate
  the API.

Usage: test_hub_attacks_access.py --ohm build/.../ohm
Exit codes: 0 passed, 1 a check failed, 77 huggingface_hub is not installed (ctest: skipped).
Only loopback addresses are used.
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import select
import stat
import subprocess
import sys
import tempfile
import urllib.parse

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub"):
        print("SKIP: huggingface_hub is not installed (run scripts/hub-client-venv.sh)")
        return 77

    tmp = tempfile.mkdtemp(prefix="ohm-hub-access-")
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)

    def cli(*a, ok=True):
        # umask 000: the modes checked below must not depend on the caller's umask
        p = subprocess.run([ohm, "hub", *a, "--data", data], capture_output=True, text=True,
                           umask=0)
        if ok and p.returncode != 0:
            raise AssertionError(f"ohm hub {' '.join(a)} -> {p.returncode}: {p.stderr}")
        return p

    cli("user", "add", "root", "--admin")
    for u in ("alice", "bob", "carol", "dave"):
        cli("user", "add", u)
    tok = {u: cli("token", "create", "--user", u, "--scope", "write", "--name", f"{u}-w").stdout.strip()
           for u in ("root", "alice", "bob", "carol", "dave")}
    tok["root-ro"] = cli("token", "create", "--user", "root", "--scope", "read",
                         "--name", "root-ro").stdout.strip()
    server = subprocess.Popen([ohm, "hub", "serve", "--data", data, "--host", "127.0.0.1",
                               "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True, umask=0)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 60)
        assert ready, "server did not start"
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        base = f"http://127.0.0.1:{port}"
        for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
            os.environ.pop(k, None)
        os.environ.update({"HF_ENDPOINT": base, "HF_HUB_DISABLE_XET": "1",
                           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": os.path.join(tmp, "hf_home"),
                           "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
        api = {u: HfApi(endpoint=base, token=t) for u, t in tok.items()}

        def req(method, path, body=None, token=None, headers=None):
            """(status, headers as a list of (name, value), body bytes); no redirects followed."""
            h = dict(headers or {})
            if token:
                h["Authorization"] = f"Bearer {token}"
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                h.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            out = (r.status, r.getheaders(), r.read())
            c.close()
            return out

        def ndjson(lines):
            return "".join(json.dumps(x) + "\n" for x in lines)

        # alice's private weights, uploaded the normal way
        weights = os.urandom(300_000)
        S, N = hashlib.sha256(weights).hexdigest(), len(weights)
        api["alice"].create_repo("alice/secret", private=True)
        api["alice"].upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors",
                                 repo_id="alice/secret")
        api["bob"].create_repo("bob/steal")  # public: anyone could read what lands here

        def t_cross_repo_commit():
            info = api["alice"].model_info("alice/secret", files_metadata=True)
            lfs = [s.lfs for s in info.siblings if s.rfilename == "model.safetensors"][0]
            assert lfs.sha256 == S and lfs.size == N, lfs
            sha_before = api["bob"].model_info("bob/steal").sha
            hdr = {"key": "header", "value": {"summary": "steal"}}
            for value in ({"path": "stolen.safetensors", "algo": "sha256", "oid": S, "size": N},
                          {"path": "stolen.safetensors", "algo": "sha256", "oid": S}):
                st, _, body = req("POST", "/api/models/bob/steal/commit/main",
                                  ndjson([hdr, {"key": "lfsFile", "value": value}]), tok["bob"],
                                  {"Content-Type": "application/x-ndjson"})
                msg = json.loads(body)["error"]
                assert st == 400, (st, body)
                assert S in msg and "stolen.safetensors" in msg and "upload it first" in msg, msg
            # the legacy JSON form
            st, _, body = req("POST", "/api/models/bob/steal/commit/main",
                              {"summary": "steal", "lfsFiles": [{"path": "stolen.safetensors",
                                                                 "algo": "sha256", "oid": S,
                                                                 "size": N}]}, tok["bob"])
            assert st == 400 and S in json.loads(body)["error"], (st, body)
            # the same answer as for an object that was never uploaded anywhere
            R = hashlib.sha256(os.urandom(32)).hexdigest()
            st2, _, body2 = req("POST", "/api/models/bob/steal/commit/main",
                                ndjson([hdr, {"key": "lfsFile", "value": {
                                    "path": "stolen.safetensors", "algo": "sha256", "oid": R,
                                    "size": N}}]), tok["bob"], {"Content-Type": "application/x-ndjson"})
            assert st2 == 400 and json.loads(body2)["error"].replace(R, S) == msg, (body2, msg)
            for who in (None, tok["bob"]):
                st, _, _ = req("GET", "/bob/steal/resolve/main/stolen.safetensors", token=who)
                assert st == 404, st
            assert api["bob"].model_info("bob/steal").sha == sha_before

        def batch(token, repo, op, objects):
            st, hdrs, body = req("POST", f"/{repo}.git/info/lfs/objects/batch",
                                 {"operation": op, "transfers": ["basic"], "objects": objects},
                                 token, {"Content-Type": "application/vnd.git-lfs+json",
                                         "Accept": "application/vnd.git-lfs+json"})
            assert st == 200, (st, body)
            return json.loads(body)["objects"]

        def shape(obj, oid):
            # the answer with the oid and the signature (which depends on the oid) blanked out
            s = json.dumps(obj, sort_keys=True).replace(oid, "OID")
            return re.sub(r"sig=[0-9a-f]+", "sig=SIG", s)

        def t_batch_oracle():
            R = hashlib.sha256(os.urandom(32)).hexdigest()
            up = batch(tok["bob"], "bob/steal", "upload", [{"oid": S, "size": N}, {"oid": R, "size": N}])
            assert "upload" in up[0]["actions"], up  # as if absent
            assert shape(up[0], S) == shape(up[1], R), up
            down = batch(tok["bob"], "bob/steal", "download", [{"oid": S, "size": N}, {"oid": R, "size": N}])
            assert shape(down[0], S) == shape(down[1], R) and down[0]["error"]["code"] == 404, down
            answers = []
            for oid in (S, R):
                st, _, body = req("POST", "/api/lfs-verify/models/bob/steal", {"oid": oid, "size": N},
                                  tok["bob"])
                answers.append((st, body.decode().replace(oid, "OID")))
            assert answers[0] == answers[1] and answers[0][0] == 404, answers
            # alice, who can read it, is told it is already there
            mine = batch(tok["alice"], "alice/secret", "upload", [{"oid": S, "size": N}])
            assert "actions" not in mine[0], mine

        def t_upload_with_garbage_then_commit():
            up = batch(tok["bob"], "bob/steal", "upload", [{"oid": S, "size": N}])
            href = up[0]["actions"]["upload"]["href"]
            path = href[href.index("/api/"):]
            st, _, _ = req("PUT", path, os.urandom(N), headers={"Content-Type": "application/octet-stream"})
            assert st == 400, st  # the bytes are hashed although the object exists
            st, _, _ = req("POST", "/api/models/bob/steal/commit/main",
                           ndjson([{"key": "header", "value": {"summary": "x"}},
                                   {"key": "lfsFile", "value": {"path": "s.safetensors", "algo": "sha256",
                                                                "oid": S, "size": N}}]),
                           tok["bob"], {"Content-Type": "application/x-ndjson"})
            assert st == 400, st

        def t_preupload_paths_info_do_not_leak():
            st, _, body = req("POST", "/api/models/bob/steal/preupload/main",
                              {"files": [{"path": "stolen.safetensors", "size": N, "sample": ""}]},
                              tok["bob"])
            files = json.loads(body)["files"]
            assert st == 200 and "oid" not in files[0], body
            st, _, body = req("POST", "/api/models/bob/steal/paths-info/main",
                              {"paths": ["stolen.safetensors", "model.safetensors"]}, tok["bob"])
            assert st == 200 and json.loads(body) == [], body
            for who in (None, tok["bob"]):
                st, _, body = req("POST", "/api/models/alice/secret/paths-info/main",
                                  {"paths": ["model.safetensors"]}, who)
                assert st in (401, 404) and S.encode() not in body, (st, body)

        def t_identical_content_still_uploads():
            # the same bytes by their owner into a second repo: no transfer needed
            api["alice"].create_repo("alice/second", private=True)
            api["alice"].upload_file(path_or_fileobj=weights, path_in_repo="copy.safetensors",
                                     repo_id="alice/second")
            # by another user who really has them: uploaded, hashed, granted to his repo
            api["bob"].create_repo("bob/own")
            api["bob"].create_commit("bob/own", operations=[
                CommitOperationAdd("w.safetensors", weights),
                CommitOperationAdd("big.bin", os.urandom(50_000))], commit_message="mine")
            for repo, path, who in (("alice/second", "copy.safetensors", "alice"),
                                    ("bob/own", "w.safetensors", "bob")):
                p = hf_hub_download(repo, path, token=tok[who], cache_dir=os.path.join(tmp, f"c-{who}"))
                assert open(p, "rb").read() == weights, repo
            # and now bob may reuse them in his other repos (he can read bob/own)
            st, _, body = req("POST", "/api/models/bob/steal/commit/main",
                              ndjson([{"key": "header", "value": {"summary": "reuse"}},
                                      {"key": "lfsFile", "value": {"path": "reuse.safetensors",
                                                                   "algo": "sha256", "oid": S,
                                                                   "size": N}}]),
                              tok["bob"], {"Content-Type": "application/x-ndjson"})
            assert st == 200, (st, body)

        def t_deleted_folder_forms():
            api["carol"].create_repo("carol/m")
            api["carol"].create_commit("carol/m", operations=[
                CommitOperationAdd("sub/a.txt", b"a"), CommitOperationAdd("b.txt", b"b")],
                commit_message="files")
            before = api["carol"].model_info("carol/m").sha
            url = "/api/models/carol/m/commit/main"
            for key in ("deletedFolder", "deletedFile"):
                for p in ("/", ".", "./", "//", "", "..", "../", "./.", "/.", "a//", "/sub",
                          "sub/../", ".git/", "..\\"):
                    st, _, body = req("POST", url, ndjson([{"key": "header", "value": {"summary": "x"}},
                                                           {"key": key, "value": {"path": p}}]),
                                      tok["carol"], {"Content-Type": "application/x-ndjson"})
                    err = json.loads(body)["error"]
                    assert st == 400, (key, p, st, body)
                    assert f"'{p}'" in err, (key, p, err)
            st, _, body = req("POST", url, {"summary": "x", "deletedFolders": [{"path": "/"}]},
                              tok["carol"])
            assert st == 400, (st, body)
            assert api["carol"].model_info("carol/m").sha == before
            files = api["carol"].list_repo_files("carol/m")
            assert ".gitattributes" in files and "sub/a.txt" in files, files
            api["carol"].delete_folder("sub", repo_id="carol/m")
            api["carol"].create_commit("carol/m", operations=[CommitOperationDelete("b.txt")],
                                       commit_message="rm")
            assert api["carol"].list_repo_files("carol/m") == [".gitattributes"]

        def t_file_modes():
            files = dirs = 0
            for dp, dns, fns in os.walk(data):
                for d in [dp]:
                    mode = stat.S_IMODE(os.lstat(d).st_mode)
                    assert mode == 0o700, (d, oct(mode))
                    dirs += 1
                for f in fns:
                    mode = stat.S_IMODE(os.lstat(os.path.join(dp, f)).st_mode)
                    assert mode == 0o600, (os.path.join(dp, f), oct(mode))
                    files += 1
            assert files >= 5 and dirs >= 5, (files, dirs)

        def token_id(name):
            st, _, body = req("GET", "/api/admin/tokens", token=tok["root"])
            return [t["id"] for t in json.loads(body) if t["name"] == name][0]

        def t_admin_api():
            for path in ("/api/admin/users", "/api/admin/tokens"):
                assert req("GET", path)[0] == 401
                assert req("GET", path, token=tok["bob"])[0] == 403
            assert req("DELETE", "/api/admin/users/dave", token=tok["bob"])[0] == 403
            assert req("DELETE", f"/api/admin/tokens/{token_id('dave-w')}", token=tok["bob"])[0] == 403
            assert req("DELETE", f"/api/admin/tokens/{token_id('dave-w')}", token=tok["root-ro"])[0] == 403
            st, _, body = req("GET", "/api/admin/users", token=tok["root"])
            users = {u["name"]: u for u in json.loads(body)}
            assert st == 200 and users["root"]["isAdmin"] and not users["bob"]["isAdmin"], users
            st, _, body = req("GET", "/api/admin/tokens", token=tok["root"])
            assert st == 200 and len(json.loads(body)) == 6, body
            for t in tok.values():  # never a secret, nor its hash
                assert t.encode() not in body and hashlib.sha256(t.encode()).hexdigest().encode() not in body
            assert set(json.loads(body)[0]) == {"id", "name", "user", "role", "createdAt", "lastUsedAt"}
            st, _, body = req("GET", "/api/admin/tokens?user=bob", token=tok["root"])
            assert [t["name"] for t in json.loads(body)] == ["bob-w"], body
            # revoke dave's token: it is refused from then on
            assert req("GET", "/api/whoami-v2", token=tok["dave"])[0] == 200
            st, _, body = req("DELETE", f"/api/admin/tokens/{token_id('dave-w')}", token=tok["root"])
            assert st == 200 and json.loads(body)["revoked"]["user"] == "dave", body
            assert req("GET", "/api/whoami-v2", token=tok["dave"])[0] == 401
            assert req("DELETE", "/api/admin/tokens/999999", token=tok["root"])[0] == 404
            # users: one with repos is kept, one without is deleted
            st, _, body = req("DELETE", "/api/admin/users/carol", token=tok["root"])
            assert st == 400 and "repo" in json.loads(body)["error"], body
            assert req("DELETE", "/api/admin/users/dave", token=tok["root"])[0] == 200
            assert req("DELETE", "/api/admin/users/dave", token=tok["root"])[0] == 404
            st, _, body = req("GET", "/api/admin/users", token=tok["root"])
            assert "dave" not in [u["name"] for u in json.loads(body)]

        def t_admin_cli():
            cli("user", "add", "erin")
            erin = cli("token", "create", "--user", "erin", "--name", "erin-laptop").stdout.strip()
            out = cli("token", "list").stdout
            assert "erin-laptop" in out and "bob-w" in out and "root-ro" in out, out
            for t in list(tok.values()) + [erin]:
                assert t not in out and hashlib.sha256(t.encode()).hexdigest() not in out
            listed = json.loads(cli("token", "list", "--user", "erin", "--json").stdout)
            assert [t["name"] for t in listed] == ["erin-laptop"], listed
            assert req("GET", "/api/whoami-v2", token=erin)[0] == 200
            cli("token", "revoke", "erin-laptop")
            assert req("GET", "/api/whoami-v2", token=erin)[0] == 401
            p = cli("token", "revoke", "erin-laptop", ok=False)
            assert p.returncode == 1 and "erin-laptop" in p.stderr, p.stderr
            users = cli("user", "list").stdout
            assert "erin" in users and re.search(r"^root\s+user\s+yes", users, re.M), users
            p = cli("user", "delete", "bob", ok=False)  # owns repos
            assert p.returncode == 1 and "repo" in p.stderr, p.stderr
            cli("user", "delete", "erin")
            assert "erin" not in cli("user", "list").stdout
            cli("user", "admin", "alice")
            assert json.loads(cli("user", "list", "--json").stdout)[[u["name"] for u in json.loads(
                cli("user", "list", "--json").stdout)].index("alice")]["admin"] is True
            cli("user", "admin", "alice", "--revoke")

        def cookies_of(hdrs):
            return [v for k, v in hdrs if k.lower() == "set-cookie"]

        def login(token):
            st, hdrs, body = req("GET", "/login")
            assert st == 200, st
            form_csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
            pre = [c for c in cookies_of(hdrs) if c.startswith("ohm_login_csrf=")][0]
            assert "HttpOnly" in pre and "SameSite=Strict" in pre, pre
            pre_cookie = pre.split(";")[0]
            form = urllib.parse.urlencode({"token": token, "csrf": form_csrf})
            st, hdrs, _ = req("POST", "/login", form, headers={
                "Content-Type": "application/x-www-form-urlencoded", "Cookie": pre_cookie})
            return st, hdrs, form_csrf, pre_cookie

        def session_page(cookie, path):
            return req("GET", path, headers={"Cookie": cookie})

        def csrf_of(body):
            return re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()

        def t_login_session_csrf():
            form_hdr = {"Content-Type": "application/x-www-form-urlencoded"}
            # login without the form's CSRF value, or with another one: refused
            st, _, _ = req("POST", "/login", urllib.parse.urlencode({"token": tok["alice"]}), headers=form_hdr)
            assert st == 403, st
            st, _, f, pre = login("hf_" + "0" * 40)
            assert st == 401, st
            st, hdrs, _, _ = login(tok["alice"])
            assert st == 303, st
            sess = [c for c in cookies_of(hdrs) if c.startswith("ohm_session=")][0]
            for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
                assert attr in sess, sess
            cookie = sess.split(";")[0]
            assert re.fullmatch(r"ohm_session=[0-9a-f]{64}", cookie), cookie
            # the owner browses her private repo; anonymous browsers and bob do not see it
            st, _, body = session_page(cookie, "/alice/secret")
            assert st == 200 and b"model.safetensors" in session_page(cookie, "/alice/secret/tree/main")[2]
            assert b'id="current-user">alice<' in body and b'action="/logout"' in body
            assert f'HF_ENDPOINT={base}'.encode() in body, "the Download box shows the Hub's URL"
            assert req("GET", "/alice/secret")[0] == 404
            assert b"alice/secret" in session_page(cookie, "/models")[2]
            # the cookie authenticates web pages only, never the API
            assert req("GET", "/api/models/alice/secret", headers={"Cookie": cookie})[0] == 401
            assert req("GET", "/alice/secret/resolve/main/model.safetensors", headers={"Cookie": cookie})[0] == 401
            # logout needs the session's CSRF token
            csrf = csrf_of(body)
            st, _, _ = req("POST", "/logout", "", headers={**form_hdr, "Cookie": cookie})
            assert st == 403, st
            st, _, _ = req("POST", "/logout", urllib.parse.urlencode({"csrf": "0" * 64}),
                           headers={**form_hdr, "Cookie": cookie})
            assert st == 403, st
            st, _, _ = req("POST", "/logout", urllib.parse.urlencode({"csrf": csrf}),
                           headers={**form_hdr, "Cookie": cookie, "Origin": "http://evil.example"})
            assert st == 403, st
            assert session_page(cookie, "/alice/secret")[0] == 200  # still logged in
            st, hdrs, _ = req("POST", "/logout", urllib.parse.urlencode({"csrf": csrf}),
                              headers={**form_hdr, "Cookie": cookie})
            assert st == 303 and any("Max-Age=0" in c for c in cookies_of(hdrs)), (st, hdrs)
            assert session_page(cookie, "/alice/secret")[0] == 404  # the session is gone
            # a forged session id is just anonymous
            assert session_page("ohm_session=" + "a" * 64, "/alice/secret")[0] == 404

        def t_web_admin():
            # bob's session gets no admin page; root's does, and its forms need the CSRF token
            st, hdrs, _, _ = login(tok["bob"])
            bob_cookie = [c for c in cookies_of(hdrs) if c.startswith("ohm_session=")][0].split(";")[0]
            assert session_page(bob_cookie, "/admin")[0] == 403
            assert req("GET", "/admin")[0] == 303  # to the login page
            st, hdrs, _, _ = login(tok["root"])
            cookie = [c for c in cookies_of(hdrs) if c.startswith("ohm_session=")][0].split(";")[0]
            st, _, body = session_page(cookie, "/admin")
            assert st == 200 and b'id="users"' in body and b'id="tokens"' in body, st
            for t in tok.values():
                assert t.encode() not in body
            csrf = csrf_of(body)
            victim = cli("token", "create", "--user", "carol", "--name", "carol-web").stdout.strip()
            vid = token_id("carol-web")
            form_hdr = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
            st, _, _ = req("POST", f"/admin/tokens/{vid}/revoke", "", headers=form_hdr)
            assert st == 403 and req("GET", "/api/whoami-v2", token=victim)[0] == 200
            st, _, _ = req("POST", f"/admin/tokens/{vid}/revoke", urllib.parse.urlencode({"csrf": csrf}),
                           headers={**form_hdr, "Cookie": bob_cookie})
            assert st == 403 and req("GET", "/api/whoami-v2", token=victim)[0] == 200
            st, _, body = req("POST", f"/admin/tokens/{vid}/revoke", urllib.parse.urlencode({"csrf": csrf}),
                              headers=form_hdr)
            assert st == 200 and b"revoked" in body, (st, body[:300])
            assert req("GET", "/api/whoami-v2", token=victim)[0] == 401
            # revoking the token behind a session ends the session
            st, hdrs, _, _ = login(tok["carol"])
            carol_cookie = [c for c in cookies_of(hdrs) if c.startswith("ohm_session=")][0].split(";")[0]
            assert b'id="current-user">carol<' in session_page(carol_cookie, "/")[2]
            st, _, _ = req("POST", f"/admin/tokens/{token_id('carol-w')}/revoke",
                           urllib.parse.urlencode({"csrf": csrf}), headers=form_hdr)
            assert st == 200
            assert b'id="current-user"' not in session_page(carol_cookie, "/")[2]

        def t_card_table_and_download_url():
            api["carol"].create_repo("carol/card")
            api["carol"].upload_file(path_or_fileobj=(
                b"---\nlicense: mit\n---\n# Card\n\n| metric | value |\n|:--|--:|\n"
                b"| acc | <script>alert(1)</script> |\n"), path_in_repo="README.md",
                repo_id="carol/card")
            st, hdrs, body = req("GET", "/carol/card")
            assert st == 200, st
            assert b'<th align="left">metric</th>' in body and b"<td align=\"left\">acc</td>" in body, body[:2000]
            assert b"<script>alert" not in body
            assert f"HF_ENDPOINT={base}".encode() in body
            csp = dict((k.lower(), v) for k, v in hdrs)["content-security-policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp, csp

        check("model card: GFM table rendered safely; Download box shows the Hub's URL",
              t_card_table_and_download_url)
        check("cross-repo lfsFile commit (NDJSON and JSON) refused; the stolen path is 404",
              t_cross_repo_commit)
        check("LFS batch/verify: a private oid and a random oid get the same answer", t_batch_oracle)
        check("garbage bytes for a known oid are rejected; the commit stays refused",
              t_upload_with_garbage_then_commit)
        check("preupload and paths-info reveal nothing of other repos", t_preupload_paths_info_do_not_leak)
        check("identical content: same owner (no transfer) and another user (uploaded) both work",
              t_identical_content_still_uploads)
        check("deletedFolder/deletedFile '/', '.', './', '//', '', '..': 400 naming the path",
              t_deleted_folder_forms)
        check("data dir: files 0600, directories 0700 (server under umask 000)", t_file_modes)
        check("admin API: 401/403 for others, list users/tokens, revoke -> 401, delete user",
              t_admin_api)
        check("admin CLI: token list/revoke, user list/delete/admin", t_admin_cli)
        check("web login: cookie flags, private repo for its owner, CSRF on logout, no API by cookie",
              t_login_session_csrf)
        check("web admin: 403 for non-admins, CSRF-checked revoke, revoked token ends its session",
              t_web_admin)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return hubtest.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
