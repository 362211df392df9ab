"""Check the LoRA reference independently: a numpy forward pass of the model in Hugging Face's
convention, with the PEFT adapter applied as PEFT applies it, against llama.cpp with the GGUF
LoRA that peft_to_gguf_lora.py wrote.

Usage: python check_lora.py [--peft DIR] [--gguf LORA.gguf] [--prompts N] [--force]
  defaults: the refs folder's lora/peft-r8 and lora/lora.gguf, the first 4 fixed prompts.
  Writes the figures to lora_check.json in the refs folder; skipped when that is current.

The numpy model reads the F32 GGUF, undoes the HF-to-GGUF Q/K row permutation (so its weights
are in Hugging Face order), applies RoPE in Hugging Face's rotate-half form, and adds
(alpha / r) · B (A x) of the PEFT folder, unpermuted, to each targeted projection; float64
throughout. It prints the max |difference| of last-position logits against llama.cpp
(1) without an adapter, (2) with the adapter, and (3) with the adapter converted *without* the
Q/K permutation (a control that must be clearly worse). It fails unless (1) and (2) are within
1e-2 and (3) is at least 10 times (2). The permutation and the alpha / rank scaling of the
converter are what this checks; a mistake in either makes llama.cpp's LoRA references wrong.
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
import tempfile
from pathlib import Path

import gguf
import numpy as np

import peft_io
import peft_to_gguf_lora
import refs_common as common

PROJ = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
        "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of llama.cpp's LlamaModel.permute on the rows of `w`."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


class NumpyLlama:
    """A float64 Llama forward pass in Hugging Face's convention, from a GGUF file."""

    def __init__(self, path: Path):
        r = gguf.GGUFReader(str(path), "r")
        f = lambda k: r.fields[k].contents()  # noqa: E731
        self.n_layer = int(f("llama.block_count"))
        self.n_head = int(f("llama.attention.head_count"))
        self.n_kv = int(f("llama.attention.head_count_kv"))
        self.eps = float(f("llama.attention.layer_norm_rms_epsilon"))
        self.theta = float(f("llama.rope.freq_base"))
        self.w = {}
        for t in r.tensors:
            arr = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
            self.w[t.name] = arr.reshape(tuple(int(d) for d in reversed(t.shape)))
        self.hd = self.w["token_embd.weight"].shape[1] // self.n_head
        for i in range(self.n_layer):
            self.w[f"blk.{i}.attn_q.weight"] = unpermute(self.w[f"blk.{i}.attn_q.weight"], self.n_head)
            self.w[f"blk.{i}.attn_k.weight"] = unpermute(self.w[f"blk.{i}.attn_k.weight"], self.n_kv)

    def norm(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x):  # x: (tokens, heads, hd), rotate-half
        n, half = x.shape[0], self.hd // 2
        inv = self.theta ** (-np.arange(half, dtype=np.float64) * 2 / self.hd)
        ang = np.arange(n)[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    def proj(self, x, i, t, lora):
        y = x @ self.w[f"blk.{i}.{PROJ[t]}.weight"].T
        if lora and (i, t) in lora.pairs:
            a, b = lora.pairs[(i, t)]
            y = y + (lora.alpha / lora.rank) * ((x @ a.T.astype(np.float64)) @ b.T.astype(np.float64))
        return y

    def logits(self, ids: list[int], lora: peft_io.Peft | None) -> np.ndarray:
        x = self.w["token_embd.weight"][ids]
        n, g = len(ids), self.n_head // self.n_kv
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(self.n_layer):
            h = self.norm(x, self.w[f"blk.{i}.attn_norm.weight"])
            q = self.rope(self.proj(h, i, "q", lora).reshape(n, self.n_head, self.hd))
            k = self.rope(self.proj(h, i, "k", lora).reshape(n, self.n_kv, self.hd))
            v = self.proj(h, i, "v", lora).reshape(n, self.n_kv, self.hd)
            k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(self.hd) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            att = np.einsum("hqk,khd->qhd", p, v).reshape(n, -1)
            x = x + self.proj(att, i, "o", lora)
            h = self.norm(x, self.w[f"blk.{i}.ffn_norm.weight"])
            gate = self.proj(h, i, "gate", lora)
            x = x + self.proj(gate / (1 + np.exp(-gate)) * self.proj(h, i, "up", lora), i, "down", lora)
        h = self.norm(x[-1], self.w["output_norm.weight"])
        out = self.w.get("output.weight", self.w["token_embd.weight"])
        return h @ out.T


def llama_cpp_logits(model: Path, lora: Path | None, prompts) -> list[np.ndarray]:
    llm = common.load(model, 512, lora_path=lora)
    rows = []
    for p in prompts:
        llm.reset()
        llm.eval(p["ids"])
        rows.append(common.last_logits(llm).astype(np.float64))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    refs = common.refs_dir()
    ap.add_argument("--peft", type=Path, default=refs / "lora" / "peft-r8")
    ap.add_argument("--gguf", type=Path, default=refs / "lora" / "lora.gguf")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--force", action="store_true", help="check again even when current")
    args = ap.parse_args()
    model = common.model_path(common.F32_NAME)
    out = refs / "lora_check.json"
    here = common.HERE
    inputs = [Path(__file__), here / "refs_common.py", here / "peft_io.py",
              here / "peft_to_gguf_lora.py", common.DATA / "prompts.json", model, args.gguf]
    inputs += sorted(p for p in args.peft.iterdir() if p.is_file())
    key = common.inputs_hash(inputs, {"prompts": args.prompts})
    if not args.force and common.is_current(out, key):
        print(f"refs: {out.name} is current")
        return 0
    prompts = common.load_prompts()[: args.prompts]
    adapter = peft_io.read_peft(args.peft)
    ref = NumpyLlama(model)
    with tempfile.TemporaryDirectory() as tmp:
        wrong = Path(tmp) / "no-permutation.gguf"
        saved = peft_to_gguf_lora.permute_rows
        peft_to_gguf_lora.permute_rows = lambda b, n_head: b  # the control: no Q/K permutation
        try:
            peft_to_gguf_lora.convert(args.peft, wrong, model)
        finally:
            peft_to_gguf_lora.permute_rows = saved
        runs = {"base": llama_cpp_logits(model, None, prompts),
                "lora": llama_cpp_logits(model, args.gguf, prompts),
                "lora_unpermuted": llama_cpp_logits(model, wrong, prompts)}
    worst = {k: 0.0 for k in runs}
    for j, p in enumerate(prompts):
        mine = {"base": ref.logits(p["ids"], None)}
        mine["lora"] = mine["lora_unpermuted"] = ref.logits(p["ids"], adapter)
        diffs = {k: float(np.abs(runs[k][j] - mine[k]).max()) for k in runs}
        for k, d in diffs.items():
            worst[k] = max(worst[k], d)
        print(f"check_lora: {p['name']:>10}: max |numpy - llama.cpp| base {diffs['base']:.2e}, "
              f"lora {diffs['lora']:.2e}, lora without Q/K permutation {diffs['lora_unpermuted']:.2e}")
    ok = worst["base"] < 1e-2 and worst["lora"] < 1e-2 and worst["lora_unpermuted"] > 10 * worst["lora"]
    print(f"check_lora: {'ok' if ok else 'FAILED'}: worst base {worst['base']:.2e}, lora "
          f"{worst['lora']:.2e}, control {worst['lora_unpermuted']:.2e}")
    if not ok:
        return 1
    doc = common.header("lora_check", model, key, {"prompts": [p["name"] for p in prompts],
                        "reference": "numpy float64, Hugging Face convention"})
    doc["max_abs_diff"] = worst
    common.write_json(out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
