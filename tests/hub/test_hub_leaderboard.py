#!/usr/bin/env python3
"""Evaluation results on the Hub: `ohm eval --push-to-hub`, `/api/models?expand=evalResults`,
the `/leaderboard` page and a model's eval page (issue 19, "On the Hub").

Usage: test_hub_leaderboard.py --ohm build/.../ohm [--out DIR] [--keep]
Starts `ohm hub serve`, runs `ohm eval` on the demo model with tiny fixture tasks and
`--push-to-hub`, then checks: the model card's model-index as huggingface_hub's own parser reads
it (ModelCard.load(...).data.eval_results: values and types), the rest of an existing card kept
byte for byte, same task/metric entries replaced, one commit naming the tasks; the API
(list_models / model_info with expand=["evalResults"]); that private and gated repos' results
never reach callers who may not read them (API, cardData, leaderboard, eval page); HTML escaping
of hostile model, task and metric names; and, in headless Chromium, the leaderboard (ranking,
task filter, sortable columns, links to the eval pages) with non-blank screenshots in --out.
Exit codes: 0 passed, 1 a check failed, 77 huggingface_hub is missing (skipped). The browser
checks are skipped (reported) without chromium or websocket-client.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import browser as browser_mod  # noqa: E402  (tests/hub/browser.py)
import hubtest  # noqa: E402  (tests/hub/hubtest.py)
from hubtest import check, run  # noqa: E402

DEMO = os.path.join(hubtest.ROOT, "models", "ohm-demo")
DATA = os.path.join(hubtest.ROOT, "tests", "fixtures", "eval", "data")
HOSTILE_TASK = "<script>alert('task')</script>"
HOSTILE_METRIC = "\"><img src=x onerror=alert('metric')>"
HOSTILE_MODEL = "<b onmouseover=alert('model')>m</b>"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--out", default="")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("huggingface_hub", "websocket"):
        try:
            import huggingface_hub  # noqa: F401
        except ImportError:
            print("SKIP: huggingface_hub not installed (run scripts/hub-client-venv.sh)")
            return 77
    tmp = tempfile.mkdtemp(prefix="ohm-hub-leaderboard-")
    out = os.path.abspath(args.out or os.path.join(tmp, "screenshots"))
    os.makedirs(out, exist_ok=True)
    data = os.path.join(tmp, "data")
    ohm = os.path.abspath(args.ohm)
    tok = {}
    run([ohm, "hub", "user", "add", "alice", "--data", data])
    run([ohm, "hub", "user", "add", "bob", "--data", data])
    for u in ("alice", "bob"):
        tok[u] = run([ohm, "hub", "token", "create", "--data", data, "--user", u, "--scope", "write"])
    server, base = hubtest.start_server(ohm, data)
    browser = None
    try:
        hubtest.use_endpoint(base, tmp)
        from huggingface_hub import HfApi, ModelCard
        alice = HfApi(endpoint=base, token=tok["alice"])

        def ohm_eval(repo, tasks, limit, who="alice", expect_ok=True):
            res = os.path.join(tmp, f"{repo.replace('/', '_')}-{limit}.json")
            env = dict(os.environ, HF_TOKEN=tok[who]) if who else dict(os.environ)
            r = subprocess.run([ohm, "eval", DEMO, "--tasks", tasks, "--limit", str(limit),
                                "--data-dir", DATA, "-q", "-o", res, "--push-to-hub", repo],
                               capture_output=True, text=True, env=env, timeout=300)
            if expect_ok:
                assert r.returncode == 0, r.stderr
                return json.load(open(res)), r
            return None, r

        def get(path, token=None, raw=False):
            h = {"Authorization": f"Bearer {token}"} if token else {}
            with urllib.request.urlopen(urllib.request.Request(base + path, headers=h)) as r:
                body = r.read().decode()
                return body if raw else json.loads(body)

        def status(path, token=None):
            try:
                get(path, token, raw=True)
                return 200
            except urllib.error.HTTPError as e:
                return e.code

        def card_results(repo, token):
            return ModelCard.load(repo, token=token).data.eval_results or []

        # ---------------------------------------------------------------- ohm eval --push-to-hub
        def t_push_new_repo():
            res, r = ohm_eval("alice/demo-eval", "arc_easy,winogrande", 6)
            assert "pushed results of 2 task(s) to alice/demo-eval" in r.stderr, r.stderr
            got = card_results("alice/demo-eval", tok["alice"])
            by = {(e.dataset_type, e.metric_type): e for e in got}
            want = {(t, k.split(",")[0]): v for t, vals in res["results"].items()
                    for k, v in vals.items()
                    if "," in k and "_stderr," not in k and isinstance(v, (int, float))}
            assert set(by) == set(want), (sorted(by), sorted(want))
            for key, v in want.items():
                e = by[key]
                assert e.metric_value == v and type(e.metric_value) is type(v), (key, e, v)
                assert e.task_type == "text-generation" and e.verified is False, e
                cfg = res["configs"][key[0]]
                assert e.dataset_split == (cfg.get("test_split") or cfg["validation_split"]), e
                assert e.dataset_args == {"num_few_shot": 0}, e
            assert by[("arc_easy", "acc")].dataset_name == "arc_easy"
            commits = alice.list_repo_commits("alice/demo-eval")
            assert "arc_easy" in commits[0].title and "winogrande" in commits[0].title, commits[0]

        def t_push_keeps_card():
            alice.create_repo("alice/carded")
            front = ("license: apache-2.0  # the licence\n"
                     "tags:\n- ohm\n- demo\n"
                     "model-index:\n- name: carded\n  results:\n"
                     "  - task: {type: text-generation, name: Text Generation}\n"
                     "    dataset: {name: arc_easy, type: arc_easy, split: test,"
                     " args: {num_few_shot: 0}}\n"
                     "    metrics:\n    - {type: acc, value: 0.01, name: acc, verified: false}\n"
                     "    - {type: f1, value: 0.5, name: f1 kept}\n"
                     "  - task: {type: text-generation}\n"
                     "    dataset: {name: PIQA, type: piqa}\n"
                     "    metrics:\n    - {type: acc, value: 0.9}\n")
            after = "\n# comment after\npipeline_tag: text-generation\n"
            body = "\n# Carded\n\nThe body --- stays *exactly* as it was.\n"
            alice.upload_file(path_or_fileobj=("---\n" + front + after + "---" + body).encode(),
                              path_in_repo="README.md", repo_id="alice/carded")
            n_before = len(alice.list_repo_commits("alice/carded"))
            res, _ = ohm_eval("alice/carded", "arc_easy", 6)
            text = open(alice.hf_hub_download("alice/carded", "README.md")).read()
            assert text.startswith("---\nlicense: apache-2.0  # the licence\ntags:\n- ohm\n- demo\n"
                                   "model-index:\n"), text
            assert text.endswith(after + "---" + body), text
            assert len(alice.list_repo_commits("alice/carded")) == n_before + 1
            got = card_results("alice/carded", tok["alice"])
            rows = [(e.dataset_type, e.metric_type, e.metric_value) for e in got]
            acc = res["results"]["arc_easy"]["acc,none"]
            assert ("arc_easy", "acc", acc) in rows and ("arc_easy", "acc", 0.01) not in rows, rows
            assert ("arc_easy", "f1", 0.5) in rows and ("piqa", "acc", 0.9) in rows, rows
            assert [r[:2] for r in rows].count(("arc_easy", "acc")) == 1, rows
            data = ModelCard.load("alice/carded", token=tok["alice"]).data
            assert data.license == "apache-2.0" and data.tags == ["ohm", "demo"], data
            # the same results again: nothing to commit
            _, r = ohm_eval("alice/carded", "arc_easy", 6)
            assert "unchanged" in r.stderr, r.stderr
            assert len(alice.list_repo_commits("alice/carded")) == n_before + 1

        def t_push_errors():
            _, r = ohm_eval("not-a-repo-id", "arc_easy", 2, expect_ok=False)
            assert r.returncode != 0 and "ORG/MODEL" in r.stderr, r.stderr
            _, r = ohm_eval("alice/x", "arc_easy", 2, who=None, expect_ok=False)
            assert r.returncode != 0 and "token" in r.stderr, r.stderr
            _, r = ohm_eval("alice/demo-eval", "arc_easy", 2, who="bob", expect_ok=False)
            assert r.returncode != 0 and "alice/demo-eval" in r.stderr, r.stderr
            # a card whose metadata cannot be rewritten safely is left alone, with the file named
            alice.create_repo("alice/flowcard")
            alice.upload_file(path_or_fileobj=b"---\n{license: mit, tags: [a]}\n---\n# x\n",
                              path_in_repo="README.md", repo_id="alice/flowcard")
            _, r = ohm_eval("alice/flowcard", "arc_easy", 2, expect_ok=False)
            assert r.returncode != 0 and "alice/flowcard/README.md" in r.stderr, r.stderr

        # ---------------------------------------------------------------- the API
        def t_api_expand():
            ohm_eval("alice/demo-small", "arc_easy,winogrande", 3)
            infos = {m.id: m for m in alice.list_models(expand=["evalResults"])}
            e = infos["alice/demo-eval"].eval_results
            assert e and {x.dataset_id for x in e} == {"arc_easy", "winogrande"}, e
            assert all(isinstance(x.value, float) for x in e), e
            m = alice.model_info("alice/demo-small", expand=["evalResults"])
            assert {x.dataset_id for x in m.eval_results} == {"arc_easy", "winogrande"}
            raw = get("/api/models?expand[]=evalResults&search=demo-small")
            assert raw[0]["evalResults"][0]["metric"]["type"] in ("acc", "acc_norm"), raw
            mi = get("/api/models/alice/carded?expand=model-index")["model-index"]
            assert mi[0]["name"] == "carded", mi

        # ---------------------------------------------------------------- access (attacks)
        def t_private_and_gated():
            alice.create_repo("alice/secret", private=True)
            ohm_eval("alice/secret", "arc_easy", 4)
            alice.create_repo("alice/gated")
            alice.upload_file(path_or_fileobj=(
                "---\nmodel-index:\n- name: gated\n  results:\n  - task: {type: text-generation}\n"
                "    dataset: {type: gated_only_task, name: G}\n"
                "    metrics:\n    - {type: acc, value: 0.99}\n---\n").encode(),
                path_in_repo="README.md", repo_id="alice/gated")
            alice.update_repo_settings("alice/gated", gated="manual")
            alice.upload_file(path_or_fileobj=(
                "---\nmodel-index:\n- name: secret\n  results:\n  - task: {type: text-generation}\n"
                "    dataset: {type: secret_only_task, name: S}\n"
                "    metrics:\n    - {type: acc, value: 0.98}\n---\n").encode(),
                path_in_repo="README.md", repo_id="alice/secret")
            for who in (None, tok["bob"]):
                lst = get("/api/models?expand=evalResults&cardData=true", who)
                ids = {m["id"]: m for m in lst}
                assert "alice/secret" not in ids, ids.keys()
                assert ids["alice/gated"]["evalResults"] == [], ids["alice/gated"]
                assert "model-index" not in ids["alice/gated"]["cardData"], ids["alice/gated"]
                info = get("/api/models/alice/gated?expand=evalResults&expand=model-index", who)
                assert info["evalResults"] == [] and info["model-index"] is None, info
                assert "model-index" not in info["cardData"], info
                assert status("/api/models/alice/secret?expand=evalResults", who) in (401, 404)
                for page in ("/leaderboard", "/alice/gated/eval"):
                    html = get(page, who, raw=True)
                    for leak in ("secret_only_task", "gated_only_task", "0.9800", "0.9900",
                                 "alice/secret", 'data-id="alice/gated"'):
                        assert leak not in html, (page, leak)
                # asking for their tasks by name finds nothing (the names only echo the query)
                html = get("/leaderboard?tasks=secret_only_task,gated_only_task", who, raw=True)
                assert 'id="lb-empty"' in html and "lb-row" not in html, html
                for leak in ("0.9800", "0.9900", "alice/secret", 'data-id="alice/gated"'):
                    assert leak not in html, leak
                assert status("/alice/secret/eval", who) == 404
                assert get("/api/models?search=secret&expand=evalResults", who) == []
            # the owner sees both; bob once alice accepts his request
            lst = {m["id"]: m for m in get("/api/models?expand=evalResults", tok["alice"])}
            assert lst["alice/secret"]["evalResults"] and lst["alice/gated"]["evalResults"]
            html = get("/leaderboard", tok["alice"], raw=True)
            assert "secret_only_task" in html and "gated_only_task" in html
            req = urllib.request.Request(base + "/api/models/alice/gated/user-access-request",
                                         data=b"{}", method="POST",
                                         headers={"Authorization": f"Bearer {tok['bob']}",
                                                  "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
            alice.accept_access_request("alice/gated", "bob")
            info = get("/api/models/alice/gated?expand=evalResults", tok["bob"])
            assert info["evalResults"][0]["value"] == 0.99, info
            assert "gated_only_task" in get("/leaderboard", tok["bob"], raw=True)
            assert "secret_only_task" not in get("/leaderboard", tok["bob"], raw=True)

        def t_hostile_names_escaped():
            bob = HfApi(endpoint=base, token=tok["bob"])
            bob.create_repo("bob/hostile")
            card = ("---\nmodel-index:\n- name: " + json.dumps(HOSTILE_MODEL) + "\n  results:\n"
                    "  - task: {type: text-generation, name: " + json.dumps(HOSTILE_TASK) + "}\n"
                    "    dataset: {type: " + json.dumps(HOSTILE_TASK) + ", name: "
                    + json.dumps(HOSTILE_MODEL) + "}\n"
                    "    metrics:\n    - {type: " + json.dumps(HOSTILE_METRIC) + ", name: "
                    + json.dumps(HOSTILE_METRIC) + ", value: 0.5}\n"
                    "  - task: {type: text-generation}\n    dataset: {type: arc_easy}\n"
                    "    metrics:\n    - {type: acc, name: " + json.dumps(HOSTILE_METRIC)
                    + ", value: 0.123}\n---\n")
            bob.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md",
                            repo_id="bob/hostile")
            for page in ("/leaderboard", "/bob/hostile/eval",
                         "/leaderboard?tasks=" + urllib.request.quote(HOSTILE_TASK)):
                html = get(page, raw=True)
                for bad in (HOSTILE_TASK, HOSTILE_METRIC, HOSTILE_MODEL, "<img", "<b onmouseover"):
                    assert bad not in html, (page, bad)
                assert "&lt;script&gt;alert(&#39;task&#39;)&lt;/script&gt;" in html or \
                    "&lt;script&gt;alert(&#x27;task&#x27;)&lt;/script&gt;" in html, page

        check("ohm eval --push-to-hub into a new repo, read by huggingface_hub", t_push_new_repo)
        check("--push-to-hub keeps the card, replaces same entries, one commit", t_push_keeps_card)
        check("--push-to-hub errors (repo id, token, no access, unrewritable card)", t_push_errors)
        check("list_models / model_info expand=evalResults", t_api_expand)
        check("private and gated results do not leak (API, cardData, pages)", t_private_and_gated)
        check("hostile model/task/metric names are escaped", t_hostile_names_escaped)

        # ---------------------------------------------------------------- the browser
        try:
            import websocket  # noqa: F401
        except ImportError:
            websocket = None
        if not browser_mod.find_chromium() or websocket is None:
            print("SKIP browser checks: chromium or websocket-client missing")
            return hubtest.finish(tmp, keep=args.keep)
        browser, cdp = browser_mod.launch(tmp)
        rows_js = "Array.from(document.querySelectorAll('tr.lb-row')).map(r => r.dataset.id)"
        col_js = ("(i) => Array.from(document.querySelectorAll('tr.lb-row'))"
                  ".map(r => r.cells[i].getAttribute('data-value'))")
        api_rows = {m["id"]: m["evalResults"] for m in get("/api/models?expand=evalResults")}

        def score(mid, task):
            for e in api_rows.get(mid, []):
                if e["dataset"]["id"] == task:
                    return e["value"]  # the first metric of the task, as the page takes it
            return None

        def t_leaderboard():
            cdp.navigate(f"{base}/leaderboard?tasks=arc_easy,winogrande")
            rows = cdp.eval(rows_js)
            assert "alice/secret" not in rows and "alice/gated" not in rows, rows
            for mid in ("alice/demo-eval", "alice/demo-small", "alice/carded", "bob/hostile"):
                assert mid in rows, (mid, rows)
            # ranked: models with both tasks first, by their average
            both = [m for m in rows if score(m, "arc_easy") is not None
                    and score(m, "winogrande") is not None]
            assert rows[:len(both)] == both, rows
            avgs = [(score(m, "arc_easy") + score(m, "winogrande")) / 2 for m in both]
            assert avgs == sorted(avgs, reverse=True), (both, avgs)
            shown = [float(v) for v in cdp.eval(f"({col_js})(2)")[:len(both)]]
            assert all(abs(a - b) < 1e-4 for a, b in zip(shown, avgs)), (shown, avgs)
            heads = cdp.eval("Array.from(document.querySelectorAll('#leaderboard th'))"
                             ".map(t => t.dataset.task || t.textContent)")
            assert heads[:3] == ["#", "Model", "Average"] and heads[3:] == ["arc_easy", "winogrande"]
            assert cdp.eval("document.getElementById('lb-tasks').value") == "arc_easy,winogrande"
            print("  leaderboard:", cdp.screenshot(os.path.join(out, "leaderboard.png")))
            # sortable: by model name (ascending), then by arc_easy (descending first)
            cdp.eval("document.querySelectorAll('#leaderboard th')[1].click()")
            names = cdp.eval(rows_js)
            assert names == sorted(names, key=str.lower), names
            cdp.eval("document.querySelectorAll('#leaderboard th')[3].click()")
            vals = [v for v in cdp.eval(f"({col_js})(3)") if v]
            assert [float(v) for v in vals] == sorted((float(v) for v in vals), reverse=True), vals
            assert cdp.eval("document.querySelectorAll('#leaderboard th')[3]"
                            ".getAttribute('aria-sort')") == "descending"

        def t_filter_and_links():
            cdp.navigate(f"{base}/leaderboard")
            chips = cdp.eval("Array.from(document.querySelectorAll('#task-filter a[data-task]'))"
                             ".map(a => a.dataset.task)")
            assert HOSTILE_TASK in chips and "winogrande" in chips, chips
            assert "secret_only_task" not in chips and "gated_only_task" not in chips, chips
            th = cdp.eval("Array.from(document.querySelectorAll('#leaderboard th'))"
                          ".map(t => t.dataset.task).filter(Boolean)")
            assert HOSTILE_TASK in th, th  # shown as text, never run
            cdp.events.clear()
            cdp.eval("document.querySelector('#task-filter a[data-task=\"winogrande\"]').click()")
            cdp.wait_event("Page.loadEventFired")
            assert cdp.eval("new URLSearchParams(location.search).get('tasks')") == "winogrande"
            rows = cdp.eval(rows_js)
            assert rows and all(score(m, "winogrande") is not None for m in rows), rows
            assert "bob/hostile" not in rows, rows
            href = cdp.eval("document.querySelector('tr.lb-row a.repo-id').getAttribute('href')")
            assert href == "/" + rows[0] + "/eval", href
            cdp.navigate(base + href)
            tasks = cdp.eval("Array.from(document.querySelectorAll('tr.eval-row'))"
                             ".map(r => r.dataset.task)")
            assert "winogrande" in tasks, tasks
            assert cdp.eval("document.querySelector('#tab-eval').classList.contains('active')")
            print("  eval page:", cdp.screenshot(os.path.join(out, "eval.png")))
            cdp.navigate(f"{base}/bob/hostile/eval")
            cells = cdp.eval("Array.from(document.querySelectorAll('tr.eval-row td'))"
                             ".map(t => t.textContent)")
            assert HOSTILE_METRIC in cells, cells
            assert cdp.eval("document.querySelectorAll('img').length") == 0
            assert cdp.eval("document.querySelectorAll('script').length") == 1  # only ohm.js

        def t_no_dialogs():
            assert not cdp.dialogs(), cdp.dialogs()

        check("leaderboard in Chromium: ranking, averages, sortable columns", t_leaderboard)
        check("leaderboard task filter, links to eval pages, hostile names", t_filter_and_links)
        check("no injected script ran", t_no_dialogs)
    finally:
        browser_mod.stop_all(browser, server)
    print(f"screenshots in {out}")
    return hubtest.finish(tmp, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
