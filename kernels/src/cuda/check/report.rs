//! The results of the GPU checks, as one JSON.

use super::{Bandwidth, Calibration, KernelCheck, Overlap, RealModelCheck};

/// Bandwidth ratio the copy engine must reach against a plain pinned copy.
pub const BANDWIDTH_RATIO_MIN: f64 = 0.9;
/// Most a prefill may slow down with swap-ins beside it.
pub const OVERLAP_RATIO_MAX: f64 = 1.1;

/// Everything `fastlibra cuda check` measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Device name.
    pub device: String,
    /// Compute capability (90 = Hopper).
    pub sm: u32,
    /// Device memory, bytes.
    pub memory_total_bytes: u64,
    /// Free device memory at the end, bytes.
    pub memory_free_bytes: u64,
    /// Kernels against the CPU reference.
    pub kernels: KernelCheck,
    /// Swap bandwidth, both directions.
    pub bandwidth: Vec<Bandwidth>,
    /// Swap-in / compute overlap.
    pub overlap: Overlap,
    /// Cost-model calibration.
    pub calibration: Calibration,
    /// A real checkpoint against the CPU path (`--model`), when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_model: Option<RealModelCheck>,
}

impl Report {
    /// Whether every target held.
    pub fn passed(&self) -> bool {
        self.kernels.passed
            && self
                .bandwidth
                .iter()
                .all(|b| b.ratio >= BANDWIDTH_RATIO_MIN)
            && self.overlap.ratio <= OVERLAP_RATIO_MAX
            && self.real_model.as_ref().is_none_or(|r| r.passed)
    }

    /// The calibration in the simulator's TOML format.
    pub fn calibration_toml(&self) -> String {
        self.calibration.to_toml(&self.device)
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} (sm_{}): kernels {} (fp32: prefill rel err {:.2e}, decode {:.2e}; bf16 weights: prefill {:.2e}, decode {:.2e}; gather/scatter exact {})\n",
            self.device,
            self.sm,
            if self.kernels.passed { "ok" } else { "FAILED" },
            self.kernels.prefill_rel_error,
            self.kernels.decode_rel_error,
            self.kernels.bf16_prefill_rel_error,
            self.kernels.bf16_decode_rel_error,
            self.kernels.gather_scatter_exact
        );
        for b in &self.bandwidth {
            s.push_str(&format!(
                "swap {:?}: engine {:.1} GB/s, plain {:.1} GB/s, ratio {:.3} (≥ {BANDWIDTH_RATIO_MIN})\n",
                b.direction,
                b.engine_bytes_per_s / 1e9,
                b.plain_bytes_per_s / 1e9,
                b.ratio
            ));
        }
        s.push_str(&format!(
            "overlap: {} tokens alone {:.3} ms, with {} MiB swap-in {:.3} ms, ratio {:.3} (≤ {OVERLAP_RATIO_MAX})",
            self.overlap.batch_tokens,
            self.overlap.alone_ms,
            self.overlap.swap_bytes >> 20,
            self.overlap.with_swap_ms,
            self.overlap.ratio
        ));
        if let Some(r) = &self.real_model {
            s.push('\n');
            s.push_str(&r.summary());
        }
        s
    }
}
