//! The `cpu` backend (DESIGN §6): a small Llama-shaped transformer with random weights that
//! computes real logits, with LoRA on the attention projections and its KV cache in pages.
//! It proves the data path: logits computed from cached pages equal logits recomputed from
//! scratch, wherever the pages lie, and KV computed under one adapter is not reusable under
//! another.
//!
//! # Data flow
//!
//! ```text
//!  SeqInput { tokens, block_table, start_pos, lora }  × batch
//!        │ check_batch: vocab, table length, pages in arena, no page written twice
//!        ▼
//!  embed ──► x (rows = all new tokens of all sequences)
//!        │  per layer:
//!        │   h = RMSNorm(x)
//!        │   q, k, v = h·W{q,k,v} + per sequence h·A·B·scale          (LoRA)
//!        │   RoPE(q, k) at each row's absolute position
//!        │   k, v ──write──► pages[block_table[pos / B]] slot pos % B
//!        │   per row, per head: softmax(q·Kᵀ/√d)·V over positions 0..=pos,
//!        │        K, V ◄──read── the sequence's own pages (GQA: head → head / group)
//!        │   x += attn·Wo + attn·A·B·scale
//!        │   x += (silu(h·Wgate) ⊙ h·Wup)·Wdown,  h = RMSNorm(x)
//!        ▼
//!  RMSNorm ──► ·Wlm ──► logits of the last token (or of every new token)
//! ```
//!
//! # Page layout
//!
//! A [`KvArena`] is one `Vec<f32>` of `pages × page_floats`, allocated once. A page holds one
//! KV block of `B = block_tokens` tokens across all layers, K and V, like the engine's pages
//! (`PageGeometry::for_model(config.kv_bytes_per_token(), B, None)`, with
//! `kv_bytes_per_token = 2 × layers × kv_heads × head_dim × 4`):
//!
//! ```text
//!  page p:  [ layer 0: K[slot 0..B][kv_heads][head_dim] | V[slot 0..B][kv_heads][head_dim] ]
//!           [ layer 1: K ...                            | V ...                            ]
//!           ...
//!  offset(layer, K=0|V=1, slot) = ((layer·2 + which)·B + slot) · kv_heads·head_dim
//! ```
//!
//! A sequence's KV is its block table: page ids, block `i` covering positions `i·B..(i+1)·B`.
//! Pages can be anywhere in the arena and can be shared read-only between sequences (a common
//! prefix). Nothing in a page records which adapter produced it: that is the caller's (the
//! dependency tree's) job, and `tests/cpu_model.rs` shows what goes wrong without it.

mod attention;
pub(crate) mod check;
mod config;
mod error;
mod forward;
mod fresh;
mod from_checkpoint;
mod from_peft;
pub mod gemm;
mod init;
mod kv;
mod lora;
pub mod ops;
mod weights;

pub use config::{CpuModelConfig, RANDOM_CONTEXT_LEN};
pub use error::{CpuError, Result};
pub use forward::SeqInput;
pub use fresh::FRESH_BLOCK_TOKENS;
pub use kv::KvArena;
pub use lora::{CpuLora, LayerPairs, LoraPair};
pub use weights::CpuModel;
