//! The forward pass over a ragged batch: every sequence's new tokens go through the
//! projections together (one pass over each weight matrix), each with its own adapter, and
//! each attends to its own pages.

use super::attention::{AttnScratch, SeqKv, attend_seq};
use super::check::check_batch;
use super::error::Result;
use super::gemm::{matmul, matmul_t};
use super::kv::{KvArena, KvLayout};
use super::lora::CpuLora;
use super::ops::{RopeTable, rms_norm_into, swiglu};
use super::weights::{CpuModel, Matrix};
use crate::model::LoraTarget;

/// One sequence of a batch: new tokens at positions `start_pos..start_pos + tokens.len()`.
#[derive(Clone, Copy, Debug)]
pub struct SeqInput<'a> {
    /// Token ids of the new positions (at least one, each below the vocabulary size).
    pub tokens: &'a [u32],
    /// Page ids of the sequence's blocks, block `i` holding positions
    /// `i·block_tokens..(i+1)·block_tokens`; must cover `start_pos + tokens.len()` positions.
    /// Pages of positions below `start_pos` are read as cached KV; the rest are written.
    pub block_table: &'a [u32],
    /// Positions already cached in the pages.
    pub start_pos: usize,
    /// The adapter applied to the projections it targets, or none for the base model.
    pub lora: Option<&'a CpuLora>,
}

/// The rows of the batch each sequence owns, and everything shared by all layers.
struct Batch<'s, 'a> {
    seqs: &'s [SeqInput<'a>],
    /// `row_start[s]..row_start[s + 1]` are sequence `s`'s rows.
    row_start: Vec<usize>,
    rope: RopeTable,
}

impl Batch<'_, '_> {
    fn rows(&self, seq: usize) -> std::ops::Range<usize> {
        self.row_start[seq]..self.row_start[seq + 1]
    }
}

/// Activations of one pass, allocated once and reused by every layer.
#[derive(Default)]
struct Scratch {
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// `x · A` of one sequence's LoRA term.
    lora: Vec<f32>,
    attention: AttnScratch,
}

impl CpuModel {
    /// Computes `tokens` at positions `start_pos..`, reading the KV of positions below
    /// `start_pos` from the pages of `block_table` and writing the new tokens' KV into them.
    /// Returns the logits of the last token.
    pub fn prefill(
        &self,
        arena: &mut KvArena,
        tokens: &[u32],
        block_table: &[u32],
        start_pos: usize,
        lora: Option<&CpuLora>,
    ) -> Result<Vec<f32>> {
        let seq = SeqInput {
            tokens,
            block_table,
            start_pos,
            lora,
        };
        Ok(self.forward_batch(arena, &[seq])?.swap_remove(0))
    }

    /// One decode step: [`CpuModel::prefill`] of the single token at position `pos`.
    pub fn decode(
        &self,
        arena: &mut KvArena,
        token: u32,
        block_table: &[u32],
        pos: usize,
        lora: Option<&CpuLora>,
    ) -> Result<Vec<f32>> {
        self.prefill(arena, &[token], block_table, pos, lora)
    }

