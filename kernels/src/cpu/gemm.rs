//! Matrix products through the `gemm` crate, on one thread (the runtime is thread-per-core).
//!
//! Every product is `dst (m × n) = β · lhs (m × k) · rhs (k × n)` (plus `dst` when
//! accumulating), on strided views: the weights stay in PyTorch's `out × in` layout and are read
//! as the transposed right-hand side, K and V are read in place from a gathered block, LoRA
//! factors as they are stored. `gemm` picks its kernel at run time (AVX-512, AVX2+FMA or
//! scalar).
//!
//! For a few rows (a decode batch) `gemm`'s packed kernels vectorise along the rows and waste
//! most lanes, so [`matmul_t`] splits the output columns into narrow strips that `gemm` runs
//! with its dot-product ("horizontal") kernels: every row still shares one pass over the weights.

use gemm::Parallelism;

/// Rows from which [`matmul_t`] hands the whole product to `gemm`'s packed kernels.
const PACKED_FROM_ROWS: usize = 17;

/// `gemm` runs its dot-product kernels when `m × n` is at most this.
const HORIZONTAL_CELLS: usize = 256;

/// A read-only strided matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The floats the view reads.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub rs: usize,
    /// Distance between columns.
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A contiguous row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a contiguous row-major `rows × cols` matrix (so `cols × rows`): how a
    /// PyTorch `out × in` weight is read as the right-hand side of `x · Wᵀ`.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows: cols,
            cols: rows,
            rs: 1,
            cs: cols,
        }
    }

    /// Columns `start..start + len` of the view.
    pub fn columns(self, start: usize, len: usize) -> Self {
        assert!(start + len <= self.cols, "columns out of range");
        View {
            data: &self.data[(start * self.cs).min(self.data.len())..],
            cols: len,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = beta · lhs · rhs` (or `dst += …` when `accumulate`), `dst` row-major with row stride
/// `dst_rs` (at least `rhs.cols`). Panics if the shapes disagree or a view overruns its slice.
pub fn gemm_into(
    dst: &mut [f32],
    dst_rs: usize,
    lhs: View<'_>,
    rhs: View<'_>,
    beta: f32,
    accumulate: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    assert!(lhs.fits() && rhs.fits(), "a view overruns its slice");
    assert!(dst_rs >= n, "destination rows overlap");
    assert!(
        m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len(),
        "destination too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    let s = |v: usize| v as isize;
    // SAFETY: every element `gemm` touches was checked above to lie inside its slice
    // (`fits` and the destination bound); `dst` is exclusively borrowed and rows of the
    // destination do not overlap (`dst_rs >= n`), and the inputs are shared borrows that
    // cannot alias `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            s(dst_rs),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.cs),
            s(lhs.rs),
            rhs.data.as_ptr(),
            s(rhs.cs),
            s(rhs.rs),
            1.0,
            beta,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// `out (+)= x · wᵀ` for `x` row-major `m × k`, `w` a PyTorch weight `n × k` (`out × in`,
/// row-major) and `out` row-major `m × n`: every row of `x` shares one pass over `w`.
pub fn matmul_t(x: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize, accumulate: bool) {
    let m = x.len() / k;
    assert_eq!(x.len(), m * k, "input is not whole rows");
    assert_eq!(w.len(), n * k, "weight is not n × k");
    if m == 1 {
        gemv_t(x, w, out, k, accumulate);
        return;
    }
    let lhs = View::row_major(x, m, k);
    let rhs = View::transposed(w, n, k);
    if m >= PACKED_FROM_ROWS {
        gemm_into(out, n, lhs, rhs, 1.0, accumulate);
        return;
    }
    let strip = (HORIZONTAL_CELLS / m).max(1);
    for start in (0..n).step_by(strip) {
        let len = strip.min(n - start);
        gemm_into(
            &mut out[start..],
            n,
            lhs,
            rhs.columns(start, len),
            1.0,
            accumulate,
        );
    }
}

/// One row (single-sequence decode): `out[j] (+)= x · w[j]`, a dot product per weight row.
/// Decode is bound by reading the weights once, and rows of a PyTorch `out × in` weight are
/// already contiguous; through `gemm` (which prepares its operands on every call) one-sequence
/// decode of SmolLM2 ran at 9.5 tokens/s, with a dot product per row at 12.9, and with four
/// rows per pass (below) at the figure `docs/real-model.md` quotes (`cpu_speed` bench, one
/// thread).
fn gemv_t(x: &[f32], w: &[f32], out: &mut [f32], k: usize, accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // The standard library caches what it detects: two atomic loads per call.
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA were detected on this CPU just above.
            unsafe { gemv_t_fma(x, w, out, k, accumulate) };
            return;
        }
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k)) {
        let d = dot(x, row);
        *o = if accumulate { *o + d } else { d };
    }
}

