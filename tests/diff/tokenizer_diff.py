#!/usr/bin/env python3
"""Differential test: ohm's tokenizers against HF `tokenizers` (tokenizer.json as
Tokenizer.from_file loads it) and transformers' AutoTokenizer (tokenizer.json + tokenizer_config.json),
on strings generated from a seeded grammar (scripts, combining marks, emoji sequences, whitespace
runs, contractions, digit and punctuation runs, every Unicode general category).

For every tokenizer in ../shared/data/tokenizers it compares, string by string: the ids, the
offsets (characters) and decode(encode(s)). ohm runs as `ohm tokenize DIR --batch FILE.jsonl
[--raw] --decode` (one process per tokenizer and mode).

  tokenizer_diff.py --ohm build/.../ohm [--count 5000] [--seed 1234] [--budget 150]
  tokenizer_diff.py --ohm ... --soak N      # N strings per tokenizer, random seed, and for each
                                            # mismatch a minimal reproducer (shrunk string)
Exit codes: 0 no mismatch, 1 mismatches, 77 the reference libraries or shared data are missing.
"""
import argparse
import gzip
import json
import lzma
import os
import random
import sys
import tempfile
import time
import unicodedata

from difftest import HERE, SHARED, hubtest, missing_shared_data, run_batch  # tests/diff/difftest.py

# ---------------------------------------------------------------- the grammar
SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" "éèêëàâäçñöüßøåæœÉÀÇÑÖÜŁłŽžŠšĐđ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώϊϋΐΰς",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯіїєґ",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأؤإئة",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשתךםןףץ",
    "devanagari": "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह",
    "thai": "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ",
    "hangul": "".join(chr(c) for c in range(0xAC00, 0xAC00 + 400, 7)),
    "cjk": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计",
    "kana": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンー",
}
MARKS = {
    "latin": "\u0300\u0301\u0302\u0303\u0308\u030a\u0327\u0328",
    "arabic": "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652",
    "hebrew": "\u05b0\u05b4\u05b7\u05b8\u05bc\u05c1",
    "devanagari": "\u093e\u093f\u0940\u0941\u0942\u0947\u0948\u094b\u094c\u094d\u0902\u0903\u093c",
    "thai": "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c",
}
EMOJI = ["😀", "🎉", "👍", "❤️", "🔥", "🤖", "🧠", "🌍", "✅", "☕"]
SKIN = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
ZWJ_SEQ = ["👩\u200d💻", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🧑\u200d🚀", "👁️\u200d🗨️"]
FLAGS = ["🇫🇷", "🇯🇵", "🇺🇸", "🇩🇪", "🇧🇷", "🇮🇳"]
WS = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u2028", "\u3000", "\u2009", " \n", "\n\n", "\t\t", " \t\n"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "’s", "’ll"]
PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”‘’—–…·•§¶†‡‰′″‹›"
CATEGORIES = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
              "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co"]


