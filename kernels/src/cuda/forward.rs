//! The forward pass on the GPU, step for step the CPU reference's
//! ([`CpuModel::forward_batch`](crate::cpu::CpuModel::forward_batch)): a ragged batch of
//! sequences, each with its own pages and its own adapter (or none), all rows through each
//! kernel together.

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::device::CudaDevice;
use super::error::{CudaError, Result, driver, invalid};
use super::model::{CudaModel, DeviceLora};
use super::pool::DevicePagePool;
use crate::cpu::CpuError;
use crate::cpu::check::{SeqPages, check_conflicts};

/// One sequence of a batch: new `tokens` at positions `start_pos..`, KV in the pool pages of
/// `block_table` (block `i` = positions `i·B..(i+1)·B`), adapter `lora` or the base model.
#[derive(Clone, Copy, Debug)]
pub struct CudaSeq<'a> {
    /// Token ids of the new positions (at least one).
    pub tokens: &'a [u32],
    /// Pool pages of the sequence's blocks, covering `start_pos + tokens.len()` positions.
    pub block_table: &'a [u32],
    /// Positions already cached.
    pub start_pos: usize,
    /// The adapter on q, k, v, o, resident in the same pool.
    pub lora: Option<&'a DeviceLora>,
}

/// Per-row and per-adapter index arrays of one pass, on the host.
#[derive(Default)]
struct HostMeta {
    tokens: Vec<u32>,
    positions: Vec<u32>,
    table_start: Vec<u32>,
    tables: Vec<u32>,
    row_adapter: Vec<i32>,
    ad_rank: Vec<u32>,
    ad_scale: Vec<f32>,
    ad_table: Vec<u32>,
    last_rows: Vec<u32>,
    max_rank: usize,
    slice_floats: usize,
}

/// The same arrays on the device.
pub(crate) struct Meta {
    pub tokens: CudaSlice<u32>,
    pub positions: CudaSlice<u32>,
    pub table_start: CudaSlice<u32>,
    pub tables: CudaSlice<u32>,
    pub row_adapter: CudaSlice<i32>,
    pub ad_rank: CudaSlice<u32>,
    pub ad_scale: CudaSlice<f32>,
    pub ad_table: CudaSlice<u32>,
    pub last_rows: CudaSlice<u32>,
}

/// Activations of one pass.
pub(crate) struct Scratch {
    pub x: CudaSlice<f32>,
    pub h: CudaSlice<f32>,
    pub q: CudaSlice<f32>,
    pub k: CudaSlice<f32>,
    pub v: CudaSlice<f32>,
    pub attn: CudaSlice<f32>,
    pub gate: CudaSlice<f32>,
    pub up: CudaSlice<f32>,
    pub down: CudaSlice<f32>,
    pub last: CudaSlice<f32>,
    pub last_norm: CudaSlice<f32>,
    pub logits: CudaSlice<f32>,
}

/// What every layer of a pass reads besides the activations.
pub(crate) struct LayerMeta<'a> {
    /// Rows (new tokens) in the batch.
    pub rows: usize,
    /// Largest adapter rank in the batch (0: no adapter, LoRA kernels skipped).
    pub max_rank: usize,
    /// Floats of one rank slice of an adapter stream.
    pub slice_floats: usize,
    /// The index arrays on the device.
    pub dev: &'a Meta,
}

pub(crate) fn u32_of(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| invalid(format!("{v} does not fit a kernel's 32-bit index")))
}

