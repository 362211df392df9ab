//! The kernels against the CPU reference: a prefill batch mixing two adapters and the base
//! model, then a decode step of each sequence over the cached pages, with every output and
//! every unwritten page slot poisoned with NaN first. Plus the page gather/scatter kernels.

use cudarc::driver::PushKernelArg;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cpu::{CpuLora, CpuModel, CpuModelConfig, KvArena, SeqInput};
use crate::cuda::device::CudaDevice;
use crate::cuda::error::{Result, driver};
use crate::cuda::forward::{CudaSeq, grid};
use crate::cuda::model::{CudaModel, WeightPrecision};
use crate::cuda::pool::DevicePagePool;

/// Largest relative error fp32 may show against the CPU reference.
pub const FP32_TOLERANCE: f64 = 1e-3;
/// Largest relative error the bf16-weight model may show against the fp32 CPU reference.
pub const BF16_TOLERANCE: f64 = 1e-2;
const BLOCK_TOKENS: usize = 16;
const PAGES_PER_SEQ: u32 = 4;

/// What the kernel check found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelCheck {
    /// max |gpu − cpu| / max |cpu| over the prefill logits (∞ on a NaN).
    pub prefill_rel_error: f64,
    /// The same over the decode step's logits.
    pub decode_rel_error: f64,
    /// The prefill with bf16 GEMM weights, against the same fp32 CPU reference.
    pub bf16_prefill_rel_error: f64,
    /// The decode step with bf16 GEMM weights.
    pub bf16_decode_rel_error: f64,
    /// The bound the bf16 errors are held to.
    pub bf16_tolerance: f64,
    /// Whether gather then scatter moved pages exactly.
    pub gather_scatter_exact: bool,
    /// The bound the errors are held to.
    pub tolerance: f64,
    /// Whether everything held.
    pub passed: bool,
}

/// max |a − b| / max |b|; infinite when `a` holds a NaN or the lengths differ.
pub fn rel_error(gpu: &[Vec<f32>], cpu: &[Vec<f32>]) -> f64 {
    let (mut diff, mut scale) = (0f64, 0f64);
    if gpu.len() != cpu.len() {
        return f64::INFINITY;
    }
    for (g, c) in gpu.iter().zip(cpu) {
        if g.len() != c.len() || g.iter().any(|v| !v.is_finite()) {
            return f64::INFINITY;
        }
        for (x, y) in g.iter().zip(c) {
            diff = diff.max(f64::from(x - y).abs());
            scale = scale.max(f64::from(*y).abs());
        }
    }
    diff / scale.max(f64::MIN_POSITIVE)
}

/// max |a − b| over all values; infinite when `a` holds a NaN or the lengths differ.
pub fn max_abs_diff(gpu: &[Vec<f32>], cpu: &[Vec<f32>]) -> f64 {
    if gpu.len() != cpu.len() {
        return f64::INFINITY;
    }
    let mut diff = 0f64;
    for (g, c) in gpu.iter().zip(cpu) {
        if g.len() != c.len() || g.iter().any(|v| !v.is_finite()) {
            return f64::INFINITY;
        }
        for (x, y) in g.iter().zip(c) {
            diff = diff.max(f64::from(x - y).abs());
        }
    }
    diff
}

/// Runs the check on the default synthetic model, with fp32 and with bf16 GEMM weights.
pub(crate) fn run(dev: &CudaDevice) -> Result<KernelCheck> {
    let config = CpuModelConfig::default();
    let cpu = CpuModel::random(config.clone(), 11)?;
    let mut gpu = CudaModel::from_cpu(dev, &cpu)?;
    gpu.poison = true;
    let (prefill_rel_error, decode_rel_error, mut pool, kv_pages) = compare(dev, &cpu, &gpu)?;
    let gather_scatter_exact = gather_scatter(dev, &gpu, &mut pool, kv_pages)?;
    drop((gpu, pool));
    let mut bf16 = CudaModel::from_cpu_with(dev, &cpu, WeightPrecision::Bf16)?;
    bf16.poison = true;
    let (bf16_prefill_rel_error, bf16_decode_rel_error, _, _) = compare(dev, &cpu, &bf16)?;
    let passed = prefill_rel_error < FP32_TOLERANCE
        && decode_rel_error < FP32_TOLERANCE
        && bf16_prefill_rel_error < BF16_TOLERANCE
        && bf16_decode_rel_error < BF16_TOLERANCE
        && gather_scatter_exact;
    Ok(KernelCheck {
        prefill_rel_error,
        decode_rel_error,
        bf16_prefill_rel_error,
        bf16_decode_rel_error,
        bf16_tolerance: BF16_TOLERANCE,
        gather_scatter_exact,
        tolerance: FP32_TOLERANCE,
        passed,
    })
}

