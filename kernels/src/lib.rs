//! The device layer of fastlibra: what a GPU, its links and the model on it cost.
//!
//! Today this crate holds the *hardware model* the discrete-event simulator runs on (DESIGN
//! §6, backend `sim`): the shape of a base model ([`ModelSpec`]), the peak numbers of a GPU
//! and the PCIe and NVMe links around it ([`GpuSpec`]), and a [`CostModel`] that turns an
//! iteration of continuous batching or a page transfer into whole nanoseconds. The CPU
//! reference backend and the CUDA kernels will live here too.
//!
//! Everything is a pure function of numbers: no clock, no I/O, no randomness, so the
//! simulator stays deterministic per seed.
//!
//! ```text
//!   preset names ──► ModelSpec, GpuSpec, CostParams ──► HardwareConfig
//!   (CLI)                      ▲                              │ with_toml(file)
//!                              └──── TOML overrides ◄─────────┘
//!                                                             │ cost_model()
//!                                                             ▼
//!   simulator ── Iteration / Link + bytes ──► CostModel ──► duration in ns
//! ```
//!
//! Sizes the memory planner needs come from [`ModelSpec`]: `kv_bytes_per_token` (Llama-3-8B:
//! 128 KiB), `lora_bytes_per_rank` (per target set, per GPU under tensor parallelism) and
//! `weight_bytes`.

pub mod checkpoint;
pub mod config;
pub mod config_fuzz;
pub mod cost;
pub mod cpu;
pub mod cuda;
pub mod generate;
pub mod gpu;
pub mod model;
pub mod peft;
pub mod sampling;
pub mod tokenizer;

pub use config::{ConfigError, HardwareConfig};
pub use cost::{AdapterLoad, CostModel, CostParams, Iteration, Link, PrefillChunk};
pub use gpu::{GPU_PRESETS, GpuSpec};
pub use model::{LoraTarget, LoraTargets, MODEL_PRESETS, ModelSpec};
