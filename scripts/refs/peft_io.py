"""Reading PEFT LoRA folders (`adapter_config.json` + `adapter_model.safetensors`) with numpy.

The safetensors file is parsed here directly (8-byte little-endian header length, a JSON header,
then the raw tensors), because numpy has no bfloat16 and `safetensors.numpy` refuses BF16 — the
dtype `fastlibra adapters synth` writes by default. F32, F16 and BF16 are read, all as float32.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# PEFT's names for a Llama-family CausalLM (kernels/src/peft/names.rs writes the same).
NAME_RE = re.compile(
    r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\."
    r"(q|k|v|o|gate|up|down)_proj\.lora_(A|B)\.weight$"
)
MODULES = {"q": "self_attn", "k": "self_attn", "v": "self_attn", "o": "self_attn",
           "gate": "mlp", "up": "mlp", "down": "mlp"}


class PeftError(ValueError):
    """A PEFT folder that cannot be read: the message names the file and the field."""


@dataclass
class Peft:
    """A LoRA adapter: rank, alpha, and per (layer, target) the A (rank x in) and B (out x rank)
    matrices as float32."""

    rank: int
    alpha: float
    targets: list[str]
    base_model: str
    pairs: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as float32 arrays."""
    raw = path.read_bytes()
    if len(raw) < 8:
        raise PeftError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise PeftError(f"{path}: header length {n} runs past the end of the file")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise PeftError(f"{path}: header is not JSON: {e}") from e
    body = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (lo, hi) = info["dtype"], info["shape"], info["data_offsets"]
        if not 0 <= lo <= hi <= len(body):
            raise PeftError(f"{path}: tensor {name}: data_offsets {lo}..{hi} out of range")
        buf = body[lo:hi]
        if dtype == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise PeftError(f"{path}: tensor {name}: dtype {dtype} not supported (F32, F16, BF16)")
        if arr.size != int(np.prod(shape)):
            raise PeftError(f"{path}: tensor {name}: {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape).astype(np.float32)
    return out


def read_peft(folder: Path) -> Peft:
    """Read a PEFT LoRA folder; every tensor must be a Llama projection's lora_A or lora_B."""
    cfg_path = folder / CONFIG_FILE
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise PeftError(f"{cfg_path}: {e}") from e
    for field in ("r", "lora_alpha", "target_modules", "peft_type"):
        if field not in cfg:
            raise PeftError(f"{cfg_path}: field {field} is missing")
    if cfg["peft_type"] != "LORA":
        raise PeftError(f"{cfg_path}: peft_type is {cfg['peft_type']!r}, expected 'LORA'")
    if cfg.get("use_dora") or cfg.get("use_rslora"):
        raise PeftError(f"{cfg_path}: use_dora / use_rslora are not supported")
    pairs: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    weights = folder / WEIGHTS_FILE
    for name, arr in read_safetensors(weights).items():
        m = NAME_RE.match(name)
        if not m or MODULES[m.group(3)] != m.group(2):
            raise PeftError(f"{weights}: tensor {name} is not a Llama projection's LoRA matrix")
        pairs.setdefault((int(m.group(1)), m.group(3)), {})[m.group(4)] = arr
    rank = int(cfg["r"])
    out = {}
    for (layer, target), ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise PeftError(f"{weights}: layer {layer} {target}_proj has only lora_{''.join(ab)}")
        a, b = ab["A"], ab["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != rank or b.shape[1] != rank:
            raise PeftError(f"{weights}: layer {layer} {target}_proj: A {a.shape}, B {b.shape} "
                            f"do not have rank r={rank}")
        out[(layer, target)] = (a, b)
    targets = sorted({t for _, t in out})
    return Peft(rank, float(cfg["lora_alpha"]), targets,
                str(cfg.get("base_model_name_or_path") or ""), out)
