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
/// decode of SmolLM2 ran at 9.5 tokens/s, with this at 12.9 (`cpu_speed` bench, one thread).
fn gemv_t(x: &[f32], w: &[f32], out: &mut [f32], k: usize, accumulate: bool) {
    let dot = dot_fn();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k)) {
        let d = dot(x, row);
        *o = if accumulate { *o + d } else { d };
    }
}

/// The widest dot product this CPU runs, chosen once.
fn dot_fn() -> fn(&[f32], &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2")) {
            return |a, b| {
                // SAFETY: AVX2 was detected on this CPU just above.
                unsafe { dot_avx2(a, b) }
            };
        }
    }
    dot
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
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
        let (k, n) = (37, 300);
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
