//! The device a shard computes on: its HBM tier, its host tier, the copies between them and
//! the forward pass. Two implement it:
//!
//! - [`Emulated`]: HBM is a page arena in host memory, copies are `memcpy` (done at once), the
//!   compute is the CPU model. Runs everywhere.
//! - [`CudaShardDevice`]: HBM is one device allocation carved into pages, the host tier is
//!   pinned memory, copies go through the stream scheduler on their own copy streams (done
//!   when their event completes), the compute is the NVRTC-compiled model.
//!
//! The shard drives both the same way:
//!
//! ```text
//!  TransferCmd H2D / D2H ─► start_copy(transfer, …) ─► … poll_copies ─► transfer ids done
//!  adapter registration  ─► write_hbm_page (HBM) / host_page_mut (host)
//!  NVMe page ops         ─► host_page / host_page_mut (the bytes the page file moves)
//!  StepCmd               ─► forward([DeviceSeq]) ─► last-token logits per sequence
//! ```

mod copies;
mod cuda;
mod emulated;

pub use copies::CopyTracker;
pub use cuda::{CudaShardDevice, cuda_cost_hints};
pub use emulated::Emulated;

use std::sync::Arc;

use fastlibra_alloc::NodeId;
use fastlibra_kernels::cuda::WeightPrecision;

use super::adapters::SourceAdapter;
use super::error::RealError;

/// Which device the shards compute on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// HBM emulated in host memory, the CPU model computing (runs everywhere).
    #[default]
    Emulated,
    /// A CUDA GPU: device `ordinal`, shared by every shard.
    Cuda {
        /// The device's ordinal.
        ordinal: usize,
        /// How the model's GEMM weights are stored on it.
        weights: WeightPrecision,
    },
}

/// How reports name the emulated device.
pub const EMULATED: &str = "emulated (CPU)";

/// Which way a copy between the device's two tiers goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDir {
    /// Host pages → HBM pages (a swap-in).
    ToHbm,
    /// HBM pages → host pages (a swap-out).
    ToHost,
}

/// A sequence's adapter: its LoRA node, that node's HBM pages (in page order) and the
/// source it was registered from.
#[derive(Clone, Copy, Debug)]
pub struct LoraPages<'a> {
    /// The LoRA node.
    pub node: NodeId,
    /// The adapter's id and version.
    pub adapter: (u32, u32),
    /// The node's HBM pages.
    pub pages: &'a [u32],
    /// The adapter version's source.
    pub source: &'a Arc<SourceAdapter>,
}

/// One sequence of a step, as the device computes it.
#[derive(Clone, Copy, Debug)]
pub struct DeviceSeq<'a> {
    /// New token ids (already reduced to the vocabulary).
    pub tokens: &'a [u32],
    /// HBM pages of its KV blocks.
    pub block_table: &'a [u32],
    /// Positions already cached.
    pub start_pos: usize,
    /// Its adapter.
    pub lora: LoraPages<'a>,
}

/// A device a shard computes on. See the module docs.
pub trait Device {
    /// What it is, for reports ("emulated (CPU)", the GPU's name).
    fn name(&self) -> String;

    /// Bytes of one page (the same in both tiers).
    fn page_bytes(&self) -> usize;

    /// Host page `page`'s bytes (no copy may be in flight on it).
    fn host_page(&self, page: u32) -> Result<&[u8], RealError>;

    /// Host page `page`'s bytes, to write (no copy may be in flight on it).
    fn host_page_mut(&mut self, page: u32) -> Result<&mut [u8], RealError>;

    /// Writes one whole HBM page, done when it returns (adapter registration).
    fn write_hbm_page(&mut self, page: u32, bytes: &[u8]) -> Result<(), RealError>;

    /// Starts copying `src[i] → dst[i]` for engine transfer `transfer`; `on_demand` copies go
    /// ahead of prefetches. Its end is reported by [`Device::poll_copies`].
    fn start_copy(
        &mut self,
        transfer: u64,
        dir: CopyDir,
        on_demand: bool,
        src: &[u32],
        dst: &[u32],
    ) -> Result<(), RealError>;

    /// Appends the transfers whose every page has arrived.
    fn poll_copies(&mut self, done: &mut Vec<u64>) -> Result<(), RealError>;

    /// Whether copies are queued or in flight.
    fn copies_busy(&self) -> bool;

    /// One forward pass over `seqs`: writes their new KV into their pages and returns each
    /// one's last-token logits.
    fn forward(&mut self, seqs: &[DeviceSeq<'_>]) -> Result<Vec<Vec<f32>>, RealError>;

    /// Waits for every copy in flight (end of run); the transfers they finish are appended.
    fn drain(&mut self, done: &mut Vec<u64>) -> Result<(), RealError>;

    /// The device's own invariants (pages in flight belong to known transfers).
    fn check_invariants(&self) -> Result<(), String>;

    /// Makes every page of the tiers it keeps in process memory resident now (a server's
    /// start-up), so that its memory does not grow with first use under load. Nothing to do
    /// for memory that is resident from its allocation (device memory, pinned host memory).
    fn prefault(&mut self) {}
}
