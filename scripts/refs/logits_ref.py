"""llama.cpp's last-position logits and 32 greedy tokens on the F32 file for the 8 fixed prompts.

Usage: python logits_ref.py [--lora ADAPTER.gguf --peft DIR] [--force]
  without --lora: writes logits_f32.json + logits_f32.bin into the refs folder;
  with --lora:    the same with the GGUF LoRA applied at scale 1.0 (llama.cpp multiplies by
                  alpha / rank itself), into logits_f32_lora.json + logits_f32_lora.bin; --peft
                  names the PEFT folder the GGUF LoRA was converted from (recorded, and hashed
                  as an input).

Method, per prompt (each from an empty KV cache, common.load settings, n_ctx 512): evaluate the
prompt's token ids in one batch; the logits of its last position are the reference row; then
32 greedy steps: argmax of the current logits (lowest id on a tie), evaluate that one token,
repeat. Schema: docs/peers.md.
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
import sys
from pathlib import Path

import numpy as np

import refs_common as common

N_CTX = 512
GREEDY_STEPS = 32
TOP_N = 8


def run(lora: Path | None, peft: Path | None, force: bool) -> int:
    model = common.model_path(common.F32_NAME)
    stem = "logits_f32_lora" if lora else "logits_f32"
    out = common.refs_dir() / f"{stem}.json"
    inputs = [Path(__file__), common.HERE / "refs_common.py", common.DATA / "prompts.json", model]
    if lora:
        inputs.append(lora)
        if peft:
            inputs += sorted(p for p in peft.iterdir() if p.is_file())
    method = {"n_ctx": N_CTX, "greedy_steps": GREEDY_STEPS, "lora_scale": 1.0 if lora else None,
              "threads": 1, "kv_type": "f32", "flash_attn": False, "seed": common.SEED}
    key = common.inputs_hash(inputs, method)
    if not force and common.is_current(out, key):
        print(f"refs: {out.name} is current")
        return 0

    prompts = common.load_prompts()
    llm = common.load(model, N_CTX, lora_path=lora)
    rows, entries = [], []
    for p in prompts:
        ids = p["ids"]
        if len(ids) + GREEDY_STEPS > N_CTX:
            sys.exit(f"refs: prompt {p['name']} is too long for n_ctx {N_CTX}")
        logits, tokens, margins = common.greedy(llm, ids, GREEDY_STEPS)
        rows.append(logits)
        top = np.argsort(-logits, kind="stable")[:TOP_N]
        entries.append({
            "name": p["name"],
            "ids": ids,
            "argmax": int(top[0]),
            "top": [[int(i), float(logits[i])] for i in top],
            "greedy": tokens,
            "greedy_margin": margins,
            "greedy_text": llm.detokenize(tokens).decode("utf-8", "replace"),
        })
        print(f"refs: {stem} {p['name']}: {len(ids)} tokens, argmax {int(top[0])}, "
              f"greedy {llm.detokenize(tokens[:8]).decode('utf-8', 'replace')!r}…")
    doc = common.header(stem, model, key, method)
    if lora:
        doc["lora"] = {"gguf": lora.name, "gguf_sha256": common.sha256_file(lora),
                       "peft_dir": peft.name if peft else None}
    doc["n_vocab"] = int(llm.n_vocab())
    doc["logits"] = common.write_f32(out.with_suffix(".bin"), np.stack(rows))
    doc["prompts"] = entries
    common.write_json(out, doc)
    print(f"refs: wrote {out}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lora", type=Path, help="GGUF LoRA adapter to apply")
    ap.add_argument("--peft", type=Path, help="the PEFT folder the GGUF LoRA came from")
    ap.add_argument("--force", action="store_true", help="recompute even when current")
    args = ap.parse_args()
    return run(args.lora, args.peft, args.force)


if __name__ == "__main__":
    sys.exit(main())
