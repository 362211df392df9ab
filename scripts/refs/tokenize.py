"""llama.cpp's token ids for the tokenizer fixture (docs/peers.md).

Tokenises kernels/tests/data/tokenizer_mixed.txt (a few KiB of English, code, digits,
whitespace runs, emoji, CJK and other scripts) with llama.cpp's own tokenizer, loaded from the
SmolLM2 GGUF with `vocab_only=True`, and writes `tokenize.json` into the refs folder:

  {"schema_version", "llama_version", "inputs_sha256", "model",
   "cases": [{"name", "text", "add_special", "parse_special", "ids", "detokenized"}]}

Cases: the whole fixture, each of its lines, and a ChatML conversation with control tokens.
Every case is tokenised with `add_special=True, parse_special=True`, which is what
`Tokenizer::encode(text, true)` does (special tokens in the text are recognised; BOS is added
only where the file's `tokenizer.ggml.add_bos_token` says so). `detokenized` is llama.cpp's
`detokenize(ids)` decoded as UTF-8. kernels/tests/tokenizer_llama_cpp.rs compares against it.

Usage: python -P scripts/refs/tokenize.py [--out DIR] [--model PATH] [--force]
  (-P: this file's name must not shadow Python's own `tokenize` module.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))
import refs_common as rc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "kernels" / "tests" / "data" / "tokenizer_mixed.txt"
OUT_NAME = "tokenize.json"
CHAT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n<|im_start|>user\nWrite 3 haiku about 東京 and 🍣, please.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def cases(text: str) -> list[tuple[str, str]]:
    """(name, text) pairs: the whole fixture, each non-empty line, and the chat prompt."""
    out = [("mixed", text)]
    out += [(f"line-{i + 1}", line) for i, line in enumerate(text.splitlines(keepends=True))]
    out.append(("chat", CHAT))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="refs folder (default FASTLIBRA_REFS_DIR)")
    ap.add_argument("--model", type=Path, help=f"GGUF file (default {rc.Q4_NAME} in the model folder)")
    ap.add_argument("--force", action="store_true", help="rewrite even when current")
    args = ap.parse_args()

    model = args.model or rc.model_path(rc.Q4_NAME)
    out_dir = args.out or rc.refs_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / OUT_NAME
    key = rc.inputs_hash([Path(__file__), FIXTURE, model], extra={"chat": CHAT})
    if not args.force and rc.is_current(out, key):
        print(f"tokenize: {out} is current")
        return

    from llama_cpp import Llama

    llm = Llama(model_path=str(model), vocab_only=True, verbose=False)
    text = FIXTURE.read_bytes().decode("utf-8")
    results = []
    for name, case in cases(text):
        ids = llm.tokenize(case.encode("utf-8"), add_bos=True, special=True)
        detok = llm.detokenize(ids, special=True).decode("utf-8", errors="replace")
        results.append({
            "name": name,
            "text": case,
            "add_special": True,
            "parse_special": True,
            "ids": ids,
            "detokenized": detok,
        })
    rc.write_json(out, {
        "schema_version": rc.SCHEMA_VERSION,
        "llama_version": rc.llama_version(),
        "inputs_sha256": key,
        "model": model.name,
        "fixture": FIXTURE.name,
        "cases": results,
    })
    total = sum(len(r["ids"]) for r in results)
    print(f"tokenize: wrote {out} ({len(results)} cases, {total} ids)")


if __name__ == "__main__":
    main()
