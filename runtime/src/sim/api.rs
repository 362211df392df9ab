//! The simulator's entry points, as the benchmark harness calls them.

use fastlibra_kernels::HardwareConfig;

use crate::engine::PolicyKind;
use crate::outcome::{EngineStats, RequestOutcome};
use crate::workload::Workload;

/// Where a running simulation is, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimProgress {
    /// Virtual time reached, ns.
    pub simulated_ns: u64,
    /// Time of the last arrival, ns (the run drains past it).
    pub last_arrival_ns: u64,
    /// Requests finished or failed so far.
    pub requests_done: u64,
}

/// A progress callback, called every few thousand events.
#[derive(Clone)]
pub struct ProgressFn(pub std::sync::Arc<dyn Fn(SimProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// How to run one simulation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Model, GPU and cost parameters.
    pub hardware: HardwareConfig,
    /// Seed for everything the driver draws (synthetic output tokens). The workload has its own.
    pub seed: u64,
    /// Run `check_invariants()` on the tree after every event (slow; tests turn it on).
    pub check_invariants: bool,
    /// For `vllm`: the static fraction of HBM pages reserved for LoRA adapters (default 0.2).
    pub lora_fraction: Option<f64>,
    /// For `vllm` and `vllm-async`: vLLM's `max_cpu_loras`, the most adapters cached in host
    /// memory (the rest are read from disk when needed). `None`: all that fit in the host tier.
    pub max_cpu_loras: Option<u32>,
    /// Called as the run advances (`None`: silent).
    pub progress: Option<ProgressFn>,
}

/// The result of simulating one policy on one workload.
#[derive(Clone, Debug)]
pub struct SimResult {
    /// Policy name as given on the command line (`fastlibra`, `vllm`, `vllm-oracle`, …).
    pub policy: String,
    /// One outcome per request, in request-id order.
    pub outcomes: Vec<RequestOutcome>,
    /// Counters and the HBM timeline.
    pub stats: EngineStats,
    /// Virtual time at the end of the run, ns.
    pub simulated_ns: u64,
    /// For `vllm` and `vllm-oracle`: the LoRA fraction used (the oracle's best one).
    pub lora_fraction: Option<f64>,
}

impl SimResult {
    /// Requests that failed (any reason).
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_some()).count()
    }

    /// Mean time to first token over the requests that got one, ns (infinite when none did).
    pub fn mean_ttft_ns(&self) -> f64 {
        let (sum, count) = self
            .outcomes
            .iter()
            .filter_map(|o| o.ttft_ns())
            .fold((0.0, 0u64), |(sum, count), t| (sum + t as f64, count + 1));
        if count == 0 {
            f64::INFINITY
        } else {
            sum / count as f64
        }
    }
}

/// Errors of a simulation set-up (the run itself cannot fail).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Unknown policy name.
    #[error("unknown policy `{name}`; valid policies: {valid}")]
    UnknownPolicy {
        /// The name given.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// The hardware cannot hold the model and a minimal cache.
    #[error("{0}")]
    Capacity(String),
    /// The device has less free memory than the plan needs (another tenant holds part of
    /// HBM): the run does not start.
    #[error(
        "device out of memory: {available} of {planned} planned HBM pages are free; \
         at least {needed} are needed"
    )]
    DeviceOutOfMemory {
        /// Pages the memory plan expected.
        planned: u32,
        /// Pages actually free.
        available: u32,
        /// The least the engine can run with.
        needed: u32,
    },
    /// Bad hardware configuration.
    #[error(transparent)]
    Hardware(#[from] fastlibra_kernels::ConfigError),
    /// Bad memory geometry.
    #[error(transparent)]
    Alloc(#[from] fastlibra_alloc::AllocError),
}

/// All policy names `run_policy` accepts.
pub const POLICIES: [&str; 7] = [
    "fastlibra",
    "vllm",
    "vllm-async",
    "slora",
    "fastlibra-wom",
    "fastlibra-wos",
    "vllm-oracle",
];

/// The policies a default benchmark compares.
pub const MAIN_POLICIES: [&str; 3] = ["fastlibra", "vllm", "slora"];

/// Simulates `policy` (one of [`POLICIES`]) on `workload`. `vllm-oracle` runs `vllm` at every
/// LoRA fraction from 0.05 to 0.95 in steps of 0.05 and returns the run with the lowest mean
/// TTFT, with the fraction it chose.
pub fn run_policy(
    workload: &Workload,
    policy: &str,
    options: &SimOptions,
) -> Result<SimResult, SimError> {
    if policy == "vllm-oracle" {
        return super::oracle::run(workload, options);
    }
    let kind = PolicyKind::from_name(policy).ok_or_else(|| SimError::UnknownPolicy {
        name: policy.to_string(),
        valid: POLICIES.join(", "),
    })?;
    super::driver::simulate(workload, kind, options)
}
