"""Write a random PEFT LoRA adapter shaped for a llama GGUF base, with the `safetensors` package.

Usage: python synth_peft.py OUT_DIR [--base BASE.gguf] [--rank 8] [--alpha 16] [--seed 7]
                            [--targets q,k,v,o,gate,up,down]

It stands in for `fastlibra adapters synth --model PATH` until that exists: the same PEFT layout
(`adapter_config.json` as PEFT writes it, tensors
`base_model.model.model.layers.{i}.{self_attn,mlp}.{q,…,down}_proj.lora_{A,B}.weight`, A rank x
in, B out x rank, in Hugging Face row order) and the same distributions (A uniform in
±sqrt(3 / in), B uniform in ±0.01·sqrt(3)), but numpy's PCG64 stream, stored as F32.
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
import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import save_file

import refs_common as common
import peft_io

DIMS_OF = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
           "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


def synth(out: Path, base: Path, rank: int, alpha: float, seed: int, targets: list[str]) -> None:
    """Write the adapter folder `out`."""
    r = gguf.GGUFReader(str(base), "r")
    n_layer = int(r.fields["llama.block_count"].contents())
    shapes = {t.name: (int(t.shape[1]), int(t.shape[0])) for t in r.tensors if len(t.shape) == 2}
    rng = np.random.default_rng(seed)
    tensors = {}
    b_bound = 0.01 * np.sqrt(3.0)
    for layer in range(n_layer):
        for t in targets:
            n_out, n_in = shapes[f"blk.{layer}.{DIMS_OF[t]}.weight"]
            prefix = f"base_model.model.model.layers.{layer}.{peft_io.MODULES[t]}.{t}_proj"
            a_bound = np.sqrt(3.0 / n_in)
            tensors[f"{prefix}.lora_A.weight"] = rng.uniform(-a_bound, a_bound, (rank, n_in)).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = rng.uniform(-b_bound, b_bound, (n_out, rank)).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / peft_io.WEIGHTS_FILE), metadata={"format": "pt"})
    config = {
        "base_model_name_or_path": base.name, "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "lora_alpha": alpha, "lora_dropout": 0.0, "peft_type": "LORA",
        "r": rank, "target_modules": [f"{t}_proj" for t in targets], "task_type": "CAUSAL_LM",
        "use_dora": False, "use_rslora": False,
    }
    (out / peft_io.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--base", type=Path)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down")
    args = ap.parse_args()
    targets = [t.strip() for t in args.targets.split(",")]
    bad = [t for t in targets if t not in DIMS_OF]
    if bad:
        sys.exit(f"synth_peft: unknown target {bad[0]!r}; valid: {', '.join(DIMS_OF)}")
    synth(args.out, args.base or common.model_path(common.Q4_NAME), args.rank, args.alpha,
          args.seed, targets)
    print(f"synth_peft: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
