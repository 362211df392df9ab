"""Convert a GGUF `llama` file into a Hugging Face folder, independently of the Rust loader
(kernels/tests/checkpoint_model.rs compares the two loads tensor by tensor).

Usage: python gguf_to_hf.py MODEL.gguf OUT_DIR

Every tensor is dequantised with `gguf.quants.dequantize`, renamed to Hugging Face's names and
written as F32 to OUT_DIR/model.safetensors (the safetensors layout written by hand: an 8-byte
header length, the JSON header, the data). The rows of q_proj and k_proj are put back in
Hugging Face's order the way Hugging Face's own GGUF import does it
(`transformers.integrations.ggml`, reverse of `LlamaModel.permute` in llama.cpp's
`convert_hf_to_gguf.py`): reshape to (heads, d/2, 2, in), swap the two middle axes, reshape
back. OUT_DIR/config.json carries the GGUF metadata under transformers' names.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

LAYER = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def field(reader: GGUFReader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def hf_name(name: str) -> str:
    base, suffix = name.rsplit(".", 1)
    if base.startswith("blk."):
        _, layer, part = base.split(".", 2)
        return f"model.layers.{layer}.{LAYER[part]}.{suffix}"
    return f"{GLOBAL[base]}.{suffix}"


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    reader = GGUFReader(str(model))
    heads = int(field(reader, "llama.attention.head_count"))
    kv_heads = int(field(reader, "llama.attention.head_count_kv") or heads)
    hidden = int(field(reader, "llama.embedding_length"))
    names = {t.name for t in reader.tensors}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "_name_or_path": field(reader, "general.name"),
        "num_hidden_layers": int(field(reader, "llama.block_count")),
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": int(field(reader, "llama.attention.key_length") or hidden // heads),
        "intermediate_size": int(field(reader, "llama.feed_forward_length")),
        "vocab_size": int(field(reader, "llama.vocab_size")),
        "rope_theta": float(field(reader, "llama.rope.freq_base")),
        "rms_norm_eps": float(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "max_position_embeddings": int(field(reader, "llama.context_length")),
        "tie_word_embeddings": "output.weight" not in names,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))

    header, blobs, offset = {}, [], 0
    for t in reader.tensors:
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        if t.name.endswith("attn_q.weight"):
            w = unpermute(w, heads)
        elif t.name.endswith("attn_k.weight"):
            w = unpermute(w, kv_heads)
        data = np.ascontiguousarray(w, dtype="<f4").tobytes()
        header[hf_name(t.name)] = {"dtype": "F32", "shape": list(w.shape),
                                   "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print(f"gguf_to_hf.py: {len(reader.tensors)} tensors -> {out}")


if __name__ == "__main__":
    main()
