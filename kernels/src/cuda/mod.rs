//! The `cuda` backend (DESIGN §6): the device layer, the stream scheduler and NVRTC kernels
//! for paged KV and paged LoRA, on cudarc with dynamic loading. Nothing here links against
//! CUDA: the driver (`libcuda.so.1`) and NVRTC (`libnvrtc.so*`) are loaded at run time, so the
//! crate builds and its tests run on machines without a GPU. Without a driver,
//! [`CudaDevice::open`] returns [`CudaError::NoDriver`]; nothing panics.
//!
//! # Lifecycle
//!
//! ```text
//!  CudaDevice::open(0) ─► context + streams { compute, h2d, d2h }     (NoDriver / OldDriver)
//!        │
//!        ├─► DevicePagePool::new(pages, page_floats)   one cuMemAlloc, carved into HBM pages
//!        ├─► HostPagePool::new(pages, page_floats)     one pinned allocation: host tier
//!        ├─► CudaModel::from_cpu(&dev, &cpu_model)     weights up, NVRTC → PTX → module
//!        │       load_lora(pool, lora, pages) ─► DeviceLora   adapter stream in pool pages
//!        │
//!        │  per engine iteration
//!        ├─► CopyEngine::submit(H2d|D2h, OnDemand|Prefetch, [PageCopy])   (StreamScheduler)
//!        ├─► CopyEngine::pump ─► one cuMemcpyAsync per coalesced run + one event per batch
//!        ├─► CopyEngine::compute_waits_for(ticket)   cuStreamWaitEvent, no host sync
//!        ├─► CudaModel::forward_batch(&dev, &mut pool, B, [CudaSeq]) ─► logits
//!        └─► CopyEngine::poll ─► Completed { hbm_pages }  (after D2H: pages free to reuse)
//! ```
//!
//! # Kernels
//!
//! CUDA C in `kernels/*.cu` ([`source`]), compiled by NVRTC ([`compile_ptx`]) for the
//! device's architecture: batched page gather/scatter, BGMV-style LoRA shrink/expand over
//! adapter pages for batches mixing adapters, paged attention (prefill and decode rows in one
//! launch), RMSNorm, RoPE, SwiGLU, a tiled fp32 GEMM. The page layout is the CPU backend's
//! ([`crate::cpu`]), the adapter layout the PEFT pager's ([`crate::peft`]) in f32.
//! `fastlibra cuda compile-check` compiles them all without a GPU and `ptxas` reports
//! registers and spills; `fastlibra cuda check` runs them against the CPU reference on a GPU.

pub mod check;
mod copy;
mod device;
mod error;
mod forward;
mod layer;
mod lora_pages;
mod model;
mod nvrtc;
mod pool;
pub mod probe;
pub mod ptxas;
pub mod sched;
pub mod source;
mod support;

pub use copy::{Completed, CopyEngine};
pub use device::{CudaDevice, Kernels};
pub use error::{CudaError, Result};
pub use forward::CudaSeq;
pub use lora_pages::{LoraStreamLayout, lora_stream};
pub use model::{CudaModel, DeviceLora, WeightPrecision};
pub use nvrtc::compile_ptx;
pub use pool::{DevicePagePool, HostPagePool};
pub use sched::{CopyBatch, CopyRun, Direction, PageCopy, Priority, StreamScheduler, Ticket};
pub use support::{MAX_HEAD_DIM, check_supported};
