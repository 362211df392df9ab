//! The `cpu` backend (DESIGN §6): a small Llama-shaped transformer with random weights that
//! computes real logits, with LoRA on the attention projections and its KV cache in pages.