pub(crate) fn grid(x: usize, y: usize, block: u32) -> Result<LaunchConfig> {
    Ok(LaunchConfig {
        grid_dim: (u32_of(x.max(1))?, u32_of(y.max(1))?, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    })
}

impl CudaModel {
    /// Runs every sequence of `seqs` in one pass over `pool` (pages of
    /// `config.page_floats(block_tokens)` floats) and returns each one's last-token logits.
    /// Same checks, semantics and page layout as the CPU backend; an error leaves the pool
    /// untouched.
    pub fn forward_batch(
        &self,
        dev: &CudaDevice,
        pool: &mut DevicePagePool,
        block_tokens: usize,
        seqs: &[CudaSeq<'_>],
    ) -> Result<Vec<Vec<f32>>> {
        let host = self.check_and_index(pool, block_tokens, seqs)?;
        let rows = host.tokens.len();
        let up = |v: &[u32]| dev.compute.clone_htod(v).map_err(driver("index upload"));
        let meta = Meta {
            tokens: up(&host.tokens)?,
            positions: up(&host.positions)?,
            table_start: up(&host.table_start)?,
            tables: up(&host.tables)?,
            row_adapter: dev
                .compute
                .clone_htod(&host.row_adapter)
                .map_err(driver("index upload"))?,
            ad_rank: up(&host.ad_rank)?,
            ad_scale: dev
                .compute
                .clone_htod(&host.ad_scale)
                .map_err(driver("index upload"))?,
            ad_table: up(&host.ad_table)?,
            last_rows: up(&host.last_rows)?,
        };
        let mut s = self.scratch(dev, rows, seqs.len(), host.max_rank)?;
        self.launch_gather_rows(
            dev,
            &self.embed,
            &meta.tokens,
            &mut s.x,
            rows,
            self.config.hidden,
        )?;
        let lm = LayerMeta {
            rows,
            max_rank: host.max_rank,
            slice_floats: host.slice_floats,
            dev: &meta,
        };
        for layer in 0..self.config.layers {
            self.run_layer(dev, pool, block_tokens, layer, &lm, &mut s)?;
        }
        let c = &self.config;
        self.launch_gather_rows(
            dev,
            &s.x,
            &meta.last_rows,
            &mut s.last,
            seqs.len(),
            c.hidden,
        )?;
        self.launch_rms_norm(dev, &s.last, &self.final_norm, &mut s.last_norm, seqs.len())?;
        self.launch_gemm(
            dev,
            &s.last_norm,
            &self.lm_head,
            &mut s.logits,
            seqs.len(),
            c.vocab,
            c.hidden,
            false,
        )?;
        let logits = dev
            .compute
            .clone_dtoh(&s.logits)
            .map_err(driver("logits download"))?;
        dev.compute.synchronize().map_err(driver("forward sync"))?;
        Ok(logits.chunks(c.vocab).map(<[f32]>::to_vec).collect())
    }

    /// The scratch buffers of a pass of `rows` rows and `seqs` sequences, NaN-filled when
    /// [`CudaModel::poison`] is set.
    fn scratch(
        &self,
        dev: &CudaDevice,
        rows: usize,
        seqs: usize,
        max_rank: usize,
    ) -> Result<Scratch> {
        let c = &self.config;
        let alloc = |n: usize| {
            // SAFETY: every buffer is written by a kernel before it is read (or poisoned
            // right below, so a read before a write shows up as NaN in the output).
            unsafe { dev.compute.alloc::<f32>(n.max(1)) }.map_err(super::error::alloc_error(
                "device",
                "activations",
                (n * 4) as u64,
            ))
        };
        let mut s = Scratch {
            x: alloc(rows * c.hidden)?,
            h: alloc(rows * c.hidden)?,
            q: alloc(rows * c.q_dim())?,
            k: alloc(rows * c.kv_dim())?,
            v: alloc(rows * c.kv_dim())?,
            attn: alloc(rows * c.q_dim())?,
            gate: alloc(rows * c.ffn)?,
            up: alloc(rows * c.ffn)?,
            down: alloc(rows * max_rank)?,
            last: alloc(seqs * c.hidden)?,
            last_norm: alloc(seqs * c.hidden)?,
            logits: alloc(seqs * c.vocab)?,
        };
        if self.poison {
            for buf in [
                &mut s.x,
                &mut s.h,
                &mut s.q,
                &mut s.k,
                &mut s.v,
                &mut s.attn,
                &mut s.gate,
                &mut s.up,
                &mut s.down,
                &mut s.last,
                &mut s.last_norm,
                &mut s.logits,
            ] {
                self.launch_fill(dev, buf, f32::NAN)?;
            }
        }
        Ok(s)
    }

    /// Checks the batch like the CPU backend does and builds the index arrays.
    fn check_and_index(
        &self,
        pool: &DevicePagePool,
        block_tokens: usize,
        seqs: &[CudaSeq<'_>],
    ) -> Result<HostMeta> {
        let c = &self.config;
        let expected = c.page_floats(block_tokens);
        if block_tokens == 0 || pool.page_floats() != expected {
            return Err(CpuError::PageSize {
                expected,
                got: pool.page_floats(),
            }
            .into());
        }
        if seqs.is_empty() {
            return Err(invalid("a pass needs at least one sequence"));
        }
        let in_pool = |seq: usize, page: u32| {
            if (page as usize) < pool.pages() {
                Ok(())
            } else {
                Err(CudaError::from(CpuError::PageOutOfRange {
                    seq,
                    page,
                    pages: pool.pages(),
                }))
            }
        };
        let mut m = HostMeta::default();
        let mut uses: Vec<(u32, usize, bool)> = Vec::new();
        let mut adapters: Vec<&DeviceLora> = Vec::new();
        for (seq, s) in seqs.iter().enumerate() {
            let positions = s.start_pos + s.tokens.len();
            let table = SeqPages {
                seq,
                tokens: s.tokens,
                start_pos: s.start_pos,
                block_table: s.block_table,
            }
            .check(c, block_tokens, pool.pages(), &mut uses)?;
            let slot = match s.lora {
                None => -1,
                Some(l) => {
                    if l.layout != super::lora_pages::LoraStreamLayout::new(c, l.layout.rank)
                        || l.layout.rank == 0
                    {
                        return Err(CpuError::LoraShape {
                            reason: "adapter built for another model".into(),
                        }
                        .into());
                    }
                    l.pages.iter().try_for_each(|&p| in_pool(seq, p))?;
                    match adapters.iter().position(|a| std::ptr::eq(*a, l)) {
                        Some(i) => i as i32,
                        None => {
                            adapters.push(l);
                            (adapters.len() - 1) as i32
                        }
                    }
                }
            };
            m.table_start
                .extend(std::iter::repeat_n(u32_of(m.tables.len())?, s.tokens.len()));
            m.tables.extend_from_slice(table);
            m.tokens.extend_from_slice(s.tokens);
            for p in s.start_pos..positions {
                m.positions.push(u32_of(p)?);
            }
            m.row_adapter
                .extend(std::iter::repeat_n(slot, s.tokens.len()));
            m.last_rows.push(u32_of(m.tokens.len() - 1)?);
        }
        check_conflicts(uses)?;
        for a in &adapters {
            m.ad_rank.push(u32_of(a.layout.rank)?);
            m.ad_scale.push(a.scale);
            m.ad_table.push(u32_of(m.tables.len())?);
            m.tables.extend_from_slice(&a.pages);
            m.max_rank = m.max_rank.max(a.layout.rank);
        }
        m.slice_floats = super::lora_pages::LoraStreamLayout::new(c, 1).slice_floats;
        // Kernels take these arrays even when no row has an adapter.
        for v in [&mut m.ad_rank, &mut m.ad_table] {
            if v.is_empty() {
                v.push(0);
            }
        }
        if m.ad_scale.is_empty() {
            m.ad_scale.push(0.0);
        }
        Ok(m)
    }
}
