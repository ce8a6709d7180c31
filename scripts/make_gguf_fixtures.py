#!/usr/bin/env python3
"""Writes the GGUF test fixtures under tests/fixtures/gguf/ (deterministic; needs `gguf`, numpy).

  fixture.gguf      GGUF v3, alignment 64: metadata of every value type (incl. arrays of strings
                    and nested arrays) and one tensor per plain/quantized type ohm reads.
  ref/<name>.f32    the tensor dequantized by gguf-py (gguf.quants.dequantize), raw little-endian
                    f32 in row-major order. Q8_1 and Q8_K (gguf-py has no dequantizer for them) and
                    F64/I* use the same formula as ggml's reference (d * q, or a cast).
  manifest.json     per tensor: ggml type, dims (ne0 first), absolute data offset and byte size as
                    read back by gguf.GGUFReader, and the reference file.
  vocab_expect.json what gguf.GGUFReader reads from each <shared data>/gguf-vocab/*.gguf
                    (version, key names and types, token counts, first/last tokens), when present.
  tests/fuzz/seeds/gguf/  seeds for fuzz_gguf: the fixture (v3 and v2) and small copies of three
                    vocab files (every array cut to 48 items).

Usage: python3 scripts/make_gguf_fixtures.py [--shared-data DIR]
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "gguf"

# gguf-py still lists the old 40-byte Q8_1 block (f32 d, f32 s); ggml's block_q8_1 is
# {f16 d; f16 s; int8 qs[32]} = 36 bytes (static_assert in ggml-common.h). Use ggml's layout.
gguf.constants.GGML_QUANT_SIZES[T.Q8_1] = (32, 36)

# Byte offsets of the scale fields in each block: (offset, kind) with kind f16 or f32.
SCALE_FIELDS = {
    T.Q4_0: [(0, "f16")],
    T.Q4_1: [(0, "f16"), (2, "f16")],
    T.Q5_0: [(0, "f16")],
    T.Q5_1: [(0, "f16"), (2, "f16")],
    T.Q8_0: [(0, "f16")],
    T.Q8_1: [(0, "f16"), (2, "f16")],
    T.Q2_K: [(80, "f16"), (82, "f16")],
    T.Q3_K: [(108, "f16")],
    T.Q4_K: [(0, "f16"), (2, "f16")],
    T.Q5_K: [(0, "f16"), (2, "f16")],
    T.Q6_K: [(208, "f16")],
    T.Q8_K: [(0, "f32")],
}


def random_blocks(rng, qtype, rows, ne0):
    """Random bytes with every scale field replaced by a small finite value."""
    bs, ts = gguf.constants.GGML_QUANT_SIZES[qtype]
    nb = rows * ne0 // bs
    blocks = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    for off, kind in SCALE_FIELDS[qtype]:
        if kind == "f16":
            vals = (rng.standard_normal(nb) * 0.05).astype(np.float16)
            # exercise the f16 conversion edge cases: a subnormal, a negative zero
            vals[0] = np.frombuffer(np.uint16(0x0123).tobytes(), np.float16)[0]
            if nb > 1:
                vals[1] = np.float16(-0.0)
            blocks[:, off:off + 2] = vals.view(np.uint8).reshape(nb, 2)
        else:
            vals = (rng.standard_normal(nb) * 0.01).astype(np.float32)
            blocks[:, off:off + 4] = vals.view(np.uint8).reshape(nb, 4)
    return blocks.reshape(rows, ne0 // bs * ts)


def reference(qtype, raw, shape):
    """f32 reference values, shape = row-major shape."""
    if qtype == T.Q8_1:  # ggml has no dequantize_row_q8_1; x = d * q
        b = raw.reshape(-1, 36)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = b[:, 4:].view(np.int8).astype(np.float32)
        return (q * d).reshape(shape)
    if qtype == T.Q8_K:  # dequantize_row_q8_K: x = d * q with an f32 d
        b = raw.reshape(-1, 292)
        d = b[:, 0:4].copy().view(np.float32)
        q = b[:, 4:260].view(np.int8).astype(np.float32)
        return (d * q).reshape(shape)
    return np.asarray(gguf.quants.dequantize(raw, qtype), dtype=np.float32).reshape(shape)


def build(out: Path):
    rng = np.random.default_rng(20240611)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ref").mkdir(exist_ok=True)
    path = out / "fixture.gguf"
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_custom_alignment(64)
    w.add_name("ohm gguf fixture")

    # Metadata of every value type.
    w.add_uint8("test.uint8", 200)
    w.add_int8("test.int8", -100)
    w.add_uint16("test.uint16", 60000)
    w.add_int16("test.int16", -30000)
    w.add_uint32("test.uint32", 4000000000)
    w.add_int32("test.int32", -2000000000)
    w.add_float32("test.float32", 0.15625)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld \u2713")
    w.add_key_value("test.string_empty", "", V.STRING)
    w.add_uint64("test.uint64", 2**63 + 5)
    w.add_int64("test.int64", -(2**62) - 7)
    w.add_float64("test.float64", 3.141592653589793)
    w.add_array("test.array.int32", [1, -2, 3, 2147483647])
    w.add_key_value("test.array.uint8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.array.int64", [-(2**40), 5], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("test.array.uint64", [2**64 - 1], V.ARRAY, sub_type=V.UINT64)
    w.add_array("test.array.float32", [0.5, -1.25, 1e-3])
    w.add_key_value("test.array.float64", [0.1, -2.5], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("test.array.bool", [True, False, True])
    w.add_array("test.array.string", ["a", "", "\u00fcn\u00ef", "<0x0A>"])
    w.add_array("test.array.nested", [[1, 2], [3, 4, 5]])
    w.add_array("test.array.nested_string", [["x"], ["y", "z"]])
    w.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "hello", "\u2581world"])
    w.add_uint32("llama.context_length", 4096)
    w.add_float32("llama.rope.freq_base", 10000.0)

    # One tensor per type: (name, type, row-major shape).
    specs = [
        ("plain.f32", T.F32, (2, 3, 40)),
        ("plain.f16", T.F16, (5, 48)),
        ("plain.bf16", T.BF16, (4, 32)),
        ("plain.f64", T.F64, (2, 16)),
        ("plain.i8", T.I8, (3, 8)),
        ("plain.i16", T.I16, (3, 8)),
        ("plain.i32", T.I32, (3, 8)),
        ("plain.i64", T.I64, (2, 8)),
        ("plain.vec", T.F32, (7,)),
        ("quant.q4_0", T.Q4_0, (3, 512)),
        ("quant.q4_1", T.Q4_1, (3, 512)),
        ("quant.q5_0", T.Q5_0, (3, 512)),
        ("quant.q5_1", T.Q5_1, (3, 512)),
        ("quant.q8_0", T.Q8_0, (3, 512)),
        ("quant.q8_1", T.Q8_1, (2, 256)),
        ("quant.q2_k", T.Q2_K, (3, 512)),
        ("quant.q3_k", T.Q3_K, (3, 512)),
        ("quant.q4_k", T.Q4_K, (3, 512)),
        ("quant.q5_k", T.Q5_K, (3, 512)),
        ("quant.q6_k", T.Q6_K, (3, 512)),
        ("quant.q8_k", T.Q8_K, (2, 256)),
        ("quant.q4_0_4d", T.Q4_0, (2, 3, 2, 64)),
    ]
    refs = {}
    for name, qt, shape in specs:
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        ne0 = shape[-1]
        if qt == T.F32:
            data = rng.standard_normal(shape).astype(np.float32)
            data.flat[0] = -0.0
            w.add_tensor(name, data)
            ref = data
        elif qt == T.F16:
            data = (rng.standard_normal(shape) * 100).astype(np.float16)
            specials = [np.inf, -np.inf, np.nan, 65504.0, 6.0e-8, -6.1e-5, -0.0]
            data.flat[: len(specials)] = np.array(specials, dtype=np.float16)
            w.add_tensor(name, data)
            ref = data.astype(np.float32)
        elif qt == T.BF16:
            f = rng.standard_normal(shape).astype(np.float32)
            bits = (f.view(np.uint32) >> 16).astype(np.uint16)
            bits.flat[0] = 0x7F80  # inf
            bits.flat[1] = 0x0001  # subnormal
            raw = bits.view(np.uint8).reshape(shape[:-1] + (ne0 * 2,))
            w.add_tensor(name, raw, raw_dtype=T.BF16)
            ref = np.asarray(gguf.quants.dequantize(raw, T.BF16), np.float32).reshape(shape)
        elif qt == T.F64:
            data = rng.standard_normal(shape) * 1e3
            data.flat[0] = 1e300  # overflows f32 -> inf
            data.flat[1] = -1e39
            data.flat[2] = float(np.finfo(np.float32).max) + 2.0**102  # rounds to FLT_MAX
            data.flat[3] = 1e-50  # underflows to 0
            w.add_tensor(name, data)
            with np.errstate(over="ignore"):
                ref = data.astype(np.float32)
        elif qt in (T.I8, T.I16, T.I32, T.I64):
            dt = {T.I8: np.int8, T.I16: np.int16, T.I32: np.int32, T.I64: np.int64}[qt]
            info = np.iinfo(dt)
            data = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
            data.flat[0] = info.min
            data.flat[1] = info.max
            w.add_tensor(name, data)
            ref = data.astype(np.float32)
        else:
            raw = random_blocks(rng, qt, rows, ne0)
            raw = raw.reshape(shape[:-1] + (raw.shape[-1],))
            w.add_tensor(name, raw, raw_dtype=qt)
            ref = reference(qt, raw, shape)
        assert ref.dtype == np.float32 and ref.shape == tuple(shape), (name, ref.dtype, ref.shape)
        refs[name] = (qt, shape, ref)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Read back with gguf-py for an independent view of offsets and sizes.
    r = gguf.GGUFReader(str(path))
    manifest = {"file": "fixture.gguf", "version": 3, "alignment": 64, "tensors": []}
    by_name = {t.name: t for t in r.tensors}
    for name, (qt, shape, ref) in refs.items():
        t = by_name[name]
        fname = f"ref/{name}.f32"
        ref.astype("<f4").tofile(out / fname)
        manifest["tensors"].append({
            "name": name,
            "ggml_type": int(qt),
            "type_name": qt.name,
            "dims": [int(x) for x in t.shape],
            "shape": list(shape),
            "offset": int(t.data_offset),
            "nbytes": int(t.n_bytes),
            "ref": fname,
        })
    manifest["n_kv"] = len(w.kv_data[0])
    manifest["keys"] = list(w.kv_data[0].keys())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def vocab_expectations(shared: Path, out: Path):
    vdir = shared / "gguf-vocab"
    if not vdir.is_dir():
        print(f"note: {vdir} not found, vocab_expect.json not written", file=sys.stderr)
        return
    exp = {}
    for f in sorted(vdir.glob("*.gguf")):
        r = gguf.GGUFReader(str(f))
        keys = {}
        for k, fld in r.fields.items():
            if k.startswith("GGUF."):
                continue
            types = [t.name.lower() for t in fld.types]
            keys[k] = types[0] if len(types) == 1 else f"array[{types[1]}]"
        e = {"version": int(r.fields["GGUF.version"].parts[-1][0]), "n_tensors": len(r.tensors),
             "keys": keys}
        tok = r.fields.get("tokenizer.ggml.tokens")
        if tok is not None:
            toks = [bytes(tok.parts[i]).decode("utf-8", errors="replace") for i in tok.data]
            e["n_tokens"] = len(toks)
            e["first_tokens"] = toks[:3]
            e["last_token"] = toks[-1]
        mer = r.fields.get("tokenizer.ggml.merges")
        if mer is not None:
            e["n_merges"] = len(mer.data)
        exp[f.name] = e
    (out / "vocab_expect.json").write_text(json.dumps(exp, indent=1, ensure_ascii=False) + "\n")


def small_vocab_copy(src: Path, dst: Path, n: int = 48):
    """`src` with every array cut to its first n items (a small, realistic fuzz seed)."""
    r = gguf.GGUFReader(str(src))
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    w = gguf.GGUFWriter(str(dst), arch=arch)
    for k, fld in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        vt = fld.types[0]
        if vt == V.ARRAY:
            sub = fld.types[1]
            items = [fld.parts[i] for i in fld.data[:n]]
            if sub == V.STRING:
                vals = [bytes(x).decode("utf-8", errors="replace") for x in items]
            else:
                vals = [x.tolist()[0] for x in items]
            w.add_key_value(k, vals, V.ARRAY, sub_type=sub)
        elif vt == V.STRING:
            w.add_key_value(k, bytes(fld.parts[-1]).decode("utf-8", errors="replace"), vt)
        else:
            w.add_key_value(k, fld.parts[-1].tolist()[0], vt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def fuzz_seeds(shared: Path, fixtures: Path, seeds: Path):
    seeds.mkdir(parents=True, exist_ok=True)
    data = (fixtures / "fixture.gguf").read_bytes()
    (seeds / "fixture.gguf").write_bytes(data)
    # the same file as GGUF v2 (identical layout)
    (seeds / "fixture-v2.gguf").write_bytes(data[:4] + (2).to_bytes(4, "little") + data[8:])
    vdir = shared / "gguf-vocab"
    for name in ("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf"):
        if (vdir / name).exists():
            small_vocab_copy(vdir / name, seeds / name.replace(".gguf", "-small.gguf"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-data", default=os.environ.get("OHM_SHARED_DATA",
                                                           str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--seeds", default=str(ROOT / "tests" / "fuzz" / "seeds" / "gguf"),
                    help="where to write the fuzz seed corpus")
    args = ap.parse_args()
    out = Path(args.out)
    build(out)
    vocab_expectations(Path(args.shared_data), out)
    fuzz_seeds(Path(args.shared_data), out, Path(args.seeds))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total} bytes)")


if __name__ == "__main__":
    main()
