//! The element-wise arithmetic of the forward pass on row-major `f32` slices: RMSNorm, SwiGLU,
//! softmax, RoPE, and one head's attention as a plain reference. Loops are written so the
//! compiler vectorises them (lane-wise partial sums, a branch-free `exp`); the matrix products
//! are in [`super::gemm`].

/// Lanes of the partial sums in [`sum`] and [`dot`]: wide enough for one AVX-512 register.
const LANES: usize = 16;

/// `Σ f(a[i], b[i])` in [`LANES`] interleaved partial sums (vectorisable, unlike a strict
/// left-to-right sum), then added up.
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (a_main, a_tail) = a.split_at(a.len() - a.len() % LANES);
    for (ca, cb) in a_main.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for ((s, x), y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += f(*x, *y);
        }
    }
    let tail: f32 = a_tail
        .iter()
        .zip(&b[a_main.len()..])
        .map(|(x, y)| f(*x, *y))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Sum of the values.
pub fn sum(x: &[f32]) -> f32 {
    lane_sum(x, x, |v, _| v)
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    lane_sum(a, b, |x, y| x * y)
}

/// `eˣ` to within a few ulp for every finite `x` (0 … 1.2e-38 below −87.3, and the largest
/// finite power near 88.3 above), NaN for NaN. Branch-free, so loops over it vectorise: range
/// reduction `x = n·ln 2 + r`, Cephes' degree-6 polynomial for `eʳ`, `2ⁿ` built from bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer.
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    y * f32::from_bits(((n_int + 127) as u32) << 23)
}

/// RMSNorm of each row of `x` (width `weight.len()`) times `weight`, into `out`.
pub fn rms_norm_into(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let width = weight.len();
    for (row, out_row) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let inv = 1.0 / (dot(row, row) / width as f32 + eps).sqrt();
        for ((o, v), g) in out_row.iter_mut().zip(row).zip(weight) {
            *o = v * inv * g;
        }
    }
}

/// RMSNorm into a fresh buffer (see [`rms_norm_into`]).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    rms_norm_into(x, weight, eps, &mut out);
    out
}

/// SwiGLU: `gate ← silu(gate) × up`, element-wise.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// Softmax of `x` in place (max-subtracted, so large scores do not overflow).
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(x);
    for v in x.iter_mut() {
        *v *= inv;
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

/// One head of causal attention, the plain way: `out = softmax(q·kᵢ / √d) · vᵢ` over positions
/// `0..len`, with `key(i)` and `value(i)` giving position `i`'s head vectors. The model runs
/// the same arithmetic as matrix products ([`super::attention`]); this is the reference the
/// tests hold them to. `scores` is scratch space.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp() {
        let mut worst = 0f64;
        for i in -8700..=8830 {
            let x = i as f32 * 0.01;
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - want).abs() / want);
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(f32::INFINITY).is_finite());
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn lane_sums_cover_the_tail() {
        let x: Vec<f32> = (0..37).map(|i| i as f32).collect();
        assert_eq!(sum(&x), 666.0);
        assert_eq!(dot(&x, &x), (0..37).map(|i| (i * i) as f32).sum::<f32>());
        assert_eq!(sum(&[]), 0.0);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = vec![1000.0, 1001.0, -5.0, 0.0];
        softmax(&mut x);
        assert!((sum(&x) - 1.0).abs() < 1e-6);
        assert!(x[1] > x[0] && x[0] > x[3]);
    }
}
