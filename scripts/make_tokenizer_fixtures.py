#!/usr/bin/env python3
"""Reference fixtures for ohm's tokenizers (run by hand; CI has no Python).

Writes tests/fixtures/tokenizers/:
  corpus.json.gz          ~2,400 test strings as hex-encoded bytes (some are invalid UTF-8)
  ref_<name>.json.gz      for every tokenizer in ../shared/data/tokenizers (and the component
                          tokenizers built here): ids (add_special_tokens True and False) from HF
                          `tokenizers`, char offsets, decoded strings (skip_special False/True),
                          plus transformers AutoTokenizer ids for the model directories.
  comp_<name>.json        small tokenizer.json files exercising components the shared tokenizers
                          do not use (Unigram, WordPiece, WordLevel, BERT/Roberta processing, Split
                          behaviors, Digits, Punctuation, Metaspace split, Strip, NFKC, ...).
  spm_<name>.model        small SentencePiece models trained here (Unigram with a custom precompiled
                          charsmap, BPE with user-defined pieces and no byte fallback).
  ref_spm_<name>.json.gz  for every tokenizer.model (shared LLaMA-2 / Mistral ones and spm_*.model):
                          `sentencepiece` ids and decodes, and ids / decodes of the transformers
                          conversions (AutoTokenizer on a bare directory = TokenizersBackend from the
                          proto, legacy True/False; LlamaTokenizer legacy True/False; AutoTokenizer with
                          spm_llama2_tokenizer_config.json). Variants are stored as differences from the
                          `sentencepiece` ids, decodes as differences from the input text.
Needs: transformers, tokenizers, sentencepiece, protobuf. `--spm-only` regenerates only the spm files.
HF takes Python str, so invalid UTF-8 is decoded with bytes.decode("utf-8", "replace") first.
Versions: see the "versions" field of every ref file.
"""
import gzip, json, lzma, os, random, sys
import tokenizers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
N_OFFSETS = 400     # strings with offsets / decoded text recorded (keeps fixtures small)
N_AUTO = 300        # strings checked against transformers' AutoTokenizer

SNIPPETS = [
    "Hello world", "The quick brown fox jumps over the lazy dog.", "I'm sure you'll've done it; they'd say 'no'.",
    "HELLO World, this Is MiXeD cAsE", "don't won't can't shouldn't", "e-mail: someone@example.com, url https://x.org/a?b=c&d=1",
    "你好，世界！这是一个测试。", "日本語のテキストです。カタカナとひらがな。", "한국어 텍스트 입니다", "中文和English混合text",
    "مرحبا بالعالم، هذا اختبار.", "שלום עולם", "नमस्ते दुनिया, यह एक परीक्षण है।", "हिन्दी में क्षत्रिय और ज्ञान",
    "Привет, мир! Ёжик в тумане.", "Γειά σου Κόσμε", "ไทย ภาษา ทดสอบ", "Tiếng Việt có dấu: Đường phố Hà Nội",
    "Ünïcödé çàfé naïve résumé façade", "e\u0301 a\u0300 o\u0308 combining marks n\u0303", "Å Å Ω Ω ﬁ ﬂ ① ㎏ ｆｕｌｌｗｉｄｔｈ",
    "👋🌍 emoji 😀😃😄", "👨‍👩‍👧‍👦 family 👩🏽‍💻 coder 🏳️‍🌈 flag", "👍🏻👍🏼👍🏽👍🏾👍🏿", "🇺🇸🇫🇷🇯🇵 flags", "❤️ ☺️ ✌🏾",
    "tab\there\tand\nnewline\r\nCRLF", "   leading spaces", "trailing spaces   ", "multiple     spaces     here",
    "\n\n\nnewlines\n\n", " \t \n mixed whitespace \u00a0 nbsp \u3000 ideographic", "\u200b zero width \u200d joiner \ufeff bom",
    "ctrl \x00 \x01 \x07 \x1b[31m \x7f chars", "3.14159 2718 1000000 12,345.67 0x1F 1e-9", "١٢٣ ٤٥٦ arabic digits ۷۸۹", "phone +1 (555) 123-4567",
    "def foo(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "SELECT * FROM t WHERE a='b';",
    "<html><body class=\"x\">Hi &amp; bye</body></html>", "{\"key\": [1, 2, {\"nested\": null}]}", "$ ls -la /usr/bin | grep '^-' > out.txt",
    "The year 2024 had 366 days.", "a" * 60, "ab" * 40, "!!!???...,,,;;;", "--- *** ___ === +++", "¡¿Qué?! «Bonjour» „Hallo“ “quotes” ‘single’",
    "Straße GROSSE İstanbul ıi", "ǅ ǈ ǋ titlecase", "ℌ𝔢𝔩𝔩𝔬 𝕎𝕠𝕣𝕝𝕕 math alnum", "𠀀𠀁 rare CJK ext B", "\U0001F600\U0001F64F\U0001F680",
]
SPECIALS = ["<|endoftext|>", "<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|eot_id|>", "<bos>", "<eos>", "<|im_start|>",
            "<|im_end|>", "[CLS]", "[SEP]", "[MASK]", "<|fim_prefix|>", "<start_of_turn>", "<pad>"]


