//! The row order of Q and K in GGUF files.
//!
//! llama.cpp's converter (`convert_hf_to_gguf.py`, `LlamaModel.permute`) reorders the rows of
//! each head of `q_proj` and `k_proj` from rotate-half pairs `(i, i + d/2)` to interleaved
//! pairs `(2i, 2i + 1)`, so that its RoPE can rotate neighbours. [`unpermute_rope_rows`] undoes
//! that when a GGUF file is loaded; [`permute_rope_rows`] is the converter's own permutation
//! (for writing GGUF files, base weights or a LoRA's `B` of q and k, that llama.cpp reads).

/// Row `h·d + 2i + j` of llama.cpp's layout goes to row `h·d + j·d/2 + i` (head `h` of width
/// `d`, pair `i`, member `j`): undoes [`permute_rope_rows`]. `values` is `heads·d × cols`.
pub fn unpermute_rope_rows(values: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    reorder_rows(values, heads, cols, |hd, i, j| (2 * i + j, j * hd / 2 + i))
}

/// llama.cpp's converter permutation (`LlamaModel.permute`): row `h·d + j·d/2 + i` of
/// Hugging Face's layout goes to row `h·d + 2i + j`.
pub fn permute_rope_rows(values: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    reorder_rows(values, heads, cols, |hd, i, j| (j * hd / 2 + i, 2 * i + j))
}

/// Copies row `from` to row `to` within each head, `(from, to) = map(d, i, j)`.
fn reorder_rows(
    values: &[f32],
    heads: usize,
    cols: usize,
    map: impl Fn(usize, usize, usize) -> (usize, usize),
) -> Vec<f32> {
    let rows = values.len() / cols.max(1);
    let hd = rows / heads.max(1);
    let mut out = vec![0.0; values.len()];
    for h in 0..heads {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let (from, to) = map(hd, i, j);
                let (from, to) = ((h * hd + from) * cols, (h * hd + to) * cols);
                out[to..to + cols].copy_from_slice(&values[from..from + cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_round_trips_and_interleaves_pairs() {
        // 2 heads of width 4, 1 column: HF rows [a0 a1 b0 b1] per head, where (a_i, b_i) rotate
        // together; llama.cpp puts each pair side by side: [a0 b0 a1 b1].
        let hf: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let gguf = permute_rope_rows(&hf, 2, 1);
        assert_eq!(gguf, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert_eq!(unpermute_rope_rows(&gguf, 2, 1), hf);
        let wide: Vec<f32> = (0..64 * 3).map(|v| v as f32).collect();
        assert_eq!(
            unpermute_rope_rows(&permute_rope_rows(&wide, 2, 6), 2, 6),
            wide
        );
    }
}
