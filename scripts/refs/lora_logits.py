"""llama.cpp's last-position logits with a given PEFT adapter, converted to a GGUF LoRA.

Usage: python lora_logits.py PEFT_DIR OUT_DIR [--prompts N]
  Converts PEFT_DIR (for example one written by `fastlibra adapters synth --model PATH`) into
  OUT_DIR/lora.gguf with peft_to_gguf_lora.py's conversion (against the F32 model file), loads
  the F32 file in llama.cpp with that LoRA at scale 1.0 (llama.cpp multiplies by alpha / rank),
  and evaluates the first N (default 4) of the 8 fixed prompts (scripts/refs/data/prompts.json),
  each from an empty KV cache in one batch, with the settings of refs_common.load.

Writes OUT_DIR/lora_logits.json (the header of every reference file, "kind": "lora_logits",
"prompts": [{"name", "ids"}], "n_vocab", "logits": {"file", "dtype": "f32le", "shape":
[N, n_vocab]}) and OUT_DIR/lora_logits.bin. Not run by all.sh: kernels' and bench's tests call
it on the adapters they write (a few seconds).
"""

from __future__ import annotations

import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _HERE] + [_HERE]
_sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse
import sys
from pathlib import Path

import numpy as np

import peft_io
import peft_to_gguf_lora
import refs_common as common

N_CTX = 512


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peft_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--prompts", type=int, default=4, help="how many of the 8 prompts")
    args = ap.parse_args()
    model = common.model_path(common.F32_NAME)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    lora = args.out_dir / "lora.gguf"
    try:
        peft_to_gguf_lora.convert(args.peft_dir, lora, model)
    except peft_io.PeftError as e:
        sys.exit(f"lora_logits: {e}")
    prompts = common.load_prompts()[: args.prompts]
    llm = common.load(model, N_CTX, lora_path=lora)
    rows = []
    for p in prompts:
        llm.reset()
        llm.eval(p["ids"])
        rows.append(common.last_logits(llm))
    method = {"n_ctx": N_CTX, "lora_scale": 1.0, "threads": 1, "kv_type": "f32",
              "flash_attn": False, "seed": common.SEED}
    key = common.inputs_hash([Path(__file__), lora, model], method)
    doc = common.header("lora_logits", model, key, method)
    doc["lora"] = {"gguf": lora.name, "peft_dir": str(args.peft_dir)}
    doc["n_vocab"] = int(llm.n_vocab())
    doc["prompts"] = [{"name": p["name"], "ids": p["ids"]} for p in prompts]
    doc["logits"] = common.write_f32(args.out_dir / "lora_logits.bin", np.stack(rows))
    common.write_json(args.out_dir / "lora_logits.json", doc)
    print(f"lora_logits: wrote {args.out_dir / 'lora_logits.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