def make_corpus():
    rng = random.Random(1234)
    out = [s.encode() for s in SNIPPETS]
    out += [b"", b" ", b"  ", b"\n", b"\t", b"a", b" a", b"A ", b"  Hello", b"Hello  ", b"\xe2\x96\x81", b"\xe2\x96\x81hi \xe2\x96\x81 x"]
    ws = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "      ", "\u00a0", "\u3000"]
    for i in range(2000):
        k = rng.randint(1, 4)
        parts = []
        for _ in range(k):
            r = rng.random()
            if r < 0.55:
                s = rng.choice(SNIPPETS)
                if len(s) > 20 and rng.random() < 0.5:
                    a = rng.randint(0, len(s) - 1)
                    s = s[a:a + rng.randint(1, 30)]
            elif r < 0.65:
                s = rng.choice(SPECIALS)
            elif r < 0.75:
                s = str(rng.randint(0, 10 ** rng.randint(1, 12)))
            elif r < 0.85:
                s = rng.choice(ws) * rng.randint(1, 4)
            else:
                s = "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x24f), rng.randint(0x370, 0x52f),
                                            rng.randint(0x600, 0x6ff), rng.randint(0x900, 0x97f), rng.randint(0x3040, 0x30ff),
                                            rng.randint(0x4e00, 0x9fff), rng.randint(0xac00, 0xd7a3), rng.randint(0x1f300, 0x1f6ff)]))
                            for _ in range(rng.randint(1, 12)))
            parts.append(s)
            if rng.random() < 0.6:
                parts.append(rng.choice(ws[:3]))
        out.append("".join(parts).encode("utf-8", "surrogatepass"))
    # invalid UTF-8
    bad = [b"\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\x80\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80"]
    for i in range(120):
        s = bytearray(rng.choice(SNIPPETS).encode())
        for _ in range(rng.randint(1, 3)):
            p = rng.randint(0, len(s))
            s[p:p] = rng.choice(bad)
        out.append(bytes(s))
    # long runs
    out += [b" " * 300, b"\n" * 100, b"x" * 2000, ("word " * 400).encode(), "😀".encode() * 100, b"1234567890" * 50]
    return out


def load_tok_json(d):
    for f in ("tokenizer.json", "tokenizer.json.gz", "tokenizer.json.xz"):
        p = os.path.join(d, f)
        if os.path.exists(p):
            raw = open(p, "rb").read()
            if f.endswith(".gz"): raw = gzip.decompress(raw)
            if f.endswith(".xz"): raw = lzma.decompress(raw)
            return raw.decode()
    return None


