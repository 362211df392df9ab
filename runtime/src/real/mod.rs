//! The real runtime: the same engine core as the simulator, run in wall-clock time with real
//! bytes in every tier and real compute.
//!
//! - **Shards** ([`shard`]): each owns an engine, an emulated device (its HBM tier is a page
//!   arena in host memory, allocated once), a host-tier arena, an NVMe page file driven by
//!   io_uring (`O_DIRECT`, registered buffers, CRC32C per page), and the CPU model, which
//!   computes every step from the KV and adapter pages in the HBM arena.
//! - **Thread per core** ([`runner`]): one glommio executor per shard, pinned to a core, and a
//!   front that replays the workload and routes requests ([`router`]: rendezvous hashing of
//!   the adapter with load-aware spill-over; sessions stay on their shard).
//! - **Faults** ([`nvme`]): the NVMe tier is used through [`nvme::NvmeIo`]; a wrapper injects
//!   EIO, ENOSPC, short reads and flipped bits. A page that fails is never served: its node is
//!   dropped and recomputed (KV) or registered again from its source (adapters).
//! - **Verification** ([`verify`]): with `verify`, every request that reused cached KV is
//!   recomputed from scratch and its logits compared.
//!
//! What is emulated: the device. Its "HBM" is host memory, its copies are `memcpy`, and its
//! compute is the CPU model. Everything else (the page file, the scheduling, the compute on
//! real pages) is what a GPU deployment runs.

pub mod adapters;
pub mod arena;
pub mod calibrate;
pub mod device;
pub mod error;
pub mod nvme;
pub mod replay;
pub mod router;
pub mod runner;
pub mod shard;
pub mod spill;
mod tiers;
pub mod verify;

pub use adapters::SourceAdapter;
pub use error::RealError;
pub use nvme::{InjectedFaults, NvmeFaults};
pub use runner::{RunOptions, RunResult, run_real};
pub use shard::{Clock, IoCounters, Shard, ShardConfig, ShardReport, TokenChooser};
pub use verify::VerifyStats;
