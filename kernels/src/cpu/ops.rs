//! The arithmetic of the forward pass on row-major `f32` slices: matmul, RMSNorm, SwiGLU,
//! RoPE and one head's attention. Plain loops in an order the compiler vectorises; no BLAS.

/// Rows of `x` processed together by [`matmul_acc`]: their output rows stay in cache while one
/// row of the weight streams past them.
const ROW_TILE: usize = 8;

/// `out += x · w` with `x` of `rows × inner`, `w` of `inner × cols` and `out` of
/// `rows × cols`, all row-major. Each output element sums over `inner` in index order whatever
/// the number of rows, so a row's result does not depend on the rows batched with it.
pub fn matmul_acc(x: &[f32], w: &[f32], out: &mut [f32], inner: usize, cols: usize) {
    debug_assert_eq!(w.len(), inner * cols);
    debug_assert_eq!(x.len() / inner, out.len() / cols);
    for (x_tile, out_tile) in x
        .chunks(ROW_TILE * inner)
        .zip(out.chunks_mut(ROW_TILE * cols))
    {
        for (k, w_row) in w.chunks_exact(cols).enumerate() {
            for (x_row, out_row) in x_tile
                .chunks_exact(inner)
                .zip(out_tile.chunks_exact_mut(cols))
            {
                let a = x_row[k];
                for (o, wv) in out_row.iter_mut().zip(w_row) {
                    *o += a * wv;
                }
            }
        }
    }
}

/// `x · w` into a fresh `rows × cols` buffer.
pub fn matmul(x: &[f32], w: &[f32], inner: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len() / inner * cols];
    matmul_acc(x, w, &mut out, inner, cols);
    out
}

/// RMSNorm of each row of `x` (width `weight.len()`) times `weight`, into a fresh buffer.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let width = weight.len();
    let mut out = vec![0.0; x.len()];
    for (row, out_row) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        for ((o, v), g) in out_row.iter_mut().zip(row).zip(weight) {
            *o = v * inv * g;
        }
    }
    out
}

/// SwiGLU: `gate ← silu(gate) × up`, element-wise.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Softmax of `x` in place (max-subtracted, so large scores do not overflow).
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// Cosines and sines of rotary position embeddings for a run of positions.
#[derive(Clone, Debug)]
pub struct RopeTable {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// The table for `positions` and heads of width `head_dim` (even), with base `theta`:
    /// pair `i` turns by `pos × theta^(−2i/head_dim)`.
    pub fn new(head_dim: usize, theta: f32, positions: impl IntoIterator<Item = usize>) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| f64::from(theta).powf(-((2 * i) as f64) / head_dim as f64))
            .collect();
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for pos in positions {
            for f in &inv_freq {
                let angle = pos as f64 * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        RopeTable { half, cos, sin }
    }

    /// Rotates every head (width `2 × half`) of the `row`-th entry's vector `x` in place, in the
    /// Llama (rotate-half) layout: element `i` pairs with element `i + head_dim / 2`.
    pub fn apply(&self, row: usize, x: &mut [f32]) {
        let (cos, sin) = (
            &self.cos[row * self.half..(row + 1) * self.half],
            &self.sin[row * self.half..(row + 1) * self.half],
        );
        for head in x.chunks_exact_mut(2 * self.half) {
            let (lo, hi) = head.split_at_mut(self.half);
            for (((a, b), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
                let (x0, x1) = (*a, *b);
                *a = x0 * c - x1 * s;
                *b = x1 * c + x0 * s;
            }
        }
    }
}

/// One head of causal attention: `out = softmax(q·kᵢ / √d) · vᵢ` over positions `0..len`,
/// with `key(i)` and `value(i)` giving position `i`'s head vectors (from pages, in the model).
/// `scores` is scratch space.
pub fn attend<'a>(
    q: &[f32],
    len: usize,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let scale = 1.0 / (q.len() as f32).sqrt();
    scores.clear();
    scores.extend((0..len).map(|i| dot(q, key(i)) * scale));
    softmax(scores);
    out.fill(0.0);
    for (i, p) in scores.iter().enumerate() {
        for (o, v) in out.iter_mut().zip(value(i)) {
            *o += p * v;
        }
    }
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