def component_tokenizers(corpus_text):
    """Small tokenizers covering components the shared files do not use."""
    out = {}
    # Train on the fixed snippets only, so that the random corpus strings exercise unknown chars.
    text = SNIPPETS * 20
    # Unigram with NFKC + Metaspace(split) + byte_fallback, Metaspace decoder
    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")]) if False else normalizers.NFKC()
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tk.train_from_iterator(text, trainers.UnigramTrainer(vocab_size=800, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>"))
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                      special_tokens=[("<s>", tk.token_to_id("<s>")), ("</s>", tk.token_to_id("</s>"))])
    out["unigram_metaspace"] = tk
    # WordPiece BERT-style
    tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece()
    tk.train_from_iterator(text, trainers.WordPieceTrainer(vocab_size=900, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tk.post_processor = processors.BertProcessing(("[SEP]", tk.token_to_id("[SEP]")), ("[CLS]", tk.token_to_id("[CLS]")))
    out["wordpiece_bert"] = tk
    # WordLevel + Whitespace + Lowercase/StripAccents/NFD + Strip
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(), normalizers.Strip()])
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(text, trainers.WordLevelTrainer(vocab_size=600, special_tokens=["[UNK]"]))
    out["wordlevel_whitespace"] = tk
    # BPE with Split behaviors / Digits / Punctuation / WhitespaceSplit, suffix, BPEDecoder
    tk = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tk.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Replace(tokenizers.Regex(r"\s+"), " "), normalizers.Prepend("_")])
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation("contiguous"),
        pre_tokenizers.Split(tokenizers.Regex(r"[aeiou]"), "merged_with_previous"),
        pre_tokenizers.Split("x", "merged_with_next"), pre_tokenizers.Split(tokenizers.Regex(r"\p{Lu}"), "isolated", invert=True)])
    tk.decoder = decoders.BPEDecoder(suffix="</w>")
    tk.train_from_iterator(text, trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>"], end_of_word_suffix="</w>"))
    out["bpe_splits"] = tk
    # BPE with continuing_subword_prefix, Digits(contiguous), Split removed, Roberta processing, NFC+Lowercase
    tk = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", fuse_unk=True))
    tk.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(" ", "removed"), pre_tokenizers.Digits(individual_digits=False),
                                                pre_tokenizers.Split(tokenizers.Regex(r"[.,!?]"), "merged_with_next")])
    tk.decoder = decoders.WordPiece(prefix="##")
    tk.train_from_iterator(text, trainers.BpeTrainer(vocab_size=700, special_tokens=["[UNK]", "<s>", "</s>"], continuing_subword_prefix="##"))
    tk.post_processor = processors.RobertaProcessing(("</s>", tk.token_to_id("</s>")), ("<s>", tk.token_to_id("<s>")))
    out["bpe_prefix_roberta"] = tk
    # Byte-level BPE with add_prefix_space and added tokens with lstrip/rstrip/single_word/normalized flags
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=True)
    tk.normalizer = normalizers.Lowercase()
    tk.train_from_iterator(text, trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.add_special_tokens([tokenizers.AddedToken("<|endoftext|>", special=True),
                           tokenizers.AddedToken("[MASK]", lstrip=True, rstrip=True, special=True)])
    tk.add_tokens([tokenizers.AddedToken("hello", single_word=True, normalized=True),
                   tokenizers.AddedToken("World", normalized=False), tokenizers.AddedToken(" spaced", lstrip=False, normalized=True)])
    out["bytelevel_added"] = tk
    return out


def ref_for(tk, corpus, auto=None):
    ids_sp, ids_nosp, offsets, dec, dec_skip, auto_ids = [], [], [], [], [], []
    strs = [b.decode("utf-8", "replace") for b in corpus]
    encs = tk.encode_batch(strs, add_special_tokens=True)
    encs_n = tk.encode_batch(strs, add_special_tokens=False)
    for i, (e, en) in enumerate(zip(encs, encs_n)):
        ids_sp.append(e.ids)
        ids_nosp.append(en.ids)
        if i < N_OFFSETS:
            offsets.append([x for o in e.offsets for x in o])
            dec.append(tk.decode(e.ids, skip_special_tokens=False))
            dec_skip.append(tk.decode(e.ids, skip_special_tokens=True))
    if auto is not None:
        auto_ids = [auto.encode(s, add_special_tokens=True) for s in strs[:N_AUTO]]
        auto_dec = [auto.decode(ids, skip_special_tokens=True) for ids in auto_ids]
    else:
        auto_dec = []
    import transformers
    return {"versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__},
            "ids": ids_sp, "ids_no_special": ids_nosp, "offsets": offsets, "decoded": dec,
            "decoded_skip_special": dec_skip, "auto_ids": auto_ids, "auto_decoded": auto_dec}


def main():
    os.makedirs(OUT, exist_ok=True)
    corpus = make_corpus()
    if "--components-only" in sys.argv:
        return components(corpus)
    if "--spm-only" in sys.argv:
        return spm_refs(corpus)
    with gzip.GzipFile(os.path.join(OUT, "corpus.json.gz"), "wb", mtime=0) as f:
        f.write(json.dumps([b.hex() for b in corpus]).encode())
    from transformers import AutoTokenizer
    tdir = os.path.join(SHARED, "tokenizers")
    for name in sorted(os.listdir(tdir)):
        d = os.path.join(tdir, name)
        js = load_tok_json(d)
        if js is None:
            continue
        tk = Tokenizer.from_str(js)
        auto = None
        try:
            import tempfile, shutil
            tmp = tempfile.mkdtemp()
            open(os.path.join(tmp, "tokenizer.json"), "w").write(js)
            if os.path.exists(os.path.join(d, "tokenizer_config.json")):
                shutil.copy(os.path.join(d, "tokenizer_config.json"), tmp)
            auto = AutoTokenizer.from_pretrained(tmp)
        except Exception as e:  # noqa
            print("AutoTokenizer failed for", name, e, file=sys.stderr)
        ref = ref_for(tk, corpus, auto)
        with gzip.GzipFile(os.path.join(OUT, f"ref_{name}.json.gz"), "wb", mtime=0) as f:
            f.write(json.dumps(ref, separators=(",", ":")).encode())
        print(name, "done", file=sys.stderr)
    components(corpus)
    spm_refs(corpus)


def components(corpus):
    comps = component_tokenizers([b.decode("utf-8", "replace") for b in corpus])
    for name, tk in comps.items():
        open(os.path.join(OUT, f"comp_{name}.json"), "w").write(tk.to_str())
        ref = ref_for(tk, corpus)
        with gzip.GzipFile(os.path.join(OUT, f"ref_comp_{name}.json.gz"), "wb", mtime=0) as f:
            f.write(json.dumps(ref, separators=(",", ":")).encode())
        print(name, "done", file=sys.stderr)


N_SPM_DECODE = 400
LLAMA2_CONFIG = {  # the shape of meta-llama/Llama-2-7b-hf's tokenizer_config.json
    "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
    "pad_token": None, "clean_up_tokenization_spaces": False, "legacy": False, "model_max_length": 4096,
    "tokenizer_class": "LlamaTokenizer"}


def train_spm_models():
    """Small SentencePiece models covering what the shared LLaMA-style ones do not."""
    import io
    import sentencepiece as spm
    text = SNIPPETS * 20
    # A few NFKC-like rules compiled into a (small) precompiled charsmap: code points TAB code points.
    rules = ["FF21\t41", "FF41\t61", "FB01\t66 69", "FB02\t66 6C", "2460\t31", "3000\t20", "A0\t20",
             "212B\tC5", "41 30A\tC5", "65 301\tE9", "2126\t3A9", "338F\t6B 67", "FF46\t66", "FF55\t75"]
    tsv = "/tmp/ohm_spm_rules.tsv"  # a fixed path: it is recorded in the model
    open(tsv, "w").write("\n".join(rules) + "\n")
    out = {}
    for name, kw in [("unigram", dict(model_type="unigram", vocab_size=600, byte_fallback=True,
                                      normalization_rule_tsv=tsv, user_defined_symbols=["<mask>", "[X]"])),
                     ("bpe", dict(model_type="bpe", vocab_size=500, byte_fallback=False, add_dummy_prefix=True,
                                  normalization_rule_name="identity", user_defined_symbols=["<mask>", "ab"],
                                  remove_extra_whitespaces=True))]:
        m = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=m, hard_vocab_limit=False,
                                       character_coverage=0.9995, minloglevel=2, **kw)
        path = os.path.join(OUT, f"spm_{name}.model")
        open(path, "wb").write(m.getvalue())
        out[f"spm_{name}"] = path
    return out


