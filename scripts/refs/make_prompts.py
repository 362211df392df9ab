"""Write scripts/refs/data/prompts.json: the 8 fixed prompts of the logits references, as token ids.

Usage: python make_prompts.py   (run once; the committed prompts.json is the input from then on)

The ids come from llama.cpp's tokenisation with the Q4_1 file's vocabulary (no BOS; special
tokens parsed only in the chat prompt). The texts are kept beside the ids for readers; the
references and the Rust tests use the ids alone, so tokenisation is not part of the logits
comparison.
"""

from __future__ import annotations

# This folder goes last on sys.path, so a file here named like a standard module (tokenize.py)
# cannot shadow it.
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _HERE] + [_HERE]
_sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import json
import sys

import refs_common as common

CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWhat is the boiling point of water at sea level?"
        "<|im_end|>\n<|im_start|>assistant\n")
PROSE = "\n\n".join((common.DATA / "perplexity.txt").read_text().split("\n\n")[1:3])
PROMPTS = [
    ("one_token", "The", False),
    ("sentence", "The capital of France is", False),
    ("chat", CHAT, True),
    ("code", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n'
             "        return n\n", False),
    ("digits", "Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,", False),
    ("prose", PROSE, False),
    ("mixed", "Translate to French: The weather is nice today. 天气很好。 🌞  ->", False),
    ("json", '{"name": "lighthouse", "height_m": 34, "lit": true, "flashes": [', False),
]


def main() -> int:
    llm = common.load(common.model_path(common.Q4_NAME), 64)
    out = []
    for name, text, special in PROMPTS:
        ids = [int(t) for t in llm.tokenize(text.encode(), add_bos=False, special=special)]
        out.append({"name": name, "text": text, "special": special, "ids": ids})
        print(f"make_prompts: {name}: {len(ids)} tokens")
    doc = {"about": "8 fixed prompts as token ids (scripts/refs/make_prompts.py); the text is "
                    "for readers only", "prompts": out}
    (common.DATA / "prompts.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
