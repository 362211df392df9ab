//! Cost hints measured on this machine at start-up, so the engine's swap decisions weigh the
//! real costs of copying, reading NVMe and recomputing.

use std::path::Path;
use std::time::Instant;

use fastlibra_kernels::cpu::{CpuModel, KvArena};

use super::arena::{self, HostArena};
use super::error::RealError;
use super::shard::BLOCK_TOKENS;
use super::spill::SpillDir;
use crate::engine::CostHints;
use crate::io::PageFile;

const PAGES: u32 = 32;

/// Opens the NVMe tier's folder and measures the cost hints in it. On a GPU the device's own
/// copy and compute hints (`cuda`) replace the CPU's, and only the NVMe read time is kept from
/// this machine's measurement.
pub fn spill_and_costs(
    spill_dir: Option<&Path>,
    model: &CpuModel,
    cuda: Option<CostHints>,
) -> Result<(SpillDir, CostHints), RealError> {
    let spill = SpillDir::new(spill_dir).map_err(|source| RealError::Spill {
        path: spill_dir.map(Path::to_path_buf).unwrap_or_default(),
        source,
    })?;
    let measured = calibrate(model, spill.path())?;
    let costs = match cuda {
        Some(hints) => CostHints {
            nvme_read_ns_per_page: measured.nvme_read_ns_per_page,
            ..hints
        },
        None => measured,
    };
    Ok((spill, costs))
}

/// Times a page copy each way, a page read from a page file in `spill_dir`, and a prefill.
pub fn calibrate(model: &CpuModel, spill_dir: &Path) -> Result<CostHints, RealError> {
    let config = model.config();
    let block = BLOCK_TOKENS as usize;
    let page_floats = config.page_floats(block);
    let page_bytes = page_floats * 4;
    let mut hbm = KvArena::new(PAGES as usize, page_floats, block)?;
    let mut host = HostArena::new(PAGES, page_bytes);
    let pages: Vec<u32> = (0..PAGES).collect();
    let start = Instant::now();
    arena::host_to_hbm(&host, &mut hbm, &pages, &pages);
    let h2d = per_page(start);
    let start = Instant::now();
    arena::hbm_to_host(&hbm, &mut host, &pages, &pages);
    let d2h = per_page(start);

    let mut file = PageFile::create(spill_dir, page_bytes, PAGES, 8)?;
    let writes: Vec<(u32, &[u8])> = pages.iter().map(|&p| (p, host.page(p))).collect();
    file.write_pages(&writes)?;
    let mut bufs: Vec<Vec<u8>> = (0..PAGES).map(|_| vec![0; page_bytes]).collect();
    let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let start = Instant::now();
    file.read_pages(&pages, &mut outs)?;
    let nvme = per_page(start);

    let tokens: Vec<u32> = (0..64).map(|t| t % config.vocab as u32).collect();
    let mut scratch = KvArena::for_model(config, block, 4)?;
    let start = Instant::now();
    model.prefill(&mut scratch, &tokens, &[0, 1, 2, 3], 0, None)?;
    let recompute = start.elapsed().as_nanos() as f64 / tokens.len() as f64;
    Ok(CostHints {
        h2d_ns_per_page: h2d,
        d2h_ns_per_page: d2h,
        nvme_read_ns_per_page: nvme,
        recompute_ns_per_token: recompute,
    })
}

fn per_page(start: Instant) -> f64 {
    (start.elapsed().as_nanos() as f64 / f64::from(PAGES)).max(1.0)
}
