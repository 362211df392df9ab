//! LoRA adapters in Hugging Face PEFT's on-disk format: loading, checking against a
//! [`ModelSpec`](crate::ModelSpec), writing, and splitting along the rank into fixed-size
//! pages (S-LoRA's unified paging).
//!
//! ```text
//!   adapter_config.json ─┐  load_peft(dir, model)           paged(page_bytes)
//!   adapter_model        ├──────────────────────► Adapter ──────────────────► PagedAdapter
//!     .safetensors      ─┘ ◄────────────────────   (f32)  ◄──────────────────  pages + layout
//!                          write_peft(dir, adapter, name)         to_adapter()
//! ```
//!
//! A folder holds what PEFT's `save_pretrained` writes for a Llama-family `CausalLM`:
//! `adapter_config.json` (`r`, `lora_alpha`, `target_modules`, `peft_type = "LORA"`, …) and
//! `adapter_model.safetensors` with `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A
//! .weight` (`[r, in]`), `…lora_B.weight` (`[out, r]`) and likewise for `k`, `v`, `o` and the
//! MLP's `gate`, `up`, `down`, in F32, F16 or BF16. Every malformed input is a [`PeftError`].
//! [`load_peft_bytes`] does what [`load_peft`] does on the two files' contents (one code
//! path); [`fuzz_entry`] drives it from arbitrary bytes for the `peft_adapter` fuzz target.

mod adapter;
mod config;
mod dtype;
mod error;
pub mod fuzz_entry;
mod load;
mod names;
mod paged;
mod write;

pub use adapter::{Adapter, AdapterShape, LoraPair, Matrix};
pub use config::{AdapterConfig, CONFIG_FILE, module_name};
pub use dtype::WeightDtype;
pub use error::{PeftError, Result};
pub use load::{WEIGHTS_FILE, load_peft, load_peft_bytes};
pub use names::{parse_tensor_name, tensor_name};
pub use paged::{PageLayout, PagedAdapter};
pub use write::write_peft;
