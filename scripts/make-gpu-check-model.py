"""Write a small GGUF for the GPU check: the real model's first layers, unchanged (docs/cuda.md).

A GPU machine reaches nothing outside itself, and what a run carries there is capped at 64 MiB,
so the SmolLM2 file (98 MB as Q4_1, 540 MB as F32) cannot go with the binary. This keeps the
embeddings, the first N decoder layers and the final norm of INPUT, with their tensors copied
byte for byte in their own types (Q4_1, Q8_0, F32), and every metadata key (tokenizer and chat
template included) except `<arch>.block_count`, which becomes N. The result is a real
checkpoint of the same widths, vocabulary and tokenizer with fewer layers: `cuda check --model`
compares the GPU's logits on it with the CPU path's, as it does on the whole file. It is not
the published model, so its text is not meaningful; only the two paths' agreement is checked.

Usage: python scripts/make-gpu-check-model.py INPUT.gguf OUTPUT.gguf [LAYERS]   (default 4)
The output is written to OUTPUT.gguf.tmp and renamed when complete.
"""

from __future__ import annotations

import os
import re
import sys

import gguf

LAYER = re.compile(r"^blk\.(\d+)\.")


def kept(name: str, layers: int) -> bool:
    """Whether tensor `name` belongs in the cut: not a decoder layer from `layers` on."""
    m = LAYER.match(name)
    return m is None or int(m.group(1)) < layers


def shrink(src: str, dst: str, layers: int) -> None:
    """Write `src` cut to its first `layers` decoder layers to `dst` (atomically)."""
    reader = gguf.GGUFReader(src, "r")
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    count_key = f"{arch}.block_count"
    if count_key not in reader.fields:
        raise ValueError(f"{src}: no {count_key} key; is this a Llama-family GGUF?")
    total = int(reader.fields[count_key].contents())
    if not 1 <= layers <= total:
        raise ValueError(f"{src}: asked for {layers} layers of {total}")
    tmp = dst + ".tmp"
    writer = gguf.GGUFWriter(tmp, arch=arch, endianess=reader.endianess)
    align = reader.fields.get(gguf.Keys.General.ALIGNMENT)
    if align is not None:
        writer.data_alignment = int(align.contents())
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = layers if field.name == count_key else field.contents()
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    count = 0
    for tensor in reader.tensors:
        if not kept(tensor.name, layers):
            continue
        # The stored bytes and the shape GGUF's reader gives them; a quantised type keeps
        # its blocks as they are.
        writer.add_tensor(
            tensor.name,
            tensor.data,
            raw_shape=tensor.data.shape,
            raw_dtype=tensor.tensor_type,
        )
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    check(src, tmp, layers)
    os.replace(tmp, dst)
    print(f"make-gpu-check-model: {dst}: {count} tensors, {layers} of {total} layers, "
          f"{os.path.getsize(dst) / 2**20:.1f} MiB")


def check(src: str, dst: str, layers: int) -> None:
    """Re-read `dst`: every kept tensor has the same type, shape and bytes as in `src`."""
    a, b = gguf.GGUFReader(src, "r"), gguf.GGUFReader(dst, "r")
    wanted = {t.name: t for t in a.tensors if kept(t.name, layers)}
    got = {t.name: t for t in b.tensors}
    if set(wanted) != set(got):
        raise ValueError(f"{dst}: tensors differ from the {len(wanted)} expected")
    for name, ta in wanted.items():
        tb = got[name]
        if (ta.tensor_type != tb.tensor_type or list(ta.shape) != list(tb.shape)
                or ta.data.tobytes() != tb.data.tobytes()):
            raise ValueError(f"{dst}: tensor {name} was not copied unchanged")


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        layers = int(sys.argv[3]) if len(sys.argv) == 4 else 4
        shrink(sys.argv[1], sys.argv[2], layers)
    except (ValueError, OSError) as err:
        print(f"make-gpu-check-model: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
