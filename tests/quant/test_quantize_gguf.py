#!/usr/bin/env python3
"""`ohm quantize` end to end: the demo model (models/ohm-demo, an HF checkpoint) quantized to every
--type that `ohm quantize --help` offers, then for each file:

  - the PyPI `gguf` library (gguf-py) reads it: the architecture metadata, the full vocabulary,
    general.file_type, and every tensor's type as llama-quantize's rules pick it;
  - gguf-py's gguf.quants.dequantize of every tensor equals ohm's own dequantization of the same
    bytes (tests/quant/gguf_dequant.cpp) bit for bit;
  - ohm loads the file back and generates (greedy, a few tokens).

And the bad inputs: an unknown --type, a missing IN, a row length that is not a multiple of the
block size (an error for q4_0, a fallback type for the k-quants), with OUT left untouched.

Needs numpy and gguf (scripts/hub-client-venv.sh installs them into build/hub-venv; the script
re-executes itself there when the running python lacks them), else it skips (exit 77).

And `ohm imatrix` on TEXT (llama-imatrix's GGUF layout) feeding `ohm quantize --imatrix`
(q4_k_m, q2_k, q4_0: the quantize.imatrix.* keys, the bytes as above), and an imatrix of another
shape refused naming the tensor.

Usage: test_quantize_gguf.py OHM GGUF_DEQUANT MODEL_DIR TEXT
"""
import importlib
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def have_modules_or_reexec(*modules):
    try:
        for m in modules:
            importlib.import_module(m)
        return True
    except ImportError:
        venv = os.path.join(ROOT, "build", "hub-venv")
        venv_py = os.path.join(venv, "bin", "python")
        if os.path.exists(venv_py) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(venv_py, [venv_py] + sys.argv)
        return False


FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def ohm(*args, ok=True):
    p = subprocess.run([OHM, *args], capture_output=True, text=True, timeout=600)
    if ok and p.returncode != 0:
        raise SystemExit(f"FAIL: ohm {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


def offered_types():
    text = ohm("quantize", "--help").stdout
    m = re.search(r"Quantization: ([a-z0-9_|]+)", text)
    assert m, "ohm quantize --help lists no types"
    return m.group(1).split("|")


# llama.cpp's llama_ftype per --type (general.file_type).
FTYPE = {"q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k": 11,
         "q4_k": 14, "q5_k": 16, "q6_k": 18, "q4_k_m": 15, "q5_k_m": 17}
# Fallbacks of llama_tensor_get_type for rows not split into 256 (q2_k/q3_k: llama.cpp's
# iq4_nl, which ohm does not write: q4_0).
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_type(typ, name, shape, n_layer):
    """llama-quantize's type for one demo tensor (shape in gguf-py's order: ne0 first)."""
    if len(shape) < 2 or "_norm" in name:
        return "F32"
    base = typ.upper()[:4]
    t = base
    if name == "output.weight":
        t = "Q8_0" if shape[0] % 256 else ("Q6_K" if base != "Q8_0" else "Q8_0")
    elif typ in ("q4_k_m", "q5_k_m"):
        layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
        if "attn_v.weight" in name and use_more_bits(layer, n_layer):
            t = "Q6_K"
        if "ffn_down" in name and use_more_bits(layer, n_layer):
            t = "Q6_K"
    if t.endswith("_K") and shape[0] % 256:
        t = FALLBACK[t]
    return t


def check_file(typ, path, dump, tmp):
    import numpy as np
    import gguf

    r = gguf.GGUFReader(path)
    f = r.fields
    check(f["general.architecture"].contents() == "llama", f"{typ}: general.architecture")
    check(f["general.file_type"].contents() == FTYPE[typ], f"{typ}: general.file_type")
    check(f["llama.block_count"].contents() == 6, f"{typ}: llama.block_count")
    check(f["tokenizer.ggml.model"].contents() == "gpt2", f"{typ}: tokenizer.ggml.model")
    tokens = f["tokenizer.ggml.tokens"].contents()
    check(len(tokens) == 4096 and tokens[0] == "<|endoftext|>", f"{typ}: vocabulary")
    check(len(f["tokenizer.ggml.merges"].contents()) == 3839, f"{typ}: merges")
    check(len(r.tensors) == 57, f"{typ}: 57 tensors")

    for t in r.tensors:
        want = expected_type(typ, t.name, [int(x) for x in t.shape], 6)
        check(t.tensor_type.name == want,
              f"{typ}: {t.name} is {t.tensor_type.name}, llama-quantize writes {want}")
    check_bytes(typ, path, dump)

    g = ohm("generate", path, "--prompt", "ROMEO:", "--greedy", "-n", "8")
    check(g.stdout.startswith("ROMEO:") and len(g.stdout) > len("ROMEO:") + 4,
          f"{typ}: ohm generate on the file: {g.stdout!r}")
    return g.stdout


def check_bytes(typ, path, dump):
    """gguf-py's dequantize of every tensor equals ohm's (gguf_dequant) bit for bit."""
    import numpy as np
    import gguf

    r = gguf.GGUFReader(path)
    subprocess.run([DEQUANT, path, dump], check=True, timeout=600)
    ours = np.fromfile(dump, dtype=np.float32)
    off = 0
    for t in r.tensors:
        theirs = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        mine = ours[off:off + theirs.size]
        off += theirs.size
        same = mine.size == theirs.size and np.array_equal(mine.view(np.uint32),
                                                            theirs.view(np.uint32))
        check(same, f"{typ}: {t.name} ({t.tensor_type.name}): gguf-py's dequantize differs "
                    f"from ohm's")
    check(off == ours.size, f"{typ}: ohm dequantized {ours.size} values, gguf-py {off}")


def imatrix_flow(tmp, text):
    """ohm imatrix on a text, then ohm quantize --imatrix: the file is llama-imatrix's format and
    the weighted quantizers' bytes read back through gguf-py as ohm reads them."""
    import numpy as np
    import gguf

    im = os.path.join(tmp, "imatrix.gguf")
    ohm("imatrix", MODEL, "--file", text, "--out", im, "--ctx-size", "256", "-q")
    r = gguf.GGUFReader(im)
    f = r.fields
    check(f["general.type"].contents() == "imatrix", "imatrix: general.type")
    chunks, size = f["imatrix.chunk_count"].contents(), f["imatrix.chunk_size"].contents()
    check(chunks >= 2 and size == 256, f"imatrix: chunks {chunks}, chunk size {size}")
    check(f["imatrix.datasets"].contents() == [text], "imatrix: datasets")
    t = {x.name: x for x in r.tensors}
    names = sorted(n[:-len(".in_sum2")] for n in t if n.endswith(".in_sum2"))
    check(len(names) == 42 and len(t) == 84, f"imatrix: {len(names)} matrices, {len(t)} tensors")
    order = [n + suf for n in names for suf in (".in_sum2", ".counts")]  # as llama-imatrix
    check([x.name for x in r.tensors] == order, "imatrix: tensors not in llama-imatrix's order")
    for n in names:
        s, c = t[n + ".in_sum2"], t[n + ".counts"]
        cols = 704 if "ffn_down" in n else 256
        check(list(s.shape) == [cols] and list(c.shape) == [1], f"imatrix: {n} shapes")
        check(float(c.data.reshape(-1)[0]) == chunks * size, f"imatrix: {n} counts {c.data}")
        check(bool((s.data >= 0).all()) and float(s.data.sum()) > 0, f"imatrix: {n} sums")
    # q, k and v see the same input rows.
    for L in range(6):
        q, k = t[f"blk.{L}.attn_q.weight.in_sum2"].data, t[f"blk.{L}.attn_k.weight.in_sum2"].data
        check(np.array_equal(q, k), f"imatrix: blk.{L} q and k inputs differ")
    for typ in ("q4_k_m", "q2_k", "q4_0"):
        path = os.path.join(tmp, f"demo-{typ}-imatrix.gguf")
        p = ohm("quantize", MODEL, path, "--type", typ, "--imatrix", im)
        check("imatrix" in p.stdout, f"{typ} --imatrix: the summary names no imatrix use")
        fr = gguf.GGUFReader(path).fields
        check(fr["quantize.imatrix.file"].contents() == im and
              fr["quantize.imatrix.entries_count"].contents() == 42 and
              fr["quantize.imatrix.chunks_count"].contents() == chunks,
              f"{typ} --imatrix: quantize.imatrix.* keys")
        if typ == "q4_0":  # llama-quantize: the first n_layer/8 ffn_down layers get q4_1
            types = {x.name: x.tensor_type.name for x in gguf.GGUFReader(path).tensors}
            check(types["blk.0.ffn_down.weight"] == "Q4_0" and
                  types["blk.1.ffn_down.weight"] == "Q4_0",
                  f"q4_0 --imatrix: ffn_down types {types['blk.0.ffn_down.weight']}")
        check_bytes(typ, path, os.path.join(tmp, "dump.f32"))
        os.remove(path)
    # An imatrix of another shape names the tensor.
    bad = os.path.join(tmp, "bad-imatrix.gguf")
    w = gguf.GGUFWriter(bad, arch=None)
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", ["x"])
    w.add_uint32("imatrix.chunk_count", 1)
    w.add_uint32("imatrix.chunk_size", 512)
    w.add_tensor("blk.0.attn_q.weight.in_sum2", np.ones(100, dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight.counts", np.ones(1, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    p = ohm("quantize", MODEL, os.path.join(tmp, "x.gguf"), "--type", "q4_k", "--imatrix", bad,
            ok=False)
    check(p.returncode == 1 and "blk.0.attn_q.weight" in p.stderr and "100" in p.stderr,
          f"imatrix of another shape: {p.returncode} {p.stderr}")


def bad_inputs(tmp):
    import numpy as np
    import gguf

    p = ohm("quantize", MODEL, os.path.join(tmp, "x.gguf"), "--type", "q7_0", ok=False)
    check(p.returncode == 2 and "q7_0" in p.stderr, f"unknown --type: {p.returncode} {p.stderr}")
    missing = os.path.join(tmp, "missing.gguf")
    p = ohm("quantize", missing, os.path.join(tmp, "x.gguf"), "--type", "q4_0", ok=False)
    check(p.returncode == 1 and "missing.gguf" in p.stderr, f"missing IN: {p.stderr}")

    # A 48-wide matrix: no q4_0 blocks (llama-quantize stops too), k-quants fall back to f16.
    src = os.path.join(tmp, "odd.gguf")
    w = gguf.GGUFWriter(src, "llama")
    w.add_block_count(1)
    w.add_tensor("blk.0.ffn_up.weight", np.linspace(-1, 1, 4 * 48, dtype=np.float32).reshape(4, 48))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(48, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = os.path.join(tmp, "odd-out.gguf")
    with open(out, "w") as fh:
        fh.write("old")
    p = ohm("quantize", src, out, "--type", "q4_0", ok=False)
    check(p.returncode == 1 and "blk.0.ffn_up.weight" in p.stderr and "48" in p.stderr,
          f"row length 48 for q4_0: {p.returncode} {p.stderr}")
    check(open(out).read() == "old", "a failed quantize changed OUT")
    check(not [n for n in os.listdir(tmp) if ".partial-" in n], "a partial file was left behind")
    p = ohm("quantize", src, out, "--type", "q4_k")
    check("fallback" in p.stdout and "blk.0.ffn_up.weight" in p.stdout,
          f"q4_k on 48-wide rows: no fallback in the summary:\n{p.stdout}")
    t = {x.name: x.tensor_type.name for x in gguf.GGUFReader(out).tensors}
    check(t.get("blk.0.ffn_up.weight") == "F16", f"48-wide rows under q4_k: {t}")


def main():
    global OHM, DEQUANT, MODEL, TEXT
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    OHM, DEQUANT, MODEL, TEXT = sys.argv[1:5]
    if not have_modules_or_reexec("numpy", "gguf"):
        print("SKIP: numpy and gguf are not installed (scripts/hub-client-venv.sh)")
        return 77
    import gguf
    print("gguf-py", getattr(gguf, "__version__", "?"), "from", os.path.dirname(gguf.__file__))
    with tempfile.TemporaryDirectory() as tmp:
        types = offered_types()
        print("types:", " ".join(types))
        ref = ohm("generate", MODEL, "--prompt", "ROMEO:", "--greedy", "-n", "8").stdout
        for typ in types:
            path = os.path.join(tmp, f"demo-{typ}.gguf")
            ohm("quantize", MODEL, path, "--type", typ, "-q")
            text = check_file(typ, path, os.path.join(tmp, "dump.f32"), tmp)
            print(f"{typ}: {os.path.getsize(path)} bytes, generates {text!r}")
            if typ in ("q8_0", "q6_k"):  # near-lossless: the bf16 model's greedy tokens
                check(text == ref, f"{typ}: generates {text!r}, the bf16 model {ref!r}")
            os.remove(path)
        imatrix_flow(tmp, TEXT)
        bad_inputs(tmp)
    print(f"{'FAIL' if FAILS else 'PASS'} ({len(FAILS)} failures)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
