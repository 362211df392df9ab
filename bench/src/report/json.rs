//! `report.json`: the run's parameters, every policy's summary and each policy's figures
//! relative to `fastlibra`.
//!
//! The file is a pure function of its inputs: maps are `BTreeMap`s (keys sorted), structs
//! serialize in declaration order, and nothing time- or machine-dependent (wall clock, absolute
//! paths, host names) goes in, so two runs with the same arguments give byte-identical files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ReportError;
use super::files::write_file;
use super::summary::PolicySummary;
use crate::peak::{PeakConfig, Probe};

/// File name of the JSON report inside the output folder.
pub const REPORT_FILE: &str = "report.json";

/// The policy every other one is compared with.
pub const BASELINE_POLICY: &str = "fastlibra";

/// What was run: the inputs that, with the policies, determine the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Execution backend (`sim`).
    pub backend: String,
    /// Workload generator name.
    pub workload: String,
    /// Model preset name.
    pub model: String,
    /// GPU preset name.
    pub gpu: String,
    /// Seed of the workload and the simulator.
    pub seed: u64,
    /// Mean arrival rate, sessions (or requests, for `translation`) per second.
    pub rate: f64,
    /// Number of LoRA adapters.
    pub loras: u32,
    /// Arrival window, s.
    pub duration_s: f64,
}

/// One policy's figures divided by `fastlibra`'s (`None` when fastlibra's figure is 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Mean TTFT ÷ fastlibra's mean TTFT.
    pub mean_ttft_vs_fastlibra: Option<f64>,
    /// P50 TTFT ÷ fastlibra's.
    pub p50_ttft_vs_fastlibra: Option<f64>,
    /// P99 TTFT ÷ fastlibra's.
    pub p99_ttft_vs_fastlibra: Option<f64>,
    /// Mean TPOT ÷ fastlibra's.
    pub mean_tpot_vs_fastlibra: Option<f64>,
    /// Mean end-to-end latency ÷ fastlibra's.
    pub mean_e2e_vs_fastlibra: Option<f64>,
}

impl Comparison {
    /// `summary` relative to `baseline`.
    pub fn between(summary: &PolicySummary, baseline: &PolicySummary) -> Comparison {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        Comparison {
            mean_ttft_vs_fastlibra: ratio(summary.ttft_ms.mean, baseline.ttft_ms.mean),
            p50_ttft_vs_fastlibra: ratio(summary.ttft_ms.p50, baseline.ttft_ms.p50),
            p99_ttft_vs_fastlibra: ratio(summary.ttft_ms.p99, baseline.ttft_ms.p99),
            mean_tpot_vs_fastlibra: ratio(summary.tpot_ms.mean, baseline.tpot_ms.mean),
            mean_e2e_vs_fastlibra: ratio(summary.e2e_ms.mean, baseline.e2e_ms.mean),
        }
    }
}

/// The whole `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was run (flattened into the top level).
    #[serde(flatten)]
    pub run: RunInfo,
    /// Summary per policy, by name.
    pub policies: BTreeMap<String, PolicySummary>,
    /// Per policy, its figures relative to fastlibra; empty when fastlibra was not run.
    pub comparison: BTreeMap<String, Comparison>,
    /// Every point of a `--rate`/`--loras` grid with more than one point, in run order (rates
    /// ascending within each LoRA count); absent for a single point. The top-level `rate`,
    /// `loras`, `policies` and `comparison` repeat the first point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepPoint>,
    /// With `--find-peak`: how the peak rates were searched and every probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_search: Option<PeakSearch>,
}

/// One point of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Mean arrival rate, arrivals/s.
    pub rate: f64,
    /// Number of LoRA adapters.
    pub loras: u32,
    /// Summary per policy.
    pub policies: BTreeMap<String, PolicySummary>,
    /// Per policy, relative to fastlibra.
    pub comparison: BTreeMap<String, Comparison>,
}

impl SweepPoint {
    /// A point from its policies' summaries (the comparison is computed).
    pub fn new(
        rate: f64,
        loras: u32,
        summaries: impl IntoIterator<Item = (String, PolicySummary)>,
    ) -> SweepPoint {
        let policies: BTreeMap<String, PolicySummary> = summaries.into_iter().collect();
        let comparison = compare(&policies);
        SweepPoint {
            rate,
            loras,
            policies,
            comparison,
        }
    }
}

/// The `--find-peak` search: its settings and, per LoRA count and policy, its probes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeakSearch {
    /// Threshold, tolerance and failure limit.
    #[serde(flatten)]
    pub config: PeakConfig,
    /// One search per LoRA count and policy, in run order.
    pub runs: Vec<PeakRun>,
}

/// One policy's search at one LoRA count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeakRun {
    /// Number of LoRA adapters.
    pub loras: u32,
    /// Policy name.
    pub policy: String,
    /// The peak rate found, arrivals/s (`null`: every probed rate was above the threshold).
    pub peak_rps: Option<f64>,
    /// Whether a probe above the threshold bounds the peak from above.
    pub bracketed: bool,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
}

/// Each policy relative to fastlibra; empty without fastlibra.
fn compare(policies: &BTreeMap<String, PolicySummary>) -> BTreeMap<String, Comparison> {
    match policies.get(BASELINE_POLICY) {
        Some(baseline) => policies
            .iter()
            .map(|(name, s)| (name.clone(), Comparison::between(s, baseline)))
            .collect(),
        None => BTreeMap::new(),
    }
}

impl Report {
    /// Assembles a report from the run's parameters and the policies' summaries.
    pub fn new(
        run: RunInfo,
        summaries: impl IntoIterator<Item = (String, PolicySummary)>,
    ) -> Report {
        let policies: BTreeMap<String, PolicySummary> = summaries.into_iter().collect();
        let comparison = compare(&policies);
        Report {
            run,
            policies,
            comparison,
            sweep: Vec::new(),
            peak_search: None,
        }
    }

    /// The report as pretty-printed JSON, ending with a newline.
    pub fn to_json(&self) -> Result<String, ReportError> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Writes `report.json` into `dir` and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        write_file(dir, REPORT_FILE, &self.to_json()?)
    }
}