    /// Runs every sequence of `seqs` in one pass (each with its own adapter, or none, and its
    /// own pages) and returns each one's last-token logits. Sequences may share read-only
    /// prefix pages; a page written by one block may not be used by any other.
    pub fn forward_batch(
        &self,
        arena: &mut KvArena,
        seqs: &[SeqInput<'_>],
    ) -> Result<Vec<Vec<f32>>> {
        self.run(arena, seqs, false)
    }

    /// Like [`CpuModel::forward_batch`], but returns the logits of every new position of each
    /// sequence (`tokens.len() × vocab`, row-major).
    pub fn forward_batch_all(
        &self,
        arena: &mut KvArena,
        seqs: &[SeqInput<'_>],
    ) -> Result<Vec<Vec<f32>>> {
        self.run(arena, seqs, true)
    }

    fn run(&self, arena: &mut KvArena, seqs: &[SeqInput<'_>], all: bool) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let layout = KvLayout::new(c, arena)?;
        check_batch(c, arena, seqs)?;
        let mut row_start = vec![0];
        let mut positions = Vec::new();
        let mut x = Vec::new();
        for s in seqs {
            positions.extend(s.start_pos..s.start_pos + s.tokens.len());
            row_start.push(positions.len());
            for &t in s.tokens {
                x.extend_from_slice(self.embed.row(t as usize));
            }
        }
        let batch = Batch {
            seqs,
            row_start,
            rope: RopeTable::new(c.head_dim, c.rope_theta, positions),
        };
        let mut scratch = Scratch::default();
        for layer in 0..c.layers {
            self.layer(layer, &batch, &layout, arena, &mut x, &mut scratch);
        }
        Ok(self.logits(&batch, &x, all))
    }

    /// One decoder layer over all rows of the batch, updating the residual stream `x`.
    fn layer(
        &self,
        layer: usize,
        batch: &Batch<'_, '_>,
        layout: &KvLayout,
        arena: &mut KvArena,
        x: &mut [f32],
        s: &mut Scratch,
    ) {
        let c = &self.config;
        let w = &self.layers[layer];
        let rows = x.len() / c.hidden;
        let fit = |buf: &mut Vec<f32>, width: usize| buf.resize(rows * width, 0.0);
        fit(&mut s.h, c.hidden);
        rms_norm_into(x, &w.attn_norm, c.rms_eps, &mut s.h);
        let [wq, wk, wv, wo] = &w.attn;
        fit(&mut s.q, c.q_dim());
        fit(&mut s.k, c.kv_dim());
        fit(&mut s.v, c.kv_dim());
        self.project(
            layer,
            LoraTarget::Q,
            wq,
            batch,
            &s.h,
            &mut s.q,
            false,
            &mut s.lora,
        );
        self.project(
            layer,
            LoraTarget::K,
            wk,
            batch,
            &s.h,
            &mut s.k,
            false,
            &mut s.lora,
        );
        self.project(
            layer,
            LoraTarget::V,
            wv,
            batch,
            &s.h,
            &mut s.v,
            false,
            &mut s.lora,
        );
        for r in 0..rows {
            batch.rope.apply(r, &mut s.q[r * c.q_dim()..][..c.q_dim()]);
            batch
                .rope
                .apply(r, &mut s.k[r * c.kv_dim()..][..c.kv_dim()]);
        }
        write_kv(layer, batch, layout, arena, &s.k, &s.v);
        fit(&mut s.attn, c.q_dim());
        for (i, seq) in batch.seqs.iter().enumerate() {
            let r = batch.rows(i);
            let kv = SeqKv {
                table: seq.block_table,
                start_pos: seq.start_pos,
            };
            let (q, out) = (&s.q[r.start * c.q_dim()..r.end * c.q_dim()], &mut s.attn);
            let out = &mut out[r.start * c.q_dim()..r.end * c.q_dim()];
            attend_seq(
                c,
                layout,
                arena.data(),
                &kv,
                layer,
                q,
                out,
                &mut s.attention,
            );
        }
        self.project(
            layer,
            LoraTarget::O,
            wo,
            batch,
            &s.attn,
            x,
            true,
            &mut s.lora,
        );
        rms_norm_into(x, &w.ffn_norm, c.rms_eps, &mut s.h);
        fit(&mut s.gate, c.ffn);
        fit(&mut s.up, c.ffn);
        self.project(
            layer,
            LoraTarget::Gate,
            &w.gate,
            batch,
            &s.h,
            &mut s.gate,
            false,
            &mut s.lora,
        );
        self.project(
            layer,
            LoraTarget::Up,
            &w.up,
            batch,
            &s.h,
            &mut s.up,
            false,
            &mut s.lora,
        );
        swiglu(&mut s.gate, &s.up);
        self.project(
            layer,
            LoraTarget::Down,
            &w.down,
            batch,
            &s.gate,
            x,
            true,
            &mut s.lora,
        );
    }

    /// `out (+)= input · Wᵀ + input · A · B · scale` for projection `target`: one product over
    /// all rows of the batch for the base weight, then each sequence's LoRA term with its own
    /// adapter. `lora` is scratch.
    #[allow(clippy::too_many_arguments)]
    fn project(
        &self,
        layer: usize,
        target: LoraTarget,
        w: &Matrix,
        batch: &Batch<'_, '_>,
        input: &[f32],
        out: &mut [f32],
        accumulate: bool,
        lora: &mut Vec<f32>,
    ) {
        let (inner, cols) = (w.cols, w.rows);
        matmul_t(input, w.as_slice(), out, inner, cols, accumulate);
        for (s, seq) in batch.seqs.iter().enumerate() {
            let Some(adapter) = seq.lora else { continue };
            let Some(pair) = adapter.pair(layer, target) else {
                continue;
            };
            let (rows, rank) = (batch.rows(s), adapter.rank());
            lora.resize(rows.len() * rank, 0.0);
            let x = &input[rows.start * inner..rows.end * inner];
            matmul(x, &pair.a, lora, inner, rank, adapter.scale(), false);
            let dst = &mut out[rows.start * cols..rows.end * cols];
            matmul(lora, &pair.b, dst, rank, cols, 1.0, true);
        }
    }

    /// Final norm and LM head of the last row of each sequence (or of every row), all in one
    /// product over the head's weights.
    fn logits(&self, batch: &Batch<'_, '_>, x: &[f32], all: bool) -> Vec<Vec<f32>> {
        let c = &self.config;
        let picked: Vec<std::ops::Range<usize>> = (0..batch.seqs.len())
            .map(|s| {
                let rows = batch.rows(s);
                if all { rows } else { rows.end - 1..rows.end }
            })
            .collect();
        let mut h = Vec::new();
        for rows in &picked {
            h.extend_from_slice(&x[rows.start * c.hidden..rows.end * c.hidden]);
        }
        let normed = h.clone();
        rms_norm_into(&normed, &self.final_norm, c.rms_eps, &mut h);
        let mut logits = vec![0.0; h.len() / c.hidden * c.vocab];
        matmul_t(
            &h,
            self.lm_head.as_slice(),
            &mut logits,
            c.hidden,
            c.vocab,
            false,
        );
        let mut start = 0;
        picked
            .iter()
            .map(|rows| {
                let n = rows.len() * c.vocab;
                start += n;
                logits[start - n..start].to_vec()
            })
            .collect()
    }
}

/// Writes the new rows' K and V of `layer` into their pages.
fn write_kv(
    layer: usize,
    batch: &Batch<'_, '_>,
    layout: &KvLayout,
    arena: &mut KvArena,
    k: &[f32],
    v: &[f32],
) {
    let (kv, data) = (layout.kv_dim, arena.data_mut());
    for (s, seq) in batch.seqs.iter().enumerate() {
        for (t, r) in batch.rows(s).enumerate() {
            let pos = seq.start_pos + t;
            for (which, src) in [k, v].into_iter().enumerate() {
                let off = layout.offset(seq.block_table, layer, which, pos);
                data[off..off + kv].copy_from_slice(&src[r * kv..][..kv]);
            }
        }
    }
}
