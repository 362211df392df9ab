"""Convert a PEFT LoRA folder into a GGUF LoRA adapter for llama.cpp, with the `gguf` package.

Usage: python peft_to_gguf_lora.py PEFT_DIR OUT.gguf [--base BASE.gguf]
  --base  the llama-architecture GGUF the adapter is for (default: the Q4_1 file in the model
          folder); its head counts drive the Q/K permutation and its tensor shapes are checked.

What it writes, as llama.cpp's convert_lora_to_gguf.py does for a llama model:
  general.architecture = llama, general.type = adapter, adapter.type = lora,
  adapter.lora.alpha = lora_alpha (llama.cpp scales by alpha / rank times the user scale);
  per layer i and projection: blk.{i}.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,
  ffn_down}.weight.lora_a (PEFT's A, rank x in) and .lora_b (PEFT's B, out x rank), F32.
  PEFT adapters are in Hugging Face's row order; the GGUF base's attn_q / attn_k rows were
  permuted by the HF-to-GGUF conversion (RoPE pairs interleaved), so lora_b of q and k gets the
  same permutation: rows viewed as (heads, 2, head_dim / 2) are swapped to (heads, head_dim / 2,
  2), with heads = head_count for q and head_count_kv for k. A and the other projections are
  copied unchanged.
"""

from __future__ import annotations

# This folder goes last on sys.path, so a file here named like a standard module (tokenize.py)
# cannot shadow it.
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _HERE] + [_HERE]
_sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse
import os
import sys
from pathlib import Path

import gguf
import numpy as np

import refs_common as common
import peft_io

GGUF_NAMES = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
              "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


def permute_rows(b: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute on the rows of `b` (out x rank)."""
    out = b.shape[0]
    if out % (2 * n_head):
        raise ValueError(f"{out} rows do not split into {n_head} heads of pairs")
    return (b.reshape(n_head, 2, out // n_head // 2, b.shape[1])
            .swapaxes(1, 2).reshape(b.shape))


def base_info(base: Path) -> tuple[str, int, int, int, dict[str, tuple[int, int]]]:
    """(architecture, block_count, head_count, head_count_kv, {tensor: (out, in)}) of `base`."""
    r = gguf.GGUFReader(str(base), "r")
    f = lambda k: r.fields[k].contents() if k in r.fields else None  # noqa: E731
    arch = f("general.architecture")
    if arch != "llama":
        raise SystemExit(f"{base}: general.architecture is {arch!r}; only 'llama' is supported")
    shapes = {t.name: (int(t.shape[1]), int(t.shape[0])) for t in r.tensors if len(t.shape) == 2}
    return (arch, int(f("llama.block_count")), int(f("llama.attention.head_count")),
            int(f("llama.attention.head_count_kv")), shapes)


def convert(peft_dir: Path, out: Path, base: Path) -> None:
    """Write the GGUF LoRA of `peft_dir` for `base` to `out` (atomically)."""
    adapter = peft_io.read_peft(peft_dir)
    arch, n_layer, n_head, n_head_kv, shapes = base_info(base)
    tmp = out.with_name(out.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), arch=arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, adapter.alpha)
    w.add_name(f"LoRA r{adapter.rank} from {peft_dir.name}")
    for (layer, target), (a, b) in adapter.pairs.items():
        if layer >= n_layer:
            raise SystemExit(f"{peft_dir}: layer {layer} but {base.name} has {n_layer} layers")
        name = f"blk.{layer}.{GGUF_NAMES[target]}.weight"
        want = shapes.get(name)
        if want is None or (b.shape[0], a.shape[1]) != want:
            raise SystemExit(f"{peft_dir}: layer {layer} {target}_proj is {b.shape[0]}x{a.shape[1]}"
                             f", {base.name} {name} is {want}")
        if target == "q":
            b = permute_rows(b, n_head)
        elif target == "k":
            b = permute_rows(b, n_head_kv)
        w.add_tensor(name + ".lora_a", np.ascontiguousarray(a, np.float32))
        w.add_tensor(name + ".lora_b", np.ascontiguousarray(b, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peft_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--base", type=Path, help="base GGUF (default: the Q4_1 model file)")
    args = ap.parse_args()
    base = args.base or common.model_path(common.Q4_NAME)
    try:
        convert(args.peft_dir, args.out, base)
    except peft_io.PeftError as e:
        sys.exit(f"peft_to_gguf_lora: {e}")
    print(f"peft_to_gguf_lora: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