def category_table():
    table = {c: [] for c in CATEGORIES}
    for cp in range(0x30000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat in table:
            table[cat].append(cp)
    return table


class Grammar:
    def __init__(self, rng, cats):
        self.r, self.cats = rng, cats

    def word(self, script):
        r = self.r
        chars = SCRIPTS[script]
        n = r.choice([1, 1, 2, 3, 4, 5, 6, 8, 12])
        w = "".join(r.choice(chars) for _ in range(n))
        if script in MARKS and r.random() < 0.5:
            marks = MARKS[script]
            w = "".join(c + (r.choice(marks) * r.choice([1, 1, 2]) if r.random() < 0.4 else "") for c in w)
        if script == "latin":
            case = r.random()
            w = w.upper() if case < 0.15 else w.capitalize() if case < 0.4 else w
        return w

    def piece(self):
        r = self.r
        k = r.random()
        if k < 0.30:
            w = self.word(r.choice(list(SCRIPTS)))
            if r.random() < 0.15:
                w += r.choice(CONTRACTIONS)
            return w
        if k < 0.45:
            return r.choice(WS)
        if k < 0.52:
            return str(r.randrange(10 ** r.randint(1, 12))).zfill(r.choice([0, 0, 0, 3, 8]))
        if k < 0.60:
            return "".join(r.choice(PUNCT) for _ in range(r.choice([1, 1, 2, 3, 5])))
        if k < 0.67:
            e = r.random()
            if e < 0.3:
                return r.choice(EMOJI)
            if e < 0.5:
                return "👋" + r.choice(SKIN)
            if e < 0.75:
                return r.choice(ZWJ_SEQ)
            if e < 0.9:
                return r.choice(FLAGS)
            return r.choice("0123456789#*") + "\ufe0f\u20e3"
        if k < 0.75:  # repeated characters
            return r.choice("aA. -_=*!?\n\t0ö字") * r.choice([2, 3, 5, 8, 17, 40])
        if k < 0.92:  # any general category
            cat = r.choice(CATEGORIES)
            return "".join(chr(r.choice(self.cats[cat])) for _ in range(r.choice([1, 1, 2, 3])))
        if k < 0.96:
            return r.choice(["<s>", "</s>", "<|endoftext|>", "<unk>", "[INST]", "<|im_start|>", "<pad>", "▁", "Ġ"])
        return "".join(chr(r.randrange(0x20, 0x7f)) for _ in range(r.randint(1, 6)))

    def string(self):
        r = self.r
        n = r.choice([0, 1, 1, 2, 3, 4, 6, 9, 14, 25])
        return "".join(self.piece() for _ in range(n))


# ---------------------------------------------------------------- the two sides
def tokenizer_dirs():
    base = os.path.join(SHARED, "tokenizers")
    out = []
    for name in sorted(os.listdir(base)):
        d = os.path.join(base, name)
        files = os.listdir(d)
        tj = [f for f in files if f.startswith("tokenizer.json")]
        if tj:
            out.append((name, d, os.path.join(d, tj[0])))
    return out


def spm_dirs(tmp):
    """Directories holding a SentencePiece tokenizer.model without tokenizer.json (what
    AutoTokenizer converts from the proto, or LlamaTokenizer when the config names it): one bare,
    and one with the model's tokenizer_config.json where there is one."""
    base = os.path.join(SHARED, "tokenizers")
    out = []
    for name in sorted(os.listdir(base)):
        src = os.path.join(base, name, "tokenizer.model")
        if not os.path.exists(src):
            continue
        for variant in ("bare", "config"):
            cfg = os.path.join(base, name, "tokenizer_config.json")
            if variant == "config" and not os.path.exists(cfg):
                continue
            work = os.path.join(tmp, f"spm-{name}-{variant}")
            os.makedirs(work, exist_ok=True)
            with open(src, "rb") as a, open(os.path.join(work, "tokenizer.model"), "wb") as b:
                b.write(a.read())
            if variant == "config":
                with open(cfg, "rb") as a, open(os.path.join(work, "tokenizer_config.json"), "wb") as b:
                    b.write(a.read())
            out.append((f"{name}.model/{variant}", work))
    return out


def read_json_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8").read()
    if path.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8").read()
    return open(path, encoding="utf-8").read()


def hf_raw(tj_path):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_str(read_json_text(tj_path))

    def run(texts):
        encs = tok.encode_batch(texts, add_special_tokens=False)
        return [{"ids": e.ids, "offsets": [list(o) for o in e.offsets],
                 "decoded": tok.decode(e.ids, skip_special_tokens=False)} for e in encs]
    return run


def hf_auto(d, tj_path, tmp):
    # AutoTokenizer wants a plain tokenizer.json: lay the directory out uncompressed
    work = os.path.join(tmp, "auto-" + os.path.basename(d))
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(read_json_text(tj_path))
    for f in os.listdir(d):
        if f.endswith(".json") and not f.startswith("tokenizer.json") and f not in ("model.safetensors.index.json",):
            with open(os.path.join(d, f), "rb") as a, open(os.path.join(work, f), "wb") as b:
                b.write(a.read())
    return hf_dir(work), work


def hf_dir(work):
    """transformers' AutoTokenizer on a directory: encode without special tokens, and decode."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(work)

    def run(texts):
        out = []
        for t in texts:
            ids = tok.encode(t, add_special_tokens=False)
            out.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
        return out
    return run


def ohm_run(ohm, model, texts, raw, tmp):
    cmd = [ohm, "tokenize", model, "--decode", "--no-special"] + (["--raw"] if raw else [])
    return run_batch(cmd, texts, os.path.join(tmp, "in.jsonl"))


def differs(a, b, offsets):
    if a["ids"] != b["ids"]:
        return "ids"
    if offsets and [list(x) for x in a["offsets"]] != [list(x) for x in b["offsets"]]:
        return "offsets"
    if a["decoded"] != b["decoded"]:
        return "decoded"
    return None


def shrink(text, still_fails):
    """Greedy delta debugging over code points: drop chunks, then single characters, while the
    mismatch persists. still_fails(list_of_candidates) -> list of bools (batched)."""
    s = text
    chunk = max(1, len(s) // 2)
    while chunk >= 1:
        changed = True
        while changed:
            changed = False
            cands = [s[:i] + s[i + chunk:] for i in range(0, len(s), chunk)]
            cands = [c for c in cands if c]
            if not cands:
                break
            for c, bad in zip(cands, still_fails(cands)):
                if bad:
                    s, changed = c, True
                    break
        chunk //= 2
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ohm", required=True)
    ap.add_argument("--count", type=int, default=5000, help="strings per tokenizer")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--soak", type=int, default=0, help="strings per tokenizer, random seed, shrink mismatches")
    ap.add_argument("--only", default="", help="comma-separated tokenizer names")
    ap.add_argument("--modes", default="raw,auto,spm",
                    help="raw: tokenizer.json vs HF tokenizers; auto: + tokenizer_config.json vs "
                         "transformers' AutoTokenizer; spm: tokenizer.model vs AutoTokenizer")
    ap.add_argument("--budget", type=float, default=0, help="stop starting new tokenizers after S seconds")
    args = ap.parse_args()
    if not hubtest.have_modules_or_reexec("tokenizers", "transformers", "sentencepiece"):
        print("SKIP: tokenizers/transformers are not installed (run scripts/hub-client-venv.sh)")
        return 77
    if not os.path.isdir(os.path.join(SHARED, "tokenizers")):
        return missing_shared_data()
    ohm = os.path.abspath(args.ohm)
    seed = args.seed if not args.soak else random.SystemRandom().randrange(1 << 30)
    count = args.soak or args.count
    print(f"seed {seed}, {count} strings per tokenizer", flush=True)
    cats = category_table()
    rng = random.Random(seed)
    g = Grammar(rng, cats)
    # every mismatch found and fixed stays in the corpus (tests/diff/tokenizer_regressions.jsonl)
    texts = [json.loads(l)["text"] for l in open(os.path.join(HERE, "tokenizer_regressions.jsonl"),
                                                   encoding="utf-8") if l.strip()]
    texts += [g.string() for _ in range(count)]
    only = set(filter(None, args.only.split(",")))
    modes = args.modes.split(",")
    tmp = tempfile.mkdtemp(prefix="ohm-tokdiff-")
    t_start = time.time()
    passed = failed = 0
    jobs = [(name, d, tj, mode) for name, d, tj in tokenizer_dirs() for mode in modes
            if mode in ("raw", "auto")]
    if "spm" in modes:
        jobs += [(name, d, None, "spm") for name, d in spm_dirs(tmp)]
    for name, d, tj, mode in jobs:
        if only and name.split(".model")[0] not in only:
            continue
        if args.budget and time.time() - t_start > args.budget:
            print(f"FAIL {name}/{mode}: not run, the {args.budget:.0f} s budget is spent")
            failed += 1
            continue
        t0 = time.time()
        if mode == "raw":
            ref = hf_raw(tj)
            model = tj
        elif mode == "spm":
            try:
                ref, model = hf_dir(d), d
            except Exception as e:  # noqa: BLE001
                print(f"FAIL {name}/{mode}: transformers could not load it: {e!r}")
                failed += 1
                continue
        else:
            try:
                ref, model = hf_auto(d, tj, tmp)
            except Exception as e:  # noqa: BLE001
                print(f"FAIL {name}/{mode}: transformers could not load it: {e!r}")
                failed += 1
                continue
        want = ref(texts)
        got = ohm_run(ohm, model, texts, mode == "raw", tmp)
        bad = []
        for t, a, b in zip(texts, want, got):
            why = differs(a, b, offsets=(mode == "raw"))
            if why:
                bad.append((t, why, a, b))
        dt = time.time() - t0
        if not bad:
            passed += 1
            print(f"PASS {name}/{mode}: {len(texts)} strings, 0 mismatches ({dt:.1f}s)", flush=True)
            continue
        failed += 1
        print(f"FAIL {name}/{mode}: {len(bad)} of {len(texts)} strings differ ({dt:.1f}s)", flush=True)
        seen = set()
        for t, why, a, b in bad[:(20 if args.soak else 5)]:
            if args.soak:
                def still(cands, mode=mode):
                    w = ref(cands)
                    o = ohm_run(ohm, model, cands, mode == "raw", tmp)
                    return [differs(x, y, offsets=(mode == "raw")) is not None for x, y in zip(w, o)]
                t = shrink(t, still)
                if t in seen:
                    continue
                seen.add(t)
                a, b = ref([t])[0], ohm_run(ohm, model, [t], mode == "raw", tmp)[0]
                why = differs(a, b, offsets=(mode == "raw"))
            print(f"  {why}: {json.dumps(t, ensure_ascii=True)}")
            print(f"    hf : {json.dumps({k: a[k] for k in a if k in ('ids', 'offsets', 'decoded')}, ensure_ascii=True)[:400]}")
            print(f"    ohm: {json.dumps({k: b[k] for k in b if k in ('ids', 'offsets', 'decoded')}, ensure_ascii=True)[:400]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