/// [`gemv_t`] with AVX2 and FMA: four weight rows per pass share each load of `x`, each row
/// with two accumulators (eight independent FMA chains), and the four sums are reduced together
/// with horizontal adds instead of one scalar chain per row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gemv_t_fma(x: &[f32], w: &[f32], out: &mut [f32], k: usize, accumulate: bool) {
    use std::arch::x86_64::*;
    assert!(x.len() == k && w.len() == out.len() * k, "gemv shapes");
    let wide = k / 16 * 16;
    let mut rows = out.chunks_exact_mut(4).zip(w.chunks_exact(4 * k));
    for (o, w4) in &mut rows {
        let (r0, rest) = w4.split_at(k);
        let (r1, rest) = rest.split_at(k);
        let (r2, r3) = rest.split_at(k);
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i < wide {
            // SAFETY: `i + 16 <= wide <= k`, the length of `x` and of every row.
            unsafe {
                for half in 0..2 {
                    let at = i + 8 * half;
                    let xv = _mm256_loadu_ps(x.as_ptr().add(at));
                    for (r, row) in [r0, r1, r2, r3].into_iter().enumerate() {
                        let a = &mut acc[2 * r + half];
                        *a = _mm256_fmadd_ps(xv, _mm256_loadu_ps(row.as_ptr().add(at)), *a);
                    }
                }
            }
            i += 16;
        }
        let pair = |r: usize| _mm256_add_ps(acc[2 * r], acc[2 * r + 1]);
        let s01 = _mm256_hadd_ps(pair(0), pair(1));
        let s23 = _mm256_hadd_ps(pair(2), pair(3));
        let s = _mm256_hadd_ps(s01, s23);
        let sums = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let mut d = [0.0f32; 4];
        // SAFETY: `d` holds four floats.
        unsafe { _mm_storeu_ps(d.as_mut_ptr(), sums) };
        for (r, row) in [r0, r1, r2, r3].into_iter().enumerate() {
            d[r] += x[wide..]
                .iter()
                .zip(&row[wide..])
                .map(|(a, b)| a * b)
                .sum::<f32>();
            o[r] = if accumulate { o[r] + d[r] } else { d[r] };
        }
    }
    let done = out.len() / 4 * 4;
    for (o, row) in out[done..].iter_mut().zip(w[done * k..].chunks_exact(k)) {
        let d = dot(x, row);
        *o = if accumulate { *o + d } else { d };
    }
}

/// `a · b` over 16 independent lanes (the compiler keeps them in vector registers), then the
/// lanes and the tail summed.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `out (+)= scale · x · a` for `x` row-major `m × k` and `a` row-major `k × n`.
pub fn matmul(x: &[f32], a: &[f32], out: &mut [f32], k: usize, n: usize, scale: f32, acc: bool) {
    let m = x.len() / k;
    gemm_into(
        out,
        n,
        View::row_major(x, m, k),
        View::row_major(a, k, n),
        scale,
        acc,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f32> {
        let m = x.len() / k;
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum();
            }
        }
        out
    }

    #[test]
    fn every_row_count_matches_the_definition() {
        // 303 outputs: whole groups of four weight rows and a remainder; k = 37 leaves a tail
        // after the 16-wide steps.
        let (k, n) = (37, 303);
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        for m in [1, 2, 5, 8, 16, 17, 40] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 3) % 7) as f32 * 0.5).collect();
            let mut out = vec![1.0; m * n];
            matmul_t(&x, &w, &mut out, k, n, false);
            // Small integers: every order of summation gives the same exact result.
            assert_eq!(out, naive(&x, &w, k, n), "m = {m}");
            matmul_t(&x, &w, &mut out, k, n, true);
            let twice: Vec<f32> = naive(&x, &w, k, n).iter().map(|v| 2.0 * v).collect();
            assert_eq!(out, twice, "m = {m}, accumulating");
        }
    }

    #[test]
    fn one_row_matches_the_definition_for_every_width() {
        // Widths below, at and across the 16-wide steps; output counts around groups of four.
        for k in [1, 7, 16, 17, 40, 64] {
            for n in [1, 3, 4, 5, 9] {
                let w: Vec<f32> = (0..n * k).map(|i| ((i * 5) % 9) as f32 - 4.0).collect();
                let x: Vec<f32> = (0..k).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
                let mut out = vec![f32::NAN; n];
                matmul_t(&x, &w, &mut out, k, n, false);
                assert_eq!(out, naive(&x, &w, k, n), "k = {k}, n = {n}");
            }
        }
    }

    #[test]
    fn scaled_plain_product() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let a = [1.0, 0.0, 2.0, 1.0, 1.0, 0.0];
        let mut out = [10.0; 6];
        matmul(&x, &a, &mut out, 2, 3, 0.5, true);
        assert_eq!(out, [11.5, 11.0, 11.0, 13.5, 12.0, 13.0]);
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn a_short_view_is_refused() {
        let mut out = [0.0; 4];
        let lhs = View::row_major(&[1.0; 3], 2, 2);
        gemm_into(
            &mut out,
            2,
            lhs,
            View::row_major(&[1.0; 4], 2, 2),
            1.0,
            false,
        );
    }
}
