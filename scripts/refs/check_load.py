"""Check that llama.cpp loads an F32 GGUF made by make_f32_gguf.py and that it computes the same
model as the Q4_1 file it came from.

Usage: python check_load.py F32.gguf [Q4_1.gguf]   (default Q4_1: the one in the model folder)

Both files run one short prompt (common.load settings); the check fails unless llama.cpp loads
the F32 file, its last-position logits are finite, and they correlate
with the Q4_1 file's above 0.99 (they differ only by llama.cpp's 8-bit quantisation of the
activations in Q4_1 products). The figures are printed.
"""

from __future__ import annotations

# This folder goes last on sys.path, so a file here named like a standard module (tokenize.py)
# cannot shadow it.
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _HERE] + [_HERE]
_sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import sys
from pathlib import Path

import numpy as np

import refs_common as common

PROMPT = b"The lighthouse on the headland turns its lamp every evening, and"


def logits_of(path: Path) -> np.ndarray:
    llm = common.load(path, 128)
    llm.eval([int(t) for t in llm.tokenize(PROMPT, add_bos=False)])
    return common.last_logits(llm)


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    f32 = Path(sys.argv[1])
    q4 = Path(sys.argv[2]) if len(sys.argv) == 3 else common.model_path(common.Q4_NAME)
    a, b = logits_of(f32), logits_of(q4)
    if not np.all(np.isfinite(a)):
        sys.exit(f"check_load: {f32}: llama.cpp gives non-finite logits")
    corr = float(np.corrcoef(a, b)[0, 1])
    diff = float(np.max(np.abs(a - b)))
    print(f"check_load: {f32.name} loads in llama.cpp; logits vs {q4.name}: correlation "
          f"{corr:.5f}, max |diff| {diff:.3f}, argmax {int(a.argmax())} / {int(b.argmax())}")
    if corr < 0.99:
        sys.exit(f"check_load: {f32}: logits do not follow {q4.name} (correlation {corr:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
