"""Shared pieces of the llama.cpp reference generators (docs/peers.md).

Paths follow the project's environment variables, computed at run time:
  FASTLIBRA_MODEL_DIR  default ${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/models
  FASTLIBRA_REFS_DIR   default ${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/refs
  FASTLIBRA_VENV       default ${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/venv

Every llama.cpp context here is made the same way (`load`): one thread for prompt and decode,
a fixed seed, F32 KV cache (not llama.cpp's F16 default, so the reference carries no KV rounding),
flash attention off, no GPU offload. Every reference file records the llama.cpp build it came
from (`llama_version`) and a hash of its inputs (`inputs_sha256`), and is skipped when that hash
still matches (`is_current`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

SCHEMA_VERSION = 1
Q4_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
F32_NAME = "SmolLM2-135M-Instruct.F32.gguf"
SEED = 1234
HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def cache_dir() -> Path:
    """${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastlibra"


def model_dir() -> Path:
    """The folder holding the model files (FASTLIBRA_MODEL_DIR)."""
    return Path(os.environ.get("FASTLIBRA_MODEL_DIR") or cache_dir() / "models")


def refs_dir() -> Path:
    """The folder the reference files go to (FASTLIBRA_REFS_DIR), created if missing."""
    path = Path(os.environ.get("FASTLIBRA_REFS_DIR") or cache_dir() / "refs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def venv_dir() -> Path:
    """The peers' venv (FASTLIBRA_VENV)."""
    return Path(os.environ.get("FASTLIBRA_VENV") or cache_dir() / "venv")


def model_path(name: str) -> Path:
    """A model file in the model folder; exits with a clear message when it is missing."""
    path = model_dir() / name
    if not path.is_file():
        sys.exit(f"refs: {path} is missing; run scripts/fetch-model.sh")
    return path


BIG_FILE = 1 << 24


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex. A file over 16 MiB (a model) is hashed once per
    (path, size, mtime) and remembered in the refs folder's .sha256-cache.json, so a rerun
    that has nothing to do does not read the models again."""
    path = Path(path)
    st = path.stat()
    memo_key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_path = refs_dir() / ".sha256-cache.json"
    memo: dict[str, str] = {}
    if st.st_size > BIG_FILE and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text())
        except ValueError:
            memo = {}
        if memo_key in memo:
            return memo[memo_key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    if st.st_size > BIG_FILE:
        memo[memo_key] = digest
        write_json(memo_path, memo)
    return digest


def llama_version() -> dict[str, Any]:
    """The llama.cpp build in use: the llama-cpp-python version, and what py-env.sh recorded
    when it built the wheel (llama.cpp commit, ggml version, CMAKE_ARGS, sdist SHA-256)."""
    import llama_cpp

    info: dict[str, Any] = {"llama_cpp_python": llama_cpp.__version__}
    build = venv_dir() / "fastlibra-llama-build.json"
    if build.is_file():
        info.update(json.loads(build.read_text()))
    info["system_info"] = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    return info


def inputs_hash(files: Iterable[Path], extra: Any = None) -> str:
    """A hash of the generator's inputs: the given files' bytes (scripts, fixtures, models),
    `extra` (parameters, as JSON) and the llama.cpp build, without its system_info."""
    h = hashlib.sha256()
    for path in files:
        h.update(str(Path(path).name).encode())
        h.update(sha256_file(Path(path)).encode())
    version = {k: v for k, v in llama_version().items() if k != "system_info"}
    h.update(json.dumps([extra, version], sort_keys=True).encode())
    return h.hexdigest()


def is_current(path: Path, key: str) -> bool:
    """True when the reference file `path` exists and was made from inputs hashing to `key`."""
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("inputs_sha256") == key
    except (OSError, ValueError):
        return False


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write `obj` as JSON to `path` atomically (through a .tmp file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def write_f32(path: Path, rows: np.ndarray) -> dict[str, Any]:
    """Write a 2-D float32 array as raw little-endian f32, row-major, atomically; returns the
    JSON index entry describing it."""
    arr = np.ascontiguousarray(rows, dtype="<f4")
    tmp = path.with_name(path.name + ".tmp")
    arr.tofile(tmp)
    os.replace(tmp, path)
    return {"file": path.name, "dtype": "f32le", "shape": list(arr.shape), "sha256": sha256_file(path)}


def load(path: Path, n_ctx: int, logits_all: bool = False, lora_path: Path | None = None,
         n_batch: int = 512):
    """A llama.cpp context on `path` with the fixed settings above."""
    from llama_cpp import GGML_TYPE_F32, Llama

    return Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_ubatch=n_batch,
        n_threads=1,
        n_threads_batch=1,
        seed=SEED,
        logits_all=logits_all,
        n_gpu_layers=0,
        flash_attn=False,
        type_k=GGML_TYPE_F32,
        type_v=GGML_TYPE_F32,
        lora_path=str(lora_path) if lora_path else None,
        verbose=False,
    )


def last_logits(llm) -> np.ndarray:
    """A copy of the logits of the last position evaluated (n_vocab float32)."""
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32, copy=True)


def greedy(llm, prompt: list[int], steps: int) -> tuple[np.ndarray, list[int], list[float]]:
    """Evaluate `prompt` from an empty cache, then `steps` greedy tokens (argmax, lowest id on a
    tie). Returns the prompt's last-position logits, the tokens, and each step's margin
    (top-1 minus top-2 logit: how close the choice was)."""
    llm.reset()
    llm.eval(prompt)
    first = last_logits(llm)
    logits, tokens, margins = first, [], []
    for step in range(steps):
        tok = int(np.argmax(logits))
        top2 = np.partition(logits, -2)[-2:]
        tokens.append(tok)
        margins.append(float(top2[1] - top2[0]))
        if step + 1 < steps:
            llm.eval([tok])
            logits = last_logits(llm)
    return first, tokens, margins


def load_prompts() -> list[dict[str, Any]]:
    """The 8 fixed prompts of scripts/refs/data/prompts.json (token ids and their text)."""
    return json.loads((DATA / "prompts.json").read_text())["prompts"]


def header(kind: str, model: Path, key: str, method: dict[str, Any]) -> dict[str, Any]:
    """The fields every reference file starts with."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "model": model.name,
        "model_sha256": sha256_file(model),
        "llama_cpp": llama_version(),
        "method": method,
        "inputs_sha256": key,
    }
