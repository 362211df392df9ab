"""Reference outputs for the Rust dequantisers (kernels/tests/checkpoint_dequant.rs).

Usage: python dequant.py MODEL.gguf OUT_DIR

Writes, with the `gguf` package only (its quantize/dequantize are the reference):
  OUT_DIR/model_ref.gguf   the tensors of MODEL.gguf named in FULL_REFS as F32, from
                           gguf.quants.dequantize (same names, ggml layout: no permutation
                           undone)
  OUT_DIR/model_ref.json   for every tensor of MODEL.gguf: type, element count and
                           `bits_hash`, the wrapping u64 sum of (f32 bits of element i) x (2i+1)
                           over its dequantised values; any single differing element changes it
  OUT_DIR/quants.gguf      tensors of F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K made from
                           real tensors of MODEL.gguf, plus one tensor of random blocks per type
  OUT_DIR/quants_ref.gguf  gguf.quants.dequantize of each tensor of quants.gguf, as F32
  OUT_DIR/summary.json     per tensor of quants.gguf: type, how it was made, its RMS error
                           against the real values it came from

Real tensors are quantised with gguf.quants.quantize where the package implements it (F16,
BF16, Q8_0, Q4_0, Q4_1). It has no quantiser for Q4_K, Q5_K or Q6_K (only dequantisers), so
those blocks come from the simple quantisers below: per sub-block scale and minimum from the
range, 6-bit (K4/K5) or 8-bit (K6) scales, rounding to nearest. They are not llama.cpp's
search-based quantisers, but they produce valid blocks of real weights, which is all a check of
the dequantiser needs; the random tensors cover every bit pattern of the packed fields.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize

SEED = 1234
# Real tensors to quantise (dequantised from the model first). ffn_down has 1536 columns, a
# multiple of 256; the others are reshaped to rows of 256 for the K types.
SOURCES = ["blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.1.attn_norm.weight"]
# Model tensors written in full (one of each type the file has); the rest are compared by hash,
# which keeps the reference files small.
FULL_REFS = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.0.attn_norm.weight"]
PYTHON_QUANTISED = [Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1]
K_TYPES = [Q.Q4_K, Q.Q5_K, Q.Q6_K]
# Byte ranges of f16 scale fields in each block, kept finite in random blocks.
SCALE_FIELDS = {Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}
BLOCK_BYTES = {Q.Q8_0: 34, Q.Q4_0: 18, Q.Q4_1: 20, Q.Q4_K: 144, Q.Q5_K: 176, Q.Q6_K: 210}
BLOCK = {Q.Q8_0: 32, Q.Q4_0: 32, Q.Q4_1: 32, Q.Q4_K: 256, Q.Q5_K: 256, Q.Q6_K: 256}


def f16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).reshape(-1, 1).view(np.uint8)


def pack_k_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """8 six-bit scales and minimums per block into 12 bytes (inverse of get_scale_min_k4)."""
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return out


def quantize_k45(x: np.ndarray, bits: int) -> np.ndarray:
    """Q4_K (bits=4) or Q5_K (bits=5) blocks of x, shape (blocks, 256)."""
    top = (1 << bits) - 1
    sub = x.reshape(-1, 8, 32)
    lo = np.minimum(sub.min(axis=2), 0)
    scale = (sub.max(axis=2) - lo) / top
    d = (scale.max(axis=1) / 63).astype(np.float16).astype(np.float32)
    dmin = ((-lo).max(axis=1) / 63).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(0, 63).astype(np.uint8)
        m = np.where(dmin[:, None] > 0, np.rint(-lo / dmin[:, None]), 0).clip(0, 63).astype(np.uint8)
        step = (d[:, None] * sc)[:, :, None]
        shift = (dmin[:, None] * m)[:, :, None]
        q = np.where(step > 0, np.rint((sub + shift) / step), 0).clip(0, top).astype(np.uint8)
    low = q & 15
    qs = (low[:, 0::2, :] | (low[:, 1::2, :] << 4)).reshape(-1, 128)
    parts = [f16_bytes(d), f16_bytes(dmin), pack_k_scales(sc, m)]
    if bits == 5:
        high = (q >> 4) & 1
        qh = np.zeros((x.shape[0], 32), dtype=np.uint8)
        for s in range(8):
            qh |= high[:, s, :] << s
        parts.append(qh)
    return np.concatenate(parts + [qs], axis=1)


def quantize_q6k(x: np.ndarray) -> np.ndarray:
    """Q6_K blocks of x, shape (blocks, 256)."""
    sub = x.reshape(-1, 16, 16)
    scale = np.abs(sub).max(axis=2) / 32
    d = (scale.max(axis=1) / 127).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(-128, 127).astype(np.int8)
        step = (d[:, None] * sc)[:, :, None]
        q = np.where(step != 0, np.rint(sub / step), 0).clip(-32, 31)
    u = (q + 32).astype(np.uint8).reshape(-1, 2, 4, 32)  # half, k, l: element 128a + 32k + l
    ql = np.concatenate([(u[:, :, 0] & 15) | ((u[:, :, 2] & 15) << 4),
                         (u[:, :, 1] & 15) | ((u[:, :, 3] & 15) << 4)], axis=2).reshape(-1, 128)
    qh = ((u[:, :, 0] >> 4) | ((u[:, :, 1] >> 4) << 2) | ((u[:, :, 2] >> 4) << 4)
          | ((u[:, :, 3] >> 4) << 6)).reshape(-1, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), f16_bytes(d)], axis=1)


def quantize_any(values: np.ndarray, qtype: Q) -> np.ndarray:
    """Quantised bytes of a 2-D f32 array, shape (rows, bytes per row)."""
    if qtype in PYTHON_QUANTISED:
        out = quantize(values, qtype)
        return out.view(np.uint8).reshape(values.shape[0], -1)
    rows = values.reshape(-1, 256)
    blocks = quantize_k45(rows, 4 if qtype == Q.Q4_K else 5) if qtype != Q.Q6_K else quantize_q6k(rows)
    return blocks.reshape(values.shape[0], -1)


def random_tensor(qtype: Q, rng: np.random.Generator, rows: int = 8) -> np.ndarray:
    """Random bytes for `rows` rows of 512 elements, scale fields finite."""
    if qtype in (Q.F16, Q.BF16):
        bits = rng.integers(0, 1 << 16, size=(rows, 512), dtype=np.uint16)
        exponent = 0x7C00 if qtype == Q.F16 else 0x7F80
        # No NaN or infinity: NaN payload handling is not what is being checked.
        bits = np.where((bits & exponent) == exponent, bits & ~np.uint16(0x4000), bits)
        return bits.view(np.uint8)
    n_blocks = rows * 512 // BLOCK[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, BLOCK_BYTES[qtype]), dtype=np.uint8)
    for at in SCALE_FIELDS[qtype]:
        raw[:, at:at + 2] = f16_bytes(rng.normal(0, 0.05, size=n_blocks))
    return raw.reshape(rows, -1)


def bits_hash(values: np.ndarray) -> int:
    """Wrapping u64 sum of bits(x_i) * (2i + 1): every odd factor is invertible mod 2^64."""
    bits = np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    weights = np.arange(bits.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int(np.sum(bits * weights, dtype=np.uint64))


def write_gguf(path: Path, tensors: list[tuple[str, np.ndarray, Q]]) -> None:
    writer = GGUFWriter(str(path), "fastlibra-dequant-check")
    for name, data, qtype in tensors:
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    reader = GGUFReader(str(model))
    real = {}
    model_ref, hashes = [], []
    for t in reader.tensors:
        values = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        hashes.append({"name": t.name, "type": t.tensor_type.name, "elements": int(values.size),
                       "bits_hash": str(bits_hash(values))})
        if t.name in FULL_REFS:
            model_ref.append((t.name, values, Q.F32))
        if t.name in SOURCES:
            real[t.name] = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(1, -1)
    write_gguf(out / "model_ref.gguf", model_ref)
    (out / "model_ref.json").write_text(json.dumps(hashes, indent=1))
    del model_ref

    rng = np.random.default_rng(SEED)
    quants, refs, summary = [], [], []
    for qtype in PYTHON_QUANTISED + K_TYPES:
        for src, values in real.items():
            if qtype in K_TYPES and values.size % 256 != 0:
                continue
            if qtype in K_TYPES and values.shape[1] % 256 != 0:
                values = values.reshape(-1, 256)
            data = quantize_any(values, qtype)
            back = dequantize(data, qtype).reshape(values.shape)
            rms = float(np.sqrt(np.mean((back - values) ** 2)))
            how = "gguf.quants.quantize" if qtype in PYTHON_QUANTISED else "dequant.py quantiser"
            name = f"{qtype.name}.real.{src}"
            quants.append((name, data, qtype))
            refs.append((name, np.asarray(back, dtype=np.float32), Q.F32))
            summary.append({"name": name, "type": qtype.name, "made_by": how, "rms_error": rms,
                            "rms_value": float(np.sqrt(np.mean(values ** 2)))})
        data = random_tensor(qtype, rng)
        name = f"{qtype.name}.random"
        back = np.asarray(dequantize(data, qtype), dtype=np.float32)
        quants.append((name, data, qtype))
        refs.append((name, back.reshape(data.shape[0], -1), Q.F32))
        summary.append({"name": name, "type": qtype.name, "made_by": "random blocks"})
    write_gguf(out / "quants.gguf", quants)
    write_gguf(out / "quants_ref.gguf", refs)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"dequant.py: {len(reader.tensors)} model tensors, {len(quants)} quantised tensors -> {out}")


if __name__ == "__main__":
    main()