/// A prefill batch mixing two adapters and the base model, then a decode step of each, on
/// `gpu` and on the CPU reference `cpu`; returns both relative errors, the pool and the count
/// of KV pages at its start.
fn compare(
    dev: &CudaDevice,
    cpu: &CpuModel,
    gpu: &CudaModel,
) -> Result<(f64, f64, DevicePagePool, u32)> {
    let config = cpu.config().clone();
    let pf = config.page_floats(BLOCK_TOKENS);
    let loras = [
        CpuLora::random(&config, 8, 2.0, 1)?,
        CpuLora::random(&config, 16, 0.5, 2)?,
    ];
    let lens = [40usize, 23, 17];
    let kv_pages = PAGES_PER_SEQ * lens.len() as u32;
    let lora_pages: Vec<usize> = loras.iter().map(|l| gpu.lora_pages(l.rank(), pf)).collect();
    let pages = kv_pages as usize + lora_pages.iter().sum::<usize>() + 4;
    let mut pool = DevicePagePool::new(dev, pages, pf)?;
    // Poison every page: a read of a KV slot nobody wrote turns the logits into NaN.
    let nan = vec![f32::NAN; pf];
    for p in 0..pages as u32 {
        pool.write_pages(dev, p, &nan)?;
    }
    let mut next = kv_pages;
    let mut dev_loras = Vec::new();
    for (l, n) in loras.iter().zip(&lora_pages) {
        let ids: Vec<u32> = (next..next + *n as u32).collect();
        next += *n as u32;
        dev_loras.push(gpu.load_lora(dev, &mut pool, l, &ids)?);
    }
    let mut arena = KvArena::for_model(&config, BLOCK_TOKENS, pages)?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let tokens: Vec<Vec<u32>> = lens
        .iter()
        .map(|&n| {
            (0..n)
                .map(|_| rng.random_range(0..config.vocab as u32))
                .collect()
        })
        .collect();
    // Pages in reverse order, so a block's page is never its neighbour's.
    let tables: Vec<Vec<u32>> = (0..lens.len() as u32)
        .map(|s| {
            (0..PAGES_PER_SEQ)
                .map(|b| kv_pages - 1 - (s * PAGES_PER_SEQ + b))
                .collect()
        })
        .collect();
    let adapter = |s: usize| [Some(0), Some(1), None][s];
    let cpu_seqs: Vec<SeqInput<'_>> = (0..lens.len())
        .map(|s| SeqInput {
            tokens: &tokens[s],
            block_table: &tables[s],
            start_pos: 0,
            lora: adapter(s).map(|a| &loras[a]),
        })
        .collect();
    let gpu_seqs: Vec<CudaSeq<'_>> = (0..lens.len())
        .map(|s| CudaSeq {
            tokens: &tokens[s],
            block_table: &tables[s],
            start_pos: 0,
            lora: adapter(s).map(|a| &dev_loras[a]),
        })
        .collect();
    let want = cpu.forward_batch(&mut arena, &cpu_seqs)?;
    let got = gpu.forward_batch(dev, &mut pool, BLOCK_TOKENS, &gpu_seqs)?;
    let prefill_rel_error = rel_error(&got, &want);
    let next_tokens: Vec<[u32; 1]> = (0..lens.len())
        .map(|s| [(s as u32 * 7 + 3) % config.vocab as u32])
        .collect();
    let cpu_dec: Vec<SeqInput<'_>> = cpu_seqs
        .iter()
        .zip(&next_tokens)
        .map(|(s, t)| SeqInput {
            tokens: t,
            start_pos: s.tokens.len(),
            ..*s
        })
        .collect();
    let gpu_dec: Vec<CudaSeq<'_>> = gpu_seqs
        .iter()
        .zip(&next_tokens)
        .map(|(s, t)| CudaSeq {
            tokens: t,
            start_pos: s.tokens.len(),
            ..*s
        })
        .collect();
    let want = cpu.forward_batch(&mut arena, &cpu_dec)?;
    let got = gpu.forward_batch(dev, &mut pool, BLOCK_TOKENS, &gpu_dec)?;
    let decode_rel_error = rel_error(&got, &want);
    Ok((prefill_rel_error, decode_rel_error, pool, kv_pages))
}

/// Writes known values into pages 0..3, gathers them (in the order 2, 0, 1) into a staging
/// buffer, scatters that into the pages `base..base+3` and checks both against the host copy.
fn gather_scatter(
    dev: &CudaDevice,
    model: &CudaModel,
    pool: &mut DevicePagePool,
    base: u32,
) -> Result<bool> {
    let pf = pool.page_floats();
    let data: Vec<f32> = (0..3 * pf).map(|i| i as f32 * 0.5 - 7.0).collect();
    pool.write_pages(dev, 0, &data)?;
    let order = [2u32, 0, 1];
    let ids = dev
        .compute
        .clone_htod(&order)
        .map_err(driver("index upload"))?;
    // SAFETY: written by `gather_pages` before it is read.
    let mut staging = unsafe { dev.compute.alloc::<f32>(3 * pf) }.map_err(driver("staging"))?;
    let (n, vec4) = (3u32, (pf / 4) as u64);
    let mut l = dev
        .compute
        .launch_builder(model.kernels.get("gather_pages")?);
    l.arg(&pool.buf)
        .arg(&ids)
        .arg(&mut staging)
        .arg(&n)
        .arg(&vec4);
    // SAFETY: matches `gather_pages` in copy.cu; pages 0..3 lie in the pool.
    unsafe { l.launch(grid(3, 1, 256)?) }.map_err(driver("gather_pages"))?;
    let gathered = dev
        .compute
        .clone_dtoh(&staging)
        .map_err(driver("staging read"))?;
    dev.compute.synchronize().map_err(driver("sync"))?;
    let expect: Vec<f32> = order
        .iter()
        .flat_map(|&p| data[p as usize * pf..][..pf].to_vec())
        .collect();
    let dst = [base, base + 1, base + 2];
    let dst_ids = dev
        .compute
        .clone_htod(&dst)
        .map_err(driver("index upload"))?;
    let mut l = dev
        .compute
        .launch_builder(model.kernels.get("scatter_pages")?);
    l.arg(&staging)
        .arg(&dst_ids)
        .arg(&mut pool.buf)
        .arg(&n)
        .arg(&vec4);
    // SAFETY: matches `scatter_pages` in copy.cu; the three pages lie in the pool.
    unsafe { l.launch(grid(3, 1, 256)?) }.map_err(driver("scatter_pages"))?;
    let mut scattered = Vec::new();
    for p in dst {
        scattered.extend(pool.read_page(dev, p)?);
    }
    Ok(gathered == expect && scattered == expect)
}
