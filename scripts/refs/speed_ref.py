"""llama.cpp's one-thread speed on the F32 and Q4_1 files: prefill at 128 and 512 prompt tokens,
single-sequence decode.

Usage: python speed_ref.py [--force] [--repeats 5]   (writes speed_llama_cpp.json)

Method (fastlibra's benchmark mirrors it; docs/peers.md), per file:
  context: common.load with n_ctx 1024, n_batch = n_ubatch = 512, 1 thread, F32 KV cache,
  flash attention off, no GPU; the prompt is the first tokens of scripts/refs/data/
  perplexity.txt (real text, no BOS).
  prefill N (N = 128, 512): empty the KV cache (llm.reset), time llm.eval(prompt[:N]) — one
  batch, logits of the last position only; tokens/s = N / seconds. One untimed warm-up, then
  the median of `repeats` runs.
  decode: evaluate prompt[:128], then time 64 llm.eval([t]) calls, one token each, t the next
  tokens of the text (teacher-forced: the cost of greedy decoding without the sampling), so the
  context grows from 128 to 192; tokens/s = 64 / seconds; median of `repeats` runs.
Time is time.perf_counter() around the eval calls only; llama-cpp-python's per-call overhead
(tens of microseconds) is included. Wall-clock numbers depend on the machine and its load: the
CPU model and the load average are recorded, and so is `cpu_share`, the median over timed runs
of process CPU time / wall time: below 0.95 another process took the core, the file says
"contended": true, and the next run of this script measures again instead of skipping.
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
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import refs_common as common

N_CTX = 1024
PREFILL = (128, 512)
DECODE_CONTEXT = 128
DECODE_STEPS = 64
MIN_CPU_SHARE = 0.95


def cpu_model() -> str:
    """The processor's name from /proc/cpuinfo (or platform's)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(path: Path, tokens: list[int], repeats: int) -> dict:
    """Prefill and decode tokens/s of one file."""
    llm = common.load(path, N_CTX)

    shares: list[float] = []

    def timed(fn) -> float:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        shares.append((time.process_time() - c0) / wall)
        return wall

    def prefill(n: int) -> float:
        llm.reset()
        return n / timed(lambda: llm.eval(tokens[:n]))

    def decode() -> float:
        llm.reset()
        llm.eval(tokens[:DECODE_CONTEXT])
        nxt = tokens[DECODE_CONTEXT:DECODE_CONTEXT + DECODE_STEPS]
        return DECODE_STEPS / timed(lambda: [llm.eval([t]) for t in nxt])

    out = {}
    for n in PREFILL:
        prefill(n)  # warm-up
        runs = [prefill(n) for _ in range(repeats)]
        out[f"prefill_{n}"] = {"tokens_per_s": statistics.median(runs), "runs": runs}
    decode()
    runs = [decode() for _ in range(repeats)]
    out["decode"] = {"tokens_per_s": statistics.median(runs), "runs": runs,
                     "context_from": DECODE_CONTEXT, "steps": DECODE_STEPS}
    out["cpu_share"] = statistics.median(shares)
    line = ", ".join(f"{k} {v['tokens_per_s']:.1f}" for k, v in out.items() if k != "cpu_share")
    print(f"refs: speed {path.name}: {line} tokens/s")
    return out


def run(force: bool, repeats: int) -> int:
    f32 = common.model_path(common.F32_NAME)
    q4 = common.model_path(common.Q4_NAME)
    out = common.refs_dir() / "speed_llama_cpp.json"
    text = common.DATA / "perplexity.txt"
    method = {"n_ctx": N_CTX, "n_batch": 512, "threads": 1, "prefill": list(PREFILL),
              "decode_context": DECODE_CONTEXT, "decode_steps": DECODE_STEPS,
              "repeats": repeats, "statistic": "median", "kv_type": "f32",
              "flash_attn": False, "cpu": cpu_model()}
    key = common.inputs_hash([Path(__file__), common.HERE / "refs_common.py", text, f32, q4], method)
    if not force and common.is_current(out, key):
        if not json.loads(out.read_text()).get("contended"):
            print(f"refs: {out.name} is current")
            return 0
        print(f"refs: {out.name} was measured on a busy machine: measuring again")
    load_before = os.getloadavg()
    tokens = [int(t) for t in common.load(q4, 64).tokenize(text.read_bytes(), add_bos=False)]
    results = {"f32": measure(f32, tokens, repeats), "q4_1": measure(q4, tokens, repeats)}
    doc = common.header("speed_llama_cpp", f32, key, method)
    doc["files"] = {"f32": f32.name, "q4_1": q4.name}
    doc["loadavg_before"] = list(load_before)
    doc["loadavg_after"] = list(os.getloadavg())
    doc["results"] = results
    doc["contended"] = min(r["cpu_share"] for r in results.values()) < MIN_CPU_SHARE
    common.write_json(out, doc)
    print(f"refs: wrote {out}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="measure again even when current")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    return run(args.force, max(1, args.repeats))


if __name__ == "__main__":
    sys.exit(main())