def spm_refs(corpus):
    import shutil, tempfile
    import sentencepiece as spm
    import transformers
    from transformers import AutoTokenizer, LlamaTokenizer
    strs = [b.decode("utf-8", "replace") for b in corpus]
    models = {n: os.path.join(SHARED, "tokenizers", n, "tokenizer.model") for n in ("llama2-sentencepiece", "mistral-7b-v0.1")}
    models.update(train_spm_models())
    for name, path in models.items():
        sp = spm.SentencePieceProcessor(model_file=path)
        sp_ids = [sp.encode(s) for s in strs]
        bare = tempfile.mkdtemp()
        shutil.copy(path, os.path.join(bare, "tokenizer.model"))
        nonlegacy = tempfile.mkdtemp()
        shutil.copy(path, os.path.join(nonlegacy, "tokenizer.model"))
        json.dump({"legacy": False}, open(os.path.join(nonlegacy, "tokenizer_config.json"), "w"))
        variants = {"proto": AutoTokenizer.from_pretrained(bare), "proto_nonlegacy": AutoTokenizer.from_pretrained(nonlegacy)}
        assert type(variants["proto"]).__name__ == "TokenizersBackend", type(variants["proto"])
        from transformers.convert_slow_tokenizer import import_protobuf
        proto = import_protobuf().ModelProto()
        proto.ParseFromString(open(path, "rb").read())
        if proto.trainer_spec.model_type == 2:  # BPE: LlamaTokenizer conversions
            variants["llama_legacy"] = LlamaTokenizer.from_pretrained(bare, legacy=True)
            variants["llama"] = LlamaTokenizer.from_pretrained(bare, legacy=False)
            l2 = tempfile.mkdtemp()
            shutil.copy(path, os.path.join(l2, "tokenizer.model"))
            json.dump(LLAMA2_CONFIG, open(os.path.join(l2, "tokenizer_config.json"), "w"))
            variants["auto_llama2"] = AutoTokenizer.from_pretrained(l2)

        full = {"sp": sp_ids}  # id lists a variant's ids may be stored relative to

        def diff(ids, key):
            """{"base": list it is closest to, "diff": {index: ids where it differs}}."""
            best = min(full, key=lambda b: sum(1 for i, x in enumerate(ids) if x != full[b][i]))
            full[key] = ids
            return {"base": best, "diff": {str(i): x for i, x in enumerate(ids) if x != full[best][i]}}

        def decodes(fn, ids):
            return {str(i): d for i in range(min(N_SPM_DECODE, len(ids))) if (d := fn(ids[i])) != strs[i]}

        ref = {"versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
                            "sentencepiece": spm.__version__},
               "n_decode": N_SPM_DECODE, "sp_ids": sp_ids, "sp_decoded": decodes(sp.decode, sp_ids), "variants": {}}
        for vname, tk in variants.items():
            # AutoTokenizer with a config adds BOS to every string: checked on the first N_AUTO only.
            n = N_AUTO if vname == "auto_llama2" else len(strs)
            ids = [tk.encode(s, add_special_tokens=True) for s in strs[:n]]
            split = [tk.encode(s, add_special_tokens=False, split_special_tokens=True) for s in strs]
            ref["variants"][vname] = {
                "class": type(tk).__name__, "n": n,
                "ids": diff(ids + sp_ids[n:], vname + ".ids"),
                "ids_split_special": diff(split, vname + ".ids_split_special"),
                "decoded": decodes(lambda x: tk.decode(x, skip_special_tokens=False), ids),
                "decoded_skip_special": decodes(lambda x: tk.decode(x, skip_special_tokens=True), ids)}
            print(name, vname, "differs from sentencepiece on", sum(1 for i, x in enumerate(split) if x != sp_ids[i]),
                  "of", len(strs), file=sys.stderr)
        with gzip.GzipFile(os.path.join(OUT, f"ref_spm_{name}.json.gz"), "wb", mtime=0) as f:
            f.write(json.dumps(ref, separators=(",", ":"), ensure_ascii=False).encode())
    json.dump(LLAMA2_CONFIG, open(os.path.join(OUT, "spm_llama2_tokenizer_config.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
