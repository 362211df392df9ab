"""llama.cpp's perplexity of the Q4_1 file on scripts/refs/data/perplexity.txt.

Usage: python perplexity_ref.py [--force]   (writes perplexity_q4_1.json into the refs folder)

Method (fastlibra computes it the same way; docs/peers.md):
  1. tokens = llama.cpp's tokenisation of the whole UTF-8 text, no BOS added (the file's
     tokenizer.ggml.add_bos_token is false), special tokens not parsed;
  2. the first floor(len / 512) * 512 tokens are cut into chunks of 512 (the rest is unused);
  3. each chunk is evaluated from an empty KV cache at positions 0..511 in one batch of 512,
     with the logits of every position;
  4. in each chunk, position j (0..510) scores token j + 1: nll = -log_softmax(logits_j)[t_j+1],
     in float64 from the float32 logits; each chunk's first token is context only;
  5. perplexity = exp(sum of nll / number scored), number scored = chunks * 511.
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

CHUNK = 512
MIN_TOKENS = 2048
TEXT = common.DATA / "perplexity.txt"


def nll_of_chunk(llm, chunk: list[int]) -> np.ndarray:
    """The negative log-likelihoods of chunk[1:], each given the tokens before it."""
    llm.reset()
    llm.eval(chunk)
    logits = np.asarray(llm.scores[: len(chunk)], dtype=np.float64)
    m = logits.max(axis=1, keepdims=True)
    logz = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    nxt = np.asarray(chunk[1:])
    return logz[:-1] - logits[np.arange(len(chunk) - 1), nxt]


def run(force: bool) -> int:
    model = common.model_path(common.Q4_NAME)
    out = common.refs_dir() / "perplexity_q4_1.json"
    method = {"chunk": CHUNK, "n_ctx": CHUNK, "n_batch": CHUNK, "add_bos": False,
              "scored": "positions 0..510 of each chunk score tokens 1..511",
              "threads": 1, "kv_type": "f32", "flash_attn": False}
    key = common.inputs_hash([Path(__file__), common.HERE / "refs_common.py", TEXT, model], method)
    if not force and common.is_current(out, key):
        print(f"refs: {out.name} is current")
        return 0
    llm = common.load(model, CHUNK, logits_all=True)
    text = TEXT.read_bytes()
    tokens = [int(t) for t in llm.tokenize(text, add_bos=False, special=False)]
    n_chunks = len(tokens) // CHUNK
    if n_chunks * CHUNK < MIN_TOKENS:
        sys.exit(f"refs: {TEXT.name} gives {len(tokens)} tokens, fewer than {MIN_TOKENS} usable")
    nll, per_chunk = [], []
    for c in range(n_chunks):
        part = nll_of_chunk(llm, tokens[c * CHUNK:(c + 1) * CHUNK])
        nll.append(part)
        per_chunk.append(float(np.exp(part.mean())))
        print(f"refs: perplexity chunk {c}: {per_chunk[-1]:.4f}")
    all_nll = np.concatenate(nll)
    doc = common.header("perplexity_q4_1", model, key, method)
    doc.update({
        "text": TEXT.name,
        "text_sha256": common.sha256_file(TEXT),
        "n_tokens": len(tokens),
        "tokens": tokens,
        "n_chunks": n_chunks,
        "n_scored": int(all_nll.size),
        "nll_sum": float(all_nll.sum()),
        "perplexity": float(np.exp(all_nll.mean())),
        "chunk_perplexity": per_chunk,
        "nll": [float(x) for x in all_nll],
    })
    common.write_json(out, doc)
    print(f"refs: wrote {out}: perplexity {doc['perplexity']:.4f} over {doc['n_scored']} tokens")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="recompute even when current")
    return run(ap.parse_args().force)


if __name__ == "__main__":
    sys.exit(main())
