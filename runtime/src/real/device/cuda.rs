//! A CUDA GPU as a shard's device: HBM pages in one device allocation, the host tier in one
//! pinned allocation, swaps through the stream scheduler on separate copy streams (the compute
//! stream never waits for them on the host: a transfer is reported done only once its copy
//! event has completed, and only then may the engine schedule compute on its pages), and the
//! forward pass of the NVRTC-compiled model.

use std::time::Instant;

use fastlibra_kernels::cpu::CpuModel;
use fastlibra_kernels::cuda::{
    CopyEngine, CudaDevice, CudaModel, CudaSeq, DeviceLora, DevicePagePool, Direction,
    HostPagePool, LoraStreamLayout, PageCopy, Priority, WeightPrecision,
};
use zerocopy::IntoBytes;

use super::{CopyDir, CopyTracker, Device, DeviceSeq};
use crate::engine::CostHints;
use crate::real::error::RealError;

/// Pages per copy batch (one event each).
const BATCH_PAGES: usize = 256;

/// See the module docs.
pub struct CudaShardDevice {
    dev: CudaDevice,
    model: CudaModel,
    hbm: DevicePagePool,
    host: HostPagePool,
    copies: CopyEngine,
    tracker: CopyTracker,
    /// Transfers of no pages, done at once.
    empty_done: Vec<u64>,
    block_tokens: usize,
}

impl CudaShardDevice {
    /// Opens device `ordinal`, uploads `model`'s weights (GEMM weights in `weights`),
    /// compiles the kernels and allocates `hbm_pages` device pages and `host_pages` pinned
    /// pages, once. Every failure (no driver, an old driver, out of memory, a kernel that does
    /// not compile) is a typed error.
    pub fn new(
        ordinal: usize,
        weights: WeightPrecision,
        model: &CpuModel,
        hbm_pages: u32,
        host_pages: u32,
        block_tokens: usize,
    ) -> Result<CudaShardDevice, RealError> {
        let dev = CudaDevice::open(ordinal)?;
        let cuda_model = CudaModel::from_cpu_with(&dev, model, weights)?;
        let page_floats = model.config().page_floats(block_tokens);
        let hbm = DevicePagePool::new(&dev, hbm_pages as usize, page_floats)?;
        let host = HostPagePool::new(&dev, host_pages as usize, page_floats)?;
        let queued = (hbm_pages as usize).max(1) * 2;
        Ok(CudaShardDevice {
            dev,
            model: cuda_model,
            hbm,
            host,
            copies: CopyEngine::new(BATCH_PAGES, queued),
            tracker: CopyTracker::default(),
            empty_done: Vec::new(),
            block_tokens,
        })
    }

    fn page_floats(&self) -> usize {
        self.hbm.page_floats()
    }

    /// Issues queued copies, then appends the transfers whose last page has arrived: those
    /// complete now, or (`wait`) all in flight once they complete.
    fn finish_copies(&mut self, wait: bool, done: &mut Vec<u64>) -> Result<(), RealError> {
        done.append(&mut self.empty_done);
        self.copies.pump(&self.dev, &self.hbm, &mut self.host)?;
        let completed = if wait {
            self.copies.drain()?
        } else {
            self.copies.poll()?
        };
        for c in completed {
            self.tracker
                .complete(&c.hbm_pages, done)
                .map_err(RealError::Runtime)?;
        }
        Ok(())
    }
}

impl Device for CudaShardDevice {
    fn name(&self) -> String {
        format!("{} (sm_{})", self.dev.name(), self.dev.sm())
    }

    fn page_bytes(&self) -> usize {
        self.page_floats() * 4
    }

    fn host_page(&self, page: u32) -> Result<&[u8], RealError> {
        Ok(self.host.pages_ref(page, 1)?.as_bytes())
    }

    fn host_page_mut(&mut self, page: u32) -> Result<&mut [u8], RealError> {
        Ok(self.host.pages_mut(page, 1)?.as_mut_bytes())
    }

    fn write_hbm_page(&mut self, page: u32, bytes: &[u8]) -> Result<(), RealError> {
        let floats = floats_of(bytes, self.page_floats())?;
        Ok(self.hbm.write_pages(&self.dev, page, &floats)?)
    }

    fn start_copy(
        &mut self,
        transfer: u64,
        dir: CopyDir,
        on_demand: bool,
        src: &[u32],
        dst: &[u32],
    ) -> Result<(), RealError> {
        let (direction, pages): (Direction, Vec<PageCopy>) = match dir {
            CopyDir::ToHbm => (
                Direction::H2d,
                src.iter()
                    .zip(dst)
                    .map(|(&host, &hbm)| PageCopy { hbm, host })
                    .collect(),
            ),
            CopyDir::ToHost => (
                Direction::D2h,
                src.iter()
                    .zip(dst)
                    .map(|(&hbm, &host)| PageCopy { hbm, host })
                    .collect(),
            ),
        };
        let hbm: Vec<u32> = pages.iter().map(|p| p.hbm).collect();
        if self
            .tracker
            .start(transfer, &hbm)
            .map_err(RealError::Runtime)?
        {
            self.empty_done.push(transfer); // no pages: nothing to wait for
            return Ok(());
        }
        let priority = if on_demand {
            Priority::OnDemand
        } else {
            Priority::Prefetch
        };
        self.copies.submit(direction, priority, &pages)?;
        self.copies.pump(&self.dev, &self.hbm, &mut self.host)?;
        Ok(())
    }

