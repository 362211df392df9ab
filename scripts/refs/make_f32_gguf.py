"""Write an all-F32 copy of a GGUF file with the `gguf` package (docs/peers.md).

Every tensor is dequantised to F32 with `gguf.quants.dequantize`; every metadata key is copied
unchanged except `general.file_type`, which becomes ALL_F32 (0). The tensor order, names and
shapes stay those of the input, so the F32 file is the same model without quantisation: the
reference that fastlibra's F32 logits are compared against.

Usage: python make_f32_gguf.py INPUT.gguf OUTPUT.gguf
The output is written to OUTPUT.gguf.tmp and renamed when complete.
"""

from __future__ import annotations

# This folder goes last on sys.path, so a file here named like a standard module (tokenize.py)
# cannot shadow it.
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _HERE] + [_HERE]
_sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import os
import sys

import gguf
import numpy as np


def copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    """Copy every key/value of `reader` to `writer`, with general.file_type set to ALL_F32."""
    for field in reader.fields.values():
        # GGUF.* are the header's virtual fields; the writer adds general.architecture itself.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(gguf.LlamaFileType.ALL_F32)
        writer.add_key_value(field.name, value, vtype, sub_type=sub)


def f32_tensor(tensor: gguf.ReaderTensor) -> np.ndarray:
    """The tensor as an F32 array in GGUF's row-major layout (numpy shape = reversed dims)."""
    data = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    shape = tuple(int(d) for d in reversed(tensor.shape))
    out = np.ascontiguousarray(data, dtype=np.float32).reshape(shape)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"tensor {tensor.name}: non-finite values after dequantisation")
    return out


def convert(src: str, dst: str) -> None:
    """Write the F32 copy of `src` to `dst` (atomically, through a .tmp file)."""
    reader = gguf.GGUFReader(src, "r")
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    tmp = dst + ".tmp"
    writer = gguf.GGUFWriter(tmp, arch=arch, endianess=reader.endianess)
    align = reader.fields.get(gguf.Keys.General.ALIGNMENT)
    if align is not None:
        writer.data_alignment = int(align.contents())
    copy_metadata(reader, writer)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, f32_tensor(tensor), raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    check(src, tmp)
    os.replace(tmp, dst)


def check(src: str, dst: str) -> None:
    """Re-read `dst`: same tensor names and shapes as `src`, all F32, same metadata keys."""
    a, b = gguf.GGUFReader(src, "r"), gguf.GGUFReader(dst, "r")
    if [t.name for t in a.tensors] != [t.name for t in b.tensors]:
        raise ValueError(f"{dst}: tensor names differ from {src}")
    for ta, tb in zip(a.tensors, b.tensors):
        if list(ta.shape) != list(tb.shape) or tb.tensor_type != gguf.GGMLQuantizationType.F32:
            raise ValueError(f"{dst}: tensor {tb.name} has shape {list(tb.shape)} type {tb.tensor_type.name}")
    missing = set(a.fields) - set(b.fields)
    if missing:
        raise ValueError(f"{dst}: metadata keys lost: {sorted(missing)}")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    convert(sys.argv[1], sys.argv[2])
    print(f"make_f32_gguf: wrote {sys.argv[2]} ({os.path.getsize(sys.argv[2]) / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
