#!/usr/bin/env python3
"""The hub's web UI in a real browser: headless Chromium driven over the DevTools Protocol.

Usage: test_hub_webui.py --ohm build/.../ohm [--out DIR] [--keep]
Starts `ohm hub serve` on a free loopback port with a temporary data dir, fills it through the admin
CLI and the official huggingface_hub client, then checks list pages (rows, live search, server-side
search, sort by likes), a model page (card rendered, <h1> heading), files and versions (files,
branch/tag selector, download link), history, escaping of hostile names (no dialog ever opens) and
that private repos stay invisible. Screenshots (PNG) go to --out and are checked to decode and not
be blank.
Exit codes: 0 passed, 1 a check failed, 77 chromium or the Python packages are missing (skipped).
Needs `chromium` (Debian package) and `huggingface_hub` + `websocket-client` (scripts/hub-client-venv.sh).
"""
import argparse
import json
import os
import sys
import tempfile
import urllib.request

import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from browser import Cdp, check_png, find_chromium, launch, stop_all  # noqa: E402,F401
from hubtest import check, run  # noqa: E402



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--out", default="")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub", "websocket"):
        print("SKIP: huggingface_hub / websocket-client not installed (run scripts/hub-client-venv.sh)")
        return 77
    chromium = find_chromium()
    if not chromium:
        print("SKIP: chromium is not installed (apt-get install chromium)")
        return 77

    tmp = tempfile.mkdtemp(prefix="ohm-hub-webui-")
    out = os.path.abspath(args.out or os.path.join(tmp, "screenshots"))
    os.makedirs(out, exist_ok=True)
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)
    run([ohm, "hub", "user", "add", "alice", "--data", data])
    run([ohm, "hub", "user", "add", "bob", "--data", data])
    alice = run([ohm, "hub", "token", "create", "--data", data, "--user", "alice", "--scope", "write"])
    bob = run([ohm, "hub", "token", "create", "--data", data, "--user", "bob", "--scope", "write"])
    server, base = hubtest.start_server(ohm, data)
    browser = None
    try:
        hubtest.use_endpoint(base, tmp)
        from huggingface_hub import CommitOperationAdd, HfApi
        api = HfApi(endpoint=base, token=alice)

        # ---- content: a model with a card, files in a folder, two commits, a branch and a tag
        api.create_repo("alice/tiny-model")
        card = ("---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n"
                "# Tiny Model\n\nA *very* small model for the **web UI** test.\n\n"
                "<script>alert('card')</script>\n\n[bad link](javascript:alert(1))\n\n"
                "## Usage\n\n```python\nfrom transformers import AutoModel\n```\n")
        config = '{"model_type": "llama", "hidden_size": 64}\n'
        api.create_commit("alice/tiny-model", commit_message="Add model card and config", operations=[
            CommitOperationAdd("README.md", card.encode()),
            CommitOperationAdd("config.json", config.encode()),
            CommitOperationAdd("weights/model.safetensors", os.urandom(300_000)),
        ])
        api.create_commit("alice/tiny-model", commit_message="<script>alert('msg')</script> notes & names",
                          operations=[
                              CommitOperationAdd("notes.txt", b"hello <b>world</b>\n"),
                              CommitOperationAdd("<img src=x onerror=alert(1)>.txt", b"x"),
                          ])
        api.create_branch("alice/tiny-model", branch="dev")
        api.create_tag("alice/tiny-model", tag="v1")
        api.create_repo("alice/other-model")
        api.upload_file(path_or_fileobj=b"# Other\n", path_in_repo="README.md", repo_id="alice/other-model")
        api.create_repo("alice/secret-model", private=True)
        api.create_repo("alice/some-data", repo_type="dataset")
        req = urllib.request.Request(f"{base}/api/models/alice/other-model/like", method="POST",
                                     headers={"Authorization": f"Bearer {bob}"})
        assert json.load(urllib.request.urlopen(req))["likes"] == 1

        # ---- browser
        browser, cdp = launch(tmp)
        rows_js = "Array.from(document.querySelectorAll('.repo-row')).filter(r => !r.hidden)" \
                  ".map(r => r.dataset.id)"

        def t_list():
            cdp.navigate(f"{base}/models")
            rows = cdp.eval(rows_js)
            assert "alice/tiny-model" in rows and "alice/other-model" in rows, rows
            assert "alice/secret-model" not in rows, rows
            assert cdp.eval("document.title").startswith("Models"), cdp.eval("document.title")
            print("  list:", cdp.screenshot(os.path.join(out, "models.png")))
            # live filter as one types
            cdp.eval("(() => { const q = document.getElementById('search'); q.value = 'tiny';"
                     " q.dispatchEvent(new Event('input')); })()")
            assert cdp.eval(rows_js) == ["alice/tiny-model"], cdp.eval(rows_js)
            assert cdp.eval("document.getElementById('shown-count').textContent") == "1"
            # server-side search (the form's GET) and sort by likes
            cdp.navigate(f"{base}/models?search=other")
            assert cdp.eval(rows_js) == ["alice/other-model"], cdp.eval(rows_js)
            cdp.navigate(f"{base}/models?sort=likes")
            assert cdp.eval(rows_js)[0] == "alice/other-model", cdp.eval(rows_js)
            assert cdp.eval("document.getElementById('sort').value") == "likes"
            cdp.navigate(f"{base}/datasets")
            assert cdp.eval(rows_js) == ["alice/some-data"], cdp.eval(rows_js)
            cdp.navigate(f"{base}/")
            assert "alice/tiny-model" in cdp.eval(rows_js)

        def t_model_page():
            cdp.navigate(f"{base}/alice/tiny-model")
            assert cdp.eval("document.querySelector('#card h1').textContent") == "Tiny Model"
            assert cdp.eval("document.querySelector('#card h2').textContent") == "Usage"
            assert cdp.eval("document.querySelector('#card em').textContent") == "very"
            assert cdp.eval("document.querySelectorAll('#card script').length") == 0
            assert not cdp.eval("Array.from(document.querySelectorAll('#card a'))"
                                ".some(a => (a.getAttribute('href') || '').startsWith('javascript'))")
            assert "license" not in cdp.eval("document.getElementById('card').textContent")
            assert cdp.eval("document.querySelector('#tab-card').classList.contains('active')")
            print("  model:", cdp.screenshot(os.path.join(out, "model.png")))

        def t_files():
            cdp.navigate(f"{base}/alice/tiny-model/tree/main")
            files = cdp.eval("Array.from(document.querySelectorAll('tr.file')).map(r => r.dataset.path)")
            for f in ("README.md", "config.json", "notes.txt", ".gitattributes",
                      "<img src=x onerror=alert(1)>.txt"):
                assert f in files, files
            dirs = cdp.eval("Array.from(document.querySelectorAll('tr.dir a')).map(a => a.textContent)")
            assert dirs == ["weights/"], dirs
            assert cdp.eval("document.querySelectorAll('img').length") == 0  # hostile name is text
            opts = cdp.eval("Array.from(document.querySelectorAll('#rev-select option'))"
                            ".map(o => o.textContent)")
            assert {"main", "dev", "v1"} <= set(opts), opts
            sizes = cdp.eval("Array.from(document.querySelectorAll('tr.file td.size'))"
                             ".map(t => t.textContent)")
            assert all(s for s in sizes), sizes
            got = cdp.eval("fetch(document.querySelector('tr.file[data-path=\"config.json\"] a.download')"
                           ".href).then(r => r.text())", await_promise=True)
            assert got == config, got
            print("  files:", cdp.screenshot(os.path.join(out, "files.png")))
            cdp.navigate(f"{base}/alice/tiny-model/tree/main/weights")
            files = cdp.eval("Array.from(document.querySelectorAll('tr.file')).map(r => r.dataset.path)")
            assert files == ["weights/model.safetensors"], files
            assert "300 kB" in cdp.eval("document.querySelector('tr.file td.size').textContent")
            # switching the branch selector navigates to that revision
            cdp.events.clear()
            cdp.eval("(() => { const s = document.getElementById('rev-select');"
                     " s.value = Array.from(s.options).find(o => o.textContent === 'v1').value;"
                     " s.dispatchEvent(new Event('change')); })()")
            cdp.wait_event("Page.loadEventFired")
            assert cdp.eval("location.pathname") == "/alice/tiny-model/tree/v1/weights", \
                cdp.eval("location.pathname")

        def t_history():
            cdp.navigate(f"{base}/alice/tiny-model/commits/main")
            titles = cdp.eval("Array.from(document.querySelectorAll('.commit-title'))"
                              ".map(t => t.textContent)")
            assert titles == ["<script>alert('msg')</script> notes & names",
                              "Add model card and config", "initial commit"], titles
            assert cdp.eval("document.querySelectorAll('script').length") == 1  # only ohm.js
            print("  history:", cdp.screenshot(os.path.join(out, "history.png")))

        def t_private_and_blob():
            cdp.navigate(f"{base}/alice/secret-model")
            assert cdp.eval("document.querySelector('h1').textContent") == "404"
            cdp.navigate(f"{base}/alice/tiny-model/blob/main/notes.txt")
            assert cdp.eval("document.getElementById('blob').textContent") == "hello <b>world</b>\n"
            assert cdp.eval("document.querySelectorAll('#blob b').length") == 0

        def t_no_dialogs():
            assert not cdp.dialogs(), cdp.dialogs()

        check("web UI list pages, search, sort", t_list)
        check("web UI model page renders the card", t_model_page)
        check("web UI files and versions", t_files)
        check("web UI commit history", t_history)
        check("web UI private repo hidden, blob view escaped", t_private_and_blob)
        check("web UI never ran injected script", t_no_dialogs)
    finally:
        stop_all(browser, server)
    print(f"screenshots in {out}")
    return hubtest.finish(tmp, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
