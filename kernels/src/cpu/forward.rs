//! The forward pass over a ragged batch: every sequence's new tokens go through the
//! projections together, each with its own adapter, and each attends to its own pages.

use super::check::check_batch;
use super::error::Result;
use super::kv::{KvArena, KvLayout};
use super::lora::CpuLora;
use super::ops::{RopeTable, attend, matmul, matmul_acc, rms_norm, swiglu};
use super::weights::CpuModel;

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
    /// The adapter applied to q, k, v, o, or none for the base model.
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
                x.extend_from_slice(&self.embed[t as usize * c.hidden..][..c.hidden]);
            }
        }
        let batch = Batch {
            seqs,
            row_start,
            rope: RopeTable::new(c.head_dim, c.rope_theta, positions),
        };
        for layer in 0..c.layers {
            self.layer(layer, &batch, &layout, arena, &mut x);
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
    ) {
        let c = &self.config;
        let w = &self.layers[layer];
        let h = rms_norm(x, &w.attn_norm, c.rms_eps);
        let rows = x.len() / c.hidden;
        let mut q = vec![0.0; rows * c.q_dim()];
        let mut k = vec![0.0; rows * c.kv_dim()];
        let mut v = vec![0.0; rows * c.kv_dim()];
        for (target, out) in [&mut q, &mut k, &mut v].into_iter().enumerate() {
            self.project(layer, target, batch, &h, out);
        }
        for r in 0..rows {
            batch.rope.apply(r, &mut q[r * c.q_dim()..][..c.q_dim()]);
            batch.rope.apply(r, &mut k[r * c.kv_dim()..][..c.kv_dim()]);
        }
        write_kv(layer, batch, layout, arena, &k, &v);
        let attn = self.attention(layer, batch, layout, arena, &q);
        self.project(layer, 3, batch, &attn, x);
        let h = rms_norm(x, &w.ffn_norm, c.rms_eps);
        let mut gate = matmul(&h, &w.gate, c.hidden, c.ffn);
        let up = matmul(&h, &w.up, c.hidden, c.ffn);
        swiglu(&mut gate, &up);
        matmul_acc(&gate, &w.down, x, c.ffn, c.hidden);
    }

    /// `out += input · W + input · A · B · scale` for attention projection `target`
    /// (0 = q, 1 = k, 2 = v, 3 = o), the LoRA term per sequence with that sequence's adapter.
    fn project(
        &self,
        layer: usize,
        target: usize,
        batch: &Batch<'_, '_>,
        input: &[f32],
        out: &mut [f32],
    ) {
        let (inner, cols) = self.config.attention_dims()[target];
        matmul_acc(input, &self.layers[layer].attn[target], out, inner, cols);
        for (s, seq) in batch.seqs.iter().enumerate() {
            let Some(lora) = seq.lora else { continue };
            let Some(pair) = lora.layer(layer).map(|p| &p[target]) else {
                continue;
            };
            let rows = batch.rows(s);
            let mut down = matmul(
                &input[rows.start * inner..rows.end * inner],
                &pair.a,
                inner,
                lora.rank(),
            );
            down.iter_mut().for_each(|d| *d *= lora.scale());
            matmul_acc(
                &down,
                &pair.b,
                &mut out[rows.start * cols..rows.end * cols],
                lora.rank(),
                cols,
            );
        }
    }

    /// Causal GQA attention of every new row over its own sequence's pages.
    fn attention(
        &self,
        layer: usize,
        batch: &Batch<'_, '_>,
        layout: &KvLayout,
        arena: &KvArena,
        q: &[f32],
    ) -> Vec<f32> {
        let c = &self.config;
        let (hd, data) = (c.head_dim, arena.data());
        let mut out = vec![0.0; q.len()];
        let mut scores = Vec::new();
        for (s, seq) in batch.seqs.iter().enumerate() {
            let table = seq.block_table;
            for (t, r) in batch.rows(s).enumerate() {
                let len = seq.start_pos + t + 1;
                for head in 0..c.heads {
                    let g = c.kv_head_of(head) * hd;
                    let at = |which: usize| {
                        move |pos: usize| &data[layout.offset(table, layer, which, pos) + g..][..hd]
                    };
                    let base = r * c.q_dim() + head * hd;
                    attend(
                        &q[base..][..hd],
                        len,
                        at(0),
                        at(1),
                        &mut scores,
                        &mut out[base..][..hd],
                    );
                }
            }
        }
        out
    }

    /// Final norm and LM head of the last row of each sequence (or of every row).
    fn logits(&self, batch: &Batch<'_, '_>, x: &[f32], all: bool) -> Vec<Vec<f32>> {
        let c = &self.config;
        (0..batch.seqs.len())
            .map(|s| {
                let rows = batch.rows(s);
                let first = if all { rows.start } else { rows.end - 1 };
                let h = rms_norm(
                    &x[first * c.hidden..rows.end * c.hidden],
                    &self.final_norm,
                    c.rms_eps,
                );
                matmul(&h, &self.lm_head, c.hidden, c.vocab)
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
