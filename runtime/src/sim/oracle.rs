//! `vllm-oracle`: vLLM with the best static LoRA fraction for this very workload, found by
//! running every fraction from 0.05 to 0.95 in steps of 0.05 (an upper bound on what tuning
//! the split can achieve; no real deployment knows the workload in advance).

use super::api::{SimError, SimOptions, SimResult};
use crate::engine::PolicyKind;
use crate::workload::Workload;

/// The fractions swept.
pub fn fractions() -> impl Iterator<Item = f64> {
    (1..20).map(|i| f64::from(i) * 0.05)
}

pub(crate) fn run(workload: &Workload, options: &SimOptions) -> Result<SimResult, SimError> {
    let mut best: Option<((usize, f64), SimResult)> = None;
    for fraction in fractions() {
        let mut opts = options.clone();
        opts.lora_fraction = Some(fraction);
        let result = super::driver::simulate(workload, PolicyKind::Vllm, &opts)?;
        let key = rank(&result);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, result));
        }
    }
    let (_, mut result) = best.expect("at least one fraction");
    result.policy = "vllm-oracle".to_string();
    Ok(result)
}

/// Fewest failures first, then lowest mean TTFT.
fn rank(result: &SimResult) -> (usize, f64) {
    (result.failed(), result.mean_ttft_ns())
}
