#!/usr/bin/env python3
"""`ohm datasets deid` end to end (standard library only).

usage: test_deid_cli.py OHM

- mask on jsonl and csv: PII columns rewritten, other columns and key order kept;
- --report counts per entity type and column, and holds no detected value;
- hash mode refuses to run without a key (exit 2, no output), is a join key with one (the same
  value in two rows hashes the same), and changes with the key;
- replace is deterministic in --seed; drop drops the rows with PII;
- bad input names the file, line and column, and leaves no output file behind.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

OHM = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def ohm(*args, env=None):
    e = dict(os.environ)
    e.pop("OHM_DEID_KEY", None)
    e.update(env or {})
    return subprocess.run([OHM, "datasets", "deid", *args], capture_output=True, text=True,
                          timeout=120, env=e)


ROWS = [
    {"id": 1, "text": "Mail john.smith@gmail.com or call +1 (415) 555-2671.", "note": "SSN 123-45-6780"},
    {"id": 2, "text": "我叫王小明，手机13812345678，身份证11010519491231002X。", "note": None},
    {"id": 3, "text": "nothing here", "note": "card 4111 1111 1111 1111"},
    {"id": 4, "text": "again john.smith@gmail.com", "note": ""},
]
VALUES = ["john.smith@gmail.com", "+1 (415) 555-2671", "123-45-6780", "王小明", "13812345678",
          "11010519491231002X", "4111 1111 1111 1111"]

with tempfile.TemporaryDirectory() as d:
    p = lambda n: os.path.join(d, n)
    with open(p("in.jsonl"), "w", encoding="utf-8") as f:
        for r in ROWS:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    r = ohm(p("in.jsonl"), p("out.jsonl"), "--columns", "text,note", "--report", p("rep.json"))
    check(r.returncode == 0, f"mask runs ({r.stderr.strip()})")
    out = [json.loads(l) for l in open(p("out.jsonl"), encoding="utf-8")]
    check(out[0]["text"] == "Mail <EMAIL> or call <PHONE>." and out[0]["note"] == "SSN <SSN>",
          f"mask tags: {out[0]}")
    check(out[1]["text"] == "我叫<PERSON>，手机<PHONE>，身份证<CN_ID>。" and out[1]["note"] is None,
          f"mask Chinese: {out[1]}")
    check(list(out[0].keys()) == ["id", "text", "note"], "key order kept")
    rep_text = open(p("rep.json"), encoding="utf-8").read()
    rep = json.loads(rep_text)
    check(rep["rows"] == 4 and rep["rows_with_pii"] == 4, f"report rows: {rep}")
    check(rep["columns"]["text"] == {"cn_id": 1, "email": 2, "phone": 2, "person": 1}
          and rep["columns"]["note"] == {"card": 1, "ssn": 1}, f"report per column: {rep['columns']}")
    check(rep["entities"]["email"] == 2, "report per type")
    leaked = [v for v in VALUES if v in rep_text]
    check(not leaked, f"report holds no value (leaked: {leaked})")

    # csv
    with open(p("in.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerow(["1", "Mail a@b.com, \"quoted\", thanks"])
        w.writerow(["2", "IP 192.168.1.10\nsecond line"])
    r = ohm(p("in.csv"), p("out.csv"), "--columns", "text")
    check(r.returncode == 0, f"csv runs ({r.stderr.strip()})")
    got = list(csv.reader(open(p("out.csv"), newline="", encoding="utf-8")))
    check(got == [["id", "text"], ["1", "Mail <EMAIL>, \"quoted\", thanks"],
                  ["2", "IP <IP>\nsecond line"]], f"csv output: {got}")

    # hash: refused without a key, no output written
    r = ohm(p("in.jsonl"), p("h.jsonl"), "--columns", "text", "--mode", "hash")
    check(r.returncode == 2 and "OHM_DEID_KEY" in r.stderr and not os.path.exists(p("h.jsonl")),
          f"hash without a key refused: {r.returncode} {r.stderr.strip()}")
    with open(p("key"), "w") as f:
        f.write("short\n")
    r = ohm(p("in.jsonl"), p("h.jsonl"), "--columns", "text", "--mode", "hash", "--key-file", p("key"))
    check(r.returncode == 2 and "at least 16" in r.stderr, f"short key refused: {r.stderr.strip()}")
    r = ohm(p("in.jsonl"), p("h.jsonl"), "--columns", "text", "--mode", "hash",
            env={"OHM_DEID_KEY": "k" * 32})
    check(r.returncode == 0, f"hash with OHM_DEID_KEY ({r.stderr.strip()})")
    h = [json.loads(l) for l in open(p("h.jsonl"), encoding="utf-8")]
    e1 = h[0]["text"].split()[1]
    check(e1.startswith("<EMAIL:") and e1 in h[3]["text"], f"hash is a join key: {h[0]} {h[3]}")
    check("john.smith" not in open(p("h.jsonl"), encoding="utf-8").read(), "hash hides the value")
    with open(p("key"), "w") as f:
        f.write("another-secret-key-0123\n")
    r = ohm(p("in.jsonl"), p("h2.jsonl"), "--columns", "text", "--mode", "hash", "--key-file", p("key"))
    h2 = [json.loads(l) for l in open(p("h2.jsonl"), encoding="utf-8")]
    check(r.returncode == 0 and h2[0]["text"] != h[0]["text"], "another key, another hash")

    # replace: deterministic in the seed
    outs = []
    for seed in ("1", "1", "2"):
        r = ohm(p("in.jsonl"), p("r.jsonl"), "--columns", "text,note", "--mode", "replace",
                "--seed", seed)
        outs.append(open(p("r.jsonl"), encoding="utf-8").read())
    check(outs[0] == outs[1] and outs[0] != outs[2], "replace is deterministic in --seed")
    check(not any(v in outs[0] for v in VALUES), "replace leaves no value")

    # drop
    r = ohm(p("in.jsonl"), p("dr.jsonl"), "--columns", "text", "--mode", "drop", "--report", p("dr.json"))
    kept = [json.loads(l)["id"] for l in open(p("dr.jsonl"), encoding="utf-8")]
    check(kept == [3] and json.load(open(p("dr.json")))["rows_dropped"] == 3, f"drop: kept {kept}")

    # --entities
    r = ohm(p("in.jsonl"), p("e.jsonl"), "--columns", "text", "--entities", "email")
    e = [json.loads(l) for l in open(p("e.jsonl"), encoding="utf-8")]
    check(e[0]["text"] == "Mail <EMAIL> or call +1 (415) 555-2671.", f"--entities email: {e[0]}")
    r = ohm(p("in.jsonl"), p("e.jsonl"), "--columns", "text", "--entities", "passport")
    check(r.returncode == 2 and "unknown entity 'passport'" in r.stderr, r.stderr.strip())

    # bad input: file, line and column named; no output left
    with open(p("bad.jsonl"), "w") as f:
        f.write('{"text": "a@b.com"}\n{"text": "x",}\n')
    r = ohm(p("bad.jsonl"), p("bad_out.jsonl"), "--columns", "text")
    check(r.returncode == 1 and f"{p('bad.jsonl')}:2:14" in r.stderr and
          not os.path.exists(p("bad_out.jsonl")), f"malformed jsonl: {r.stderr.strip()}")
    with open(p("bad.csv"), "w") as f:
        f.write("id,text\n1,a\n2,b,c\n")
    r = ohm(p("bad.csv"), p("bad_out.csv"), "--columns", "text")
    check(r.returncode == 1 and f"{p('bad.csv')}:3: row has 3 fields" in r.stderr and
          not os.path.exists(p("bad_out.csv")), f"ragged csv: {r.stderr.strip()}")
    r = ohm(p("in.csv"), p("x.csv"), "--columns", "body")
    check(r.returncode == 1 and "no column 'body'" in r.stderr, f"unknown csv column: {r.stderr.strip()}")
    r = ohm(p("in.jsonl"), p("x.jsonl"), "--columns", "body")
    check(r.returncode == 1 and "no row has a column 'body'" in r.stderr and
          not os.path.exists(p("x.jsonl")), f"unknown jsonl column: {r.stderr.strip()}")
    r = ohm(p("in.jsonl"), p("x.csv"), "--columns", "text")
    check(r.returncode == 2 and "the output must be of the input's type" in r.stderr,
          f"format mismatch: {r.stderr.strip()}")
    leftovers = [n for n in os.listdir(d) if ".partial-" in n]
    check(not leftovers, f"no temporary files left ({leftovers})")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
