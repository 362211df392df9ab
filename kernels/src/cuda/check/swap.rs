//! Page-swap bandwidth of the copy engine against one plain pinned `cuMemcpyAsync` of the same
//! bytes, both directions, and the overlap of swap-ins with a prefill batch.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::timing::time_on;
use crate::cpu::{CpuModel, CpuModelConfig};
use crate::cuda::copy::CopyEngine;
use crate::cuda::device::CudaDevice;
use crate::cuda::error::{Result, driver};
use crate::cuda::forward::CudaSeq;
use crate::cuda::model::CudaModel;
use crate::cuda::pool::{DevicePagePool, HostPagePool};
use crate::cuda::sched::{Direction, PageCopy, Priority};

/// Floats per page in the swap measurements: 2 MiB, one 16-token KV block of Llama-3-8B in bf16.
const SWAP_PAGE_FLOATS: usize = 512 * 1024;
/// Timed repetitions; the best is kept.
const REPEATS: usize = 3;

/// One direction's swap bandwidth.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bandwidth {
    /// Which way.
    pub direction: Direction,
    /// Pages moved, each to a random page of the other tier (worst case for coalescing).
    pub pages: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// Copy engine (one copy per run), bytes per second.
    pub engine_bytes_per_s: f64,
    /// One plain pinned `cuMemcpyAsync` of all the bytes, bytes per second.
    pub plain_bytes_per_s: f64,
    /// `engine / plain`; the target is at least 0.9.
    pub ratio: f64,
}

/// Prefill compute time with and without swap-ins beside it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Overlap {
    /// Tokens in the prefill batch.
    pub batch_tokens: usize,
    /// Bytes swapped in beside it (about the bytes H2D moves in the batch's time alone).
    pub swap_bytes: u64,
    /// Compute-stream time alone, ms.
    pub alone_ms: f64,
    /// Compute-stream time with the swap-ins running, ms.
    pub with_swap_ms: f64,
    /// `with / alone`; the target is at most 1.1.
    pub ratio: f64,
}

fn pools(dev: &CudaDevice, pages: usize) -> Result<(DevicePagePool, HostPagePool)> {
    Ok((
        DevicePagePool::new(dev, pages, SWAP_PAGE_FLOATS)?,
        HostPagePool::new(dev, pages, SWAP_PAGE_FLOATS)?,
    ))
}

/// Host page `i` ↔ a random HBM page: runs of one page, the engine's worst case.
fn scattered(pages: usize, seed: u64) -> Vec<PageCopy> {
    let mut hbm: Vec<u32> = (0..pages as u32).collect();
    hbm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    hbm.into_iter()
        .enumerate()
        .map(|(i, h)| PageCopy {
            hbm: h,
            host: i as u32,
        })
        .collect()
}

/// Measures both directions with `pages` pages of 2 MiB (256 = 512 MiB; 64 when `quick`).
pub(crate) fn bandwidth(dev: &CudaDevice, quick: bool) -> Result<Vec<Bandwidth>> {
    let pages = if quick { 64 } else { 256 };
    let (hbm, mut host) = pools(dev, pages)?;
    let bytes = (pages * SWAP_PAGE_FLOATS * 4) as u64;
    let mut out = Vec::new();
    for direction in [Direction::H2d, Direction::D2h] {
        let stream = if direction == Direction::H2d {
            &dev.h2d
        } else {
            &dev.d2h
        };
        let (mut engine_ms, mut plain_ms) = (f64::INFINITY, f64::INFINITY);
        for rep in 0..REPEATS {
            let mut engine = CopyEngine::new(pages, pages);
            engine.submit(direction, Priority::OnDemand, &scattered(pages, rep as u64))?;
            let (ms, _) = time_on(dev, stream, || engine.pump(dev, &hbm, &mut host))?;
            engine.drain()?;
            engine_ms = engine_ms.min(ms);
            let dst = hbm.page_ptr(dev, 0)?;
            let all = host.pages_mut(0, pages)?;
            let (ms, _) = time_on(dev, stream, || {
                // SAFETY: both ranges are whole pools of the same size; the stream is
                // synchronised by `time_on` before the pools can be touched again.
                unsafe {
                    match direction {
                        Direction::H2d => {
                            cudarc::driver::result::memcpy_htod_async(dst, all, stream.cu_stream())
                        }
                        Direction::D2h => {
                            cudarc::driver::result::memcpy_dtoh_async(all, dst, stream.cu_stream())
                        }
                    }
                }
                .map_err(driver("plain copy"))
            })?;
            plain_ms = plain_ms.min(ms);
        }
        let rate = |ms: f64| bytes as f64 / (ms / 1e3);
        out.push(Bandwidth {
            direction,
            pages,
            bytes,
            engine_bytes_per_s: rate(engine_ms),
            plain_bytes_per_s: rate(plain_ms),
            ratio: plain_ms / engine_ms,
        });
    }
    Ok(out)
}

