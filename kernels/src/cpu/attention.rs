//! Causal grouped-query attention of one sequence's new rows over its pages, as matrix
//! products: per KV head, the query heads that read it and a block of new tokens form the rows
//! of `S = Q·Kᵀ/√d`, each row's softmax runs over the positions it may see, and `O = P·V`.

use super::config::CpuModelConfig;
use super::gemm::{View, gemm_into};
use super::kv::KvLayout;
use super::ops::softmax;

/// New tokens whose query rows go through one `Q·Kᵀ` together: enough rows to use the matrix
/// kernels, few enough that the causal mask wastes little (a block sees up to its last row).
const TOKEN_BLOCK: usize = 32;

/// Buffers reused by every sequence and layer of a pass (grown, never shrunk).
#[derive(Debug, Default)]
pub(crate) struct AttnScratch {
    /// K of the positions the sequence attends to, `len × kv_dim`, gathered from its pages.
    k: Vec<f32>,
    /// V likewise.
    v: Vec<f32>,
    /// Query rows of one block, `(tokens × group) × head_dim`.
    q: Vec<f32>,
    /// Their scores, `(tokens × group) × visible`.
    scores: Vec<f32>,
    /// Their outputs, like `q`.
    out: Vec<f32>,
}

/// One sequence's place in the pass: which pages hold its KV and where its new rows start.
pub(crate) struct SeqKv<'a> {
    /// The sequence's block table.
    pub table: &'a [u32],
    /// Positions cached before this pass.
    pub start_pos: usize,
}

/// Attention of the sequence's new rows `q` (`tokens × q_dim`, already rotated) over positions
/// `0..start_pos + tokens` of `layer` in the arena `data` (the new rows' K and V already
/// written), into `out` (`tokens × q_dim`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend_seq(
    c: &CpuModelConfig,
    layout: &KvLayout,
    data: &[f32],
    seq: &SeqKv<'_>,
    layer: usize,
    q: &[f32],
    out: &mut [f32],
    s: &mut AttnScratch,
) {
    let (hd, qd, kvd) = (c.head_dim, c.q_dim(), c.kv_dim());
    let tokens = q.len() / qd;
    let len = seq.start_pos + tokens;
    gather(layout, data, seq.table, layer, len, s);
    let group = c.heads / c.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    for g in 0..c.kv_heads {
        let keys = View {
            data: &s.k[g * hd..],
            rows: hd,
            cols: len,
            rs: 1,
            cs: kvd,
        };
        let values = View {
            data: &s.v[g * hd..],
            rows: len,
            cols: hd,
            rs: kvd,
            cs: 1,
        };
        for t0 in (0..tokens).step_by(TOKEN_BLOCK) {
            let t1 = (t0 + TOKEN_BLOCK).min(tokens);
            let rows = (t1 - t0) * group;
            let visible = seq.start_pos + t1;
            s.q.resize(rows * hd, 0.0);
            s.out.resize(rows * hd, 0.0);
            s.scores.resize(rows * visible, 0.0);
            for (r, dst) in s.q.chunks_exact_mut(hd).enumerate() {
                let (t, j) = (t0 + r / group, g * group + r % group);
                dst.copy_from_slice(&q[t * qd + j * hd..][..hd]);
            }
            let queries = View::row_major(&s.q, rows, hd);
            let keys = keys.columns(0, visible);
            gemm_into(&mut s.scores, visible, queries, keys, scale, false);
            for (r, row) in s.scores.chunks_exact_mut(visible).enumerate() {
                let sees = seq.start_pos + t0 + r / group + 1;
                softmax(&mut row[..sees]);
                row[sees..].fill(0.0);
            }
            let probs = View::row_major(&s.scores, rows, visible);
            let values = View {
                rows: visible,
                ..values
            };
            gemm_into(&mut s.out, hd, probs, values, 1.0, false);
            for (r, src) in s.out.chunks_exact(hd).enumerate() {
                let (t, j) = (t0 + r / group, g * group + r % group);
                out[t * qd + j * hd..][..hd].copy_from_slice(src);
            }
        }
    }
}

/// Copies K and V of positions `0..len` of `layer` from the sequence's pages into `s.k` and
/// `s.v` (`len × kv_dim` each): a block's slots are contiguous in its page.
fn gather(
    layout: &KvLayout,
    data: &[f32],
    table: &[u32],
    layer: usize,
    len: usize,
    s: &mut AttnScratch,
) {
    let (b, kvd) = (layout.block_tokens, layout.kv_dim);
    s.k.resize(len * kvd, 0.0);
    s.v.resize(len * kvd, 0.0);
    for start in (0..len).step_by(b) {
        let n = b.min(len - start) * kvd;
        for (which, dst) in [&mut s.k, &mut s.v].into_iter().enumerate() {
            let src = layout.offset(table, layer, which, start);
            dst[start * kvd..][..n].copy_from_slice(&data[src..][..n]);
        }
    }
}