    fn poll_copies(&mut self, done: &mut Vec<u64>) -> Result<(), RealError> {
        self.finish_copies(false, done)
    }

    fn copies_busy(&self) -> bool {
        !self.tracker.is_idle() || !self.empty_done.is_empty()
    }

    fn forward(&mut self, seqs: &[DeviceSeq<'_>]) -> Result<Vec<Vec<f32>>, RealError> {
        // One handle per adapter node, so sequences sharing an adapter share its slot.
        let mut loras: Vec<(fastlibra_alloc::NodeId, DeviceLora)> = Vec::new();
        for s in seqs {
            if loras.iter().any(|(n, _)| *n == s.lora.node) {
                continue;
            }
            let lora = &s.lora.source.lora;
            loras.push((
                s.lora.node,
                DeviceLora {
                    pages: s.lora.pages.to_vec(),
                    layout: LoraStreamLayout::new(self.model.config(), lora.rank()),
                    scale: lora.scale(),
                },
            ));
        }
        let batch: Vec<CudaSeq<'_>> = seqs
            .iter()
            .map(|s| CudaSeq {
                tokens: s.tokens,
                block_table: s.block_table,
                start_pos: s.start_pos,
                lora: loras
                    .iter()
                    .find(|(n, _)| *n == s.lora.node)
                    .map(|(_, l)| l),
            })
            .collect();
        Ok(self
            .model
            .forward_batch(&self.dev, &mut self.hbm, self.block_tokens, &batch)?)
    }

    fn drain(&mut self, done: &mut Vec<u64>) -> Result<(), RealError> {
        self.finish_copies(true, done)
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.tracker.check_invariants()?;
        self.copies.scheduler().check_invariants();
        Ok(())
    }
}

/// A page's bytes as f32 (little-endian, as every tier stores them).
fn floats_of(bytes: &[u8], page_floats: usize) -> Result<Vec<f32>, RealError> {
    if bytes.len() != page_floats * 4 {
        return Err(RealError::Runtime(format!(
            "a page write of {} B; pages are {} B",
            bytes.len(),
            page_floats * 4
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The engine's cost hints measured on GPU `ordinal`, and the GPU's name: a page copy each way
/// through the copy engine (32 pages, pinned), and a 64-token prefill of `model`. NVMe reads
/// are left at 0 for the caller to measure (they do not involve the GPU). Opening the device
/// here first also makes a missing driver or GPU an error before any shard starts.
pub fn cuda_cost_hints(
    ordinal: usize,
    weights: WeightPrecision,
    model: &CpuModel,
    block_tokens: usize,
) -> Result<(CostHints, String), RealError> {
    const PAGES: u32 = 32;
    let mut d = CudaShardDevice::new(ordinal, weights, model, PAGES, PAGES, block_tokens)?;
    let pages: Vec<u32> = (0..PAGES).collect();
    let mut time_copy = |dir: CopyDir, transfer: u64| -> Result<f64, RealError> {
        let start = Instant::now();
        d.start_copy(transfer, dir, true, &pages, &pages)?;
        let mut done = Vec::new();
        d.drain(&mut done)?;
        Ok((start.elapsed().as_nanos() as f64 / f64::from(PAGES)).max(1.0))
    };
    // Once each way to warm up, then measured.
    time_copy(CopyDir::ToHbm, 0)?;
    time_copy(CopyDir::ToHost, 1)?;
    let h2d = time_copy(CopyDir::ToHbm, 2)?;
    let d2h = time_copy(CopyDir::ToHost, 3)?;
    let vocab = model.config().vocab as u32;
    let tokens: Vec<u32> = (0..64).map(|t| t % vocab).collect();
    let table: Vec<u32> = (0..4).collect();
    let seq = [CudaSeq {
        tokens: &tokens,
        block_table: &table,
        start_pos: 0,
        lora: None,
    }];
    d.model
        .forward_batch(&d.dev, &mut d.hbm, block_tokens, &seq)?;
    let start = Instant::now();
    d.model
        .forward_batch(&d.dev, &mut d.hbm, block_tokens, &seq)?;
    let recompute = start.elapsed().as_nanos() as f64 / tokens.len() as f64;
    let hints = CostHints {
        h2d_ns_per_page: h2d,
        d2h_ns_per_page: d2h,
        nvme_read_ns_per_page: 0.0,
        recompute_ns_per_token: recompute,
    };
    Ok((hints, d.name()))
}