/// Times a prefill batch of the synthetic model alone, then with swap-ins of about the bytes
/// H2D moves in that time issued just before it on the H2D stream.
pub(crate) fn overlap(dev: &CudaDevice, quick: bool) -> Result<Overlap> {
    let config = CpuModelConfig::default();
    let model = CudaModel::from_cpu(dev, &CpuModel::random(config.clone(), 3)?)?;
    let (seqs, len, bt) = (if quick { 4 } else { 8 }, 512usize, 16usize);
    let per_seq = len / bt;
    let mut pool = DevicePagePool::new(dev, seqs * per_seq, config.page_floats(bt))?;
    let tokens: Vec<Vec<u32>> = (0..seqs)
        .map(|s| {
            (0..len as u32)
                .map(|t| (t * 31 + s as u32) % 1024)
                .collect()
        })
        .collect();
    let tables: Vec<Vec<u32>> = (0..seqs)
        .map(|s| {
            (0..per_seq as u32)
                .map(|b| (s * per_seq) as u32 + b)
                .collect()
        })
        .collect();
    let batch: Vec<CudaSeq<'_>> = (0..seqs)
        .map(|s| CudaSeq {
            tokens: &tokens[s],
            block_table: &tables[s],
            start_pos: 0,
            lora: None,
        })
        .collect();
    model.forward_batch(dev, &mut pool, bt, &batch)?; // warm-up
    let mut alone_ms = f64::INFINITY;
    for _ in 0..REPEATS {
        let (ms, _) = time_on(dev, &dev.compute, || {
            model.forward_batch(dev, &mut pool, bt, &batch)
        })?;
        alone_ms = alone_ms.min(ms);
    }
    // Bytes the H2D link moves in `alone_ms` at ~50 GB/s, at least one page.
    let swap_pages = ((alone_ms / 1e3 * 50e9) as usize / (SWAP_PAGE_FLOATS * 4)).clamp(1, 2048);
    let (hbm, mut host) = pools(dev, swap_pages)?;
    let mut with_swap_ms = f64::INFINITY;
    for rep in 0..REPEATS {
        let mut engine = CopyEngine::new(swap_pages, swap_pages);
        engine.submit(
            Direction::H2d,
            Priority::Prefetch,
            &scattered(swap_pages, rep as u64),
        )?;
        engine.pump(dev, &hbm, &mut host)?;
        let (ms, _) = time_on(dev, &dev.compute, || {
            model.forward_batch(dev, &mut pool, bt, &batch)
        })?;
        engine.drain()?;
        with_swap_ms = with_swap_ms.min(ms);
    }
    dev.synchronize()?;
    Ok(Overlap {
        batch_tokens: seqs * len,
        swap_bytes: (swap_pages * SWAP_PAGE_FLOATS * 4) as u64,
        alone_ms,
        with_swap_ms,
        ratio: with_swap_ms / alone_ms,
    })
}
