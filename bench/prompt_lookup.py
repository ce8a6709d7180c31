#!/usr/bin/env python3
"""Prompt-lookup decoding against plain greedy decoding, alternated in one run.

    python3 bench/prompt_lookup.py --ohm build/release/ohm --model copy-q4_0.gguf \\
        --prompt-file prompt.txt [--lookup 10,3] [--rounds 5] [--max-new-tokens 160] [--threads 2]

Each round runs `ohm generate --greedy --json` once plain and once per --lookup value (the order
rotates from round to round), checks that every run produced the same text as the plain one, and
prints the decode tokens/s, the speed-up over that round's plain run, and the acceptance figures
of the --json timings, as a Markdown table. --copy-prompt N writes an input-copying prompt (the
Nth wikitext-2 test paragraph with the fewest repeated word trigrams, then "Repeat the text above
exactly." and its first five words) to --prompt-file first.
"""
import argparse
import hashlib
import json
import statistics
import subprocess
import sys


def copy_prompt(corpus, index):
    text = open(corpus, encoding="utf-8").read()
    paras = [p.strip() for p in text.split("\n")
             if 600 < len(p.strip()) < 1400 and not p.strip().startswith("=")]
    ranked = []
    for p in paras:
        w = p.split()
        tri = list(zip(w, w[1:], w[2:]))
        bi = list(zip(w, w[1:]))
        ranked.append((len(tri) - len(set(tri)), sum(c.isdigit() for c in p), len(bi) - len(set(bi)), p))
    ranked.sort(key=lambda r: r[:3])
    p = ranked[index - 1][3]
    return "Here is a text:\n\n" + p + "\n\nRepeat the text above exactly.\n\n" + " ".join(p.split(" ")[:5])


def run(a, lookup):
    cmd = [a.ohm, "generate", a.model, "-f", a.prompt_file, "--greedy", "--json",
           "--max-new-tokens", str(a.max_new_tokens), "--threads", str(a.threads)]
    if lookup:
        cmd += ["--prompt-lookup", str(lookup)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-file", required=True)
    ap.add_argument("--copy-prompt", type=int, default=0, help="write the Nth copying prompt to --prompt-file first")
    ap.add_argument("--corpus", default="../shared/data/corpora/wikitext-2-raw/wiki.test.raw")
    ap.add_argument("--lookup", default="10,3")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.copy_prompt:
        open(a.prompt_file, "w", encoding="utf-8").write(copy_prompt(a.corpus, a.copy_prompt))
    looks = [0] + [int(x) for x in a.lookup.split(",") if x]
    res = {n: [] for n in looks}
    for r in range(a.rounds):
        order = looks[r % len(looks):] + looks[:r % len(looks)]
        for n in order:
            d = run(a, n)
            res[n].append(d)
            t = d["timings"]
            print(f"round {r + 1} lookup {n or 'plain'}: {t['decode_tok_s']} tok/s "
                  f"accepted {t.get('accepted_tokens', '-')}/{t.get('drafted_tokens', '-')}", file=sys.stderr)
    texts = {hashlib.sha256(d["text"].encode()).hexdigest() for n in looks for d in res[n]}
    print(f"model {a.model}, prompt {a.prompt_file}, {a.max_new_tokens} new tokens, greedy, "
          f"{a.threads} threads, {a.rounds} alternated rounds; "
          f"{'every run gave the same text' if len(texts) == 1 else 'TEXTS DIFFER: ' + str(len(texts))}\n")
    print("| run | decode tok/s per round | median | speed-up (median of per-round ratios) | accepted / drafted |")
    print("| --- | --- | --- | --- | --- |")
    plain = [d["timings"]["decode_tok_s"] for d in res[0]]
    for n in looks:
        v = [d["timings"]["decode_tok_s"] for d in res[n]]
        ratio = statistics.median(x / p for x, p in zip(v, plain))
        acc = sum(d["timings"].get("accepted_tokens", 0) for d in res[n])
        dr = sum(d["timings"].get("drafted_tokens", 0) for d in res[n])
        name = "plain" if n == 0 else f"`--prompt-lookup {n}`"
        acc_s = f"{acc} / {dr} ({100.0 * acc / dr:.1f}%)" if dr else ""
        print(f"| {name} | {' / '.join(f'{x:.1f}' for x in v)} | {statistics.median(v):.1f} | "
              f"{ratio:.2f}x | {acc_s} |")
    return 0 if len(texts) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
