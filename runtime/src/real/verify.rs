//! `--verify`: a request that reused cached KV is recomputed from scratch, with no cache and
//! the adapter's source weights, and its logits compared with those it was served.

use std::sync::Arc;

use fastlibra_kernels::cpu::{CpuLora, CpuModel, KvArena};

use super::error::RealError;
use super::shard::BLOCK_TOKENS;

/// Largest relative difference (max |served − fresh| / max |fresh|) that counts as a match.
/// Both paths run the same arithmetic in the same order, so in practice the difference is 0.
pub const TOLERANCE: f32 = 1e-4;

/// The same for logits served by the CUDA backend: its kernels sum in another order than the
/// CPU reference, so fp32 results differ in the last bits (the bound for fp32 is
/// "well under 1e-3").
pub const CUDA_TOLERANCE: f32 = 1e-3;

/// The same for the CUDA backend with bf16 GEMM weights, against the fp32 recompute (the
/// issue's bound for bf16 is 1e-2).
pub const CUDA_BF16_TOLERANCE: f32 = 1e-2;

/// Checks done and failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyStats {
    /// Logit vectors recomputed and compared.
    pub checked: u64,
    /// Of those, how many differed beyond [`TOLERANCE`].
    pub mismatches: u64,
}

impl VerifyStats {
    /// Sums two shards' counts.
    pub fn add(&mut self, other: VerifyStats) {
        self.checked += other.checked;
        self.mismatches += other.mismatches;
    }
}

/// Recomputes sequences in a scratch arena of its own.
pub struct Verifier {
    model: Arc<CpuModel>,
    scratch: Option<KvArena>,
    tolerance: f32,
    /// Counts so far.
    pub stats: VerifyStats,
}

impl Verifier {
    /// A verifier for `model`, counting a mismatch above `tolerance` (relative).
    pub fn new(model: Arc<CpuModel>, tolerance: f32) -> Verifier {
        Verifier {
            model,
            scratch: None,
            tolerance,
            stats: VerifyStats::default(),
        }
    }

    /// Recomputes `context` (a sequence's every token up to the one whose logits were
    /// served) from scratch with `lora` and compares the last token's logits with `served`.
    pub fn check(
        &mut self,
        context: &[u32],
        served: &[f32],
        lora: &CpuLora,
    ) -> Result<(), RealError> {
        let config = self.model.config();
        let vocab = config.vocab as u32;
        let context: Vec<u32> = context.iter().map(|t| t % vocab).collect();
        let pages = context.len().div_ceil(BLOCK_TOKENS as usize).max(1);
        if self.scratch.as_ref().is_none_or(|a| a.pages() < pages) {
            self.scratch = Some(KvArena::for_model(
                config,
                BLOCK_TOKENS as usize,
                pages.next_power_of_two(),
            )?);
        }
        let arena = self.scratch.as_mut().expect("just made");
        let table: Vec<u32> = (0..pages as u32).collect();
        let fresh = self.model.prefill(arena, &context, &table, 0, Some(lora))?;
        self.stats.checked += 1;
        if relative_difference(served, &fresh) > self.tolerance {
            self.stats.mismatches += 1;
        }
        Ok(())
    }
}

/// max |a − b| / max |b| (infinite if the lengths differ).
pub fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.iter().chain(b).any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastlibra_kernels::cpu::CpuModelConfig;

    #[test]
    fn a_recompute_with_other_weights_is_a_mismatch() {
        let config = CpuModelConfig::tiny();
        let model = Arc::new(CpuModel::random(config.clone(), 3).expect("model"));
        let a = CpuLora::random(&config, 4, 1.0, 1).expect("lora");
        let b = CpuLora::random(&config, 4, 1.0, 2).expect("lora");
        let tokens: Vec<u32> = (0..20).collect();
        let mut arena = KvArena::for_model(&config, BLOCK_TOKENS as usize, 2).expect("arena");
        let served = model
            .prefill(&mut arena, &tokens, &[0, 1], 0, Some(&a))
            .expect("prefill");
        let mut v = Verifier::new(model, TOLERANCE);
        v.check(&tokens, &served, &a).expect("check");
        assert_eq!(
            v.stats,
            VerifyStats {
                checked: 1,
                mismatches: 0
            }
        );
        v.check(&tokens, &served, &b).expect("check");
        assert_eq!(
            v.stats,
            VerifyStats {
                checked: 2,
                mismatches: 1
            }
        );
    }

    #[test]
    fn relative_difference_catches_changes_and_nans() {
        assert_eq!(relative_difference(&[1.0, -2.0], &[1.0, -2.0]), 0.0);
        assert!(relative_difference(&[1.0, -2.1], &[1.0, -2.0]) > TOLERANCE);
        assert!(relative_difference(&[f32::NAN, 0.0], &[1.0, 0.0]) > TOLERANCE);
        assert!(relative_difference(&[1.0], &[1.0, 0.0]) > TOLERANCE);
    }
}
