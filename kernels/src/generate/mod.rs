//! Text generation from a checkpoint, with an optional PEFT adapter: what `fastlibra generate`
//! streams to the terminal, and the single-sequence reference the server's output is compared
//! with.
//!
//! ```text
//!   LoadedModel::open(path) ── Checkpoint (shared, mmap) + CpuModel + Tokenizer (vocab checked)
//!        │ load_lora(dir)          ─► CpuLora (PEFT folder checked against the model's shape)
//!        │ prompt_ids(Prompt)      ─► ids (plain text, or a user turn through the chat template)
//!        ▼
//!   generate(model, tokenizer, lora, ids, params, on_step)
//!        Sequence::feed(prompt) ─► logits ─► Generation::step ─► Step (text to stream)
//!        Sequence::feed([token])  ◄──────────────────────────────┘ until stop or max_tokens
//! ```
//!
//! Everything is checked before any arithmetic: an empty prompt, or a prompt that with
//! `max_tokens` does not fit the context, is an error naming the checkpoint and the field.

mod error;
mod load;
mod run;
mod sequence;

pub use error::GenerateError;
pub use load::{LoadedModel, Prompt};
pub use run::{Generated, generate};
pub use sequence::Sequence;
