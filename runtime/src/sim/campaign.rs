//! The fault-injection campaign: one seed picks a fault kind, a policy, a tiny workload and
//! the fault draws; the run goes through [`run_stressed`] and its checkers. Tests run a
//! thousand seeds of it; `bench/examples/faults.rs` runs longer campaigns.
//!
//! The hardware is Llama-3-8B on a GPU cut down to a few hundred KV pages, with a host tier
//! too small for every adapter (some start on NVMe), so a tiny workload already swaps KV and
//! adapters through every tier and link.

use fastlibra_kernels::HardwareConfig;

use super::api::{SimError, SimOptions};
use super::faults::{FaultCounts, FaultPlan, SlowLink, SplitMix64};
use super::plan::{ACTIVATION_RESERVE_BYTES, BLOCK_TOKENS};
use super::stress::{StressPlan, run_stressed};
use crate::engine::Link;
use crate::outcome::FailureReason;
use crate::workload::{AdapterSpec, SessionSpec, SessionStart, TurnSpec, Workload};

/// The kinds of fault a campaign cycles through (one per seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// NVMe reads that fail: the data is lost.
    NvmeReadError,
    /// Pages that fail their checksum after an NVMe read or a host → HBM copy.
    CorruptPage,
    /// NVMe writes that fail.
    NvmeWriteError,
    /// Host ↔ HBM copies that fail.
    PcieError,
    /// Copies that take 50 times longer.
    LatencySpike,
    /// One link 20 times slower for a while.
    SlowLink,
    /// Steps that take 100 times longer.
    StalledStep,
    /// Part of HBM taken by another tenant; too much of it stops the run at start-up.
    DeviceOutOfMemory,
    /// All of the above at once, at lower rates.
    Mixed,
}

impl FaultKind {
    /// Every kind, in the order seeds cycle through them.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::NvmeReadError,
        FaultKind::CorruptPage,
        FaultKind::NvmeWriteError,
        FaultKind::PcieError,
        FaultKind::LatencySpike,
        FaultKind::SlowLink,
        FaultKind::StalledStep,
        FaultKind::DeviceOutOfMemory,
        FaultKind::Mixed,
    ];

    /// The plan of this kind for `seed` (rates and windows drawn from the seed).
    pub fn plan(self, seed: u64) -> FaultPlan {
        let mut rng = SplitMix64(seed ^ 0xfa17_c0de);
        let p = |rng: &mut SplitMix64, lo: u64, hi: u64| rng.range(lo, hi) as f64 / 100.0;
        let mut plan = FaultPlan {
            seed,
            ..FaultPlan::default()
        };
        let all = self == FaultKind::Mixed;
        let scale = if all { 0.3 } else { 1.0 };
        if all || self == FaultKind::NvmeReadError {
            plan.nvme_read_error = p(&mut rng, 5, 40) * scale;
        }
        if all || self == FaultKind::CorruptPage {
            plan.corrupt_page = p(&mut rng, 2, 20) * scale;
        }
        if all || self == FaultKind::NvmeWriteError {
            plan.nvme_write_error = p(&mut rng, 5, 50) * scale;
        }
        if all || self == FaultKind::PcieError {
            plan.pcie_error = p(&mut rng, 2, 20) * scale;
        }
        if all || self == FaultKind::LatencySpike {
            plan.latency_spike = p(&mut rng, 2, 20) * scale;
            plan.latency_spike_factor = 50;
        }
        if all || self == FaultKind::SlowLink {
            let link = Link::ALL[rng.range(0, 3) as usize];
            let from_ns = rng.range(0, 2_000) * 1_000_000;
            plan.slow_link = Some(SlowLink {
                link,
                factor: 20,
                from_ns,
                until_ns: from_ns + rng.range(500, 3_000) * 1_000_000,
            });
        }
        if all || self == FaultKind::StalledStep {
            plan.step_stall = p(&mut rng, 1, 5) * scale;
            plan.step_stall_factor = 100;
        }
        if all || self == FaultKind::DeviceOutOfMemory {
            plan.hbm_withheld_fraction = p(&mut rng, 5, 80) * scale;
        }
        plan
    }
}

/// Size of a campaign's runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CampaignSize {
    /// Sessions per run.
    pub sessions: u32,
    /// Adapters per run.
    pub adapters: u32,
    /// Arrival window, ms.
    pub window_ms: u64,
    /// HBM pages for KV and adapters before any is withheld.
    pub hbm_pages: u32,
    /// Run the engine's own `check_invariants()` after every input too (slower).
    pub engine_invariants: bool,
}

impl CampaignSize {
    /// Tiny runs for tests: forty sessions over a second.
    pub const TINY: CampaignSize = CampaignSize {
        sessions: 40,
        adapters: 6,
        window_ms: 1_000,
        hbm_pages: 128,
        engine_invariants: true,
    };
    /// Larger runs for the long campaign: a hundred sessions over five seconds.
    pub const LARGE: CampaignSize = CampaignSize {
        sessions: 100,
        adapters: 12,
        window_ms: 5_000,
        hbm_pages: 400,
        engine_invariants: false,
    };
}

/// What one seed did.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Its fault kind.
    pub kind: FaultKind,
    /// Its policy.
    pub policy: &'static str,
    /// Requests handed to the engine.
    pub requests: usize,
    /// Requests that failed (any reason).
    pub failed: usize,
    /// Requests left unfinished when the run ended (none when the run drained).
    pub unfinished: usize,
    /// What was injected.
    pub injected: FaultCounts,
    /// Checker violations; empty when every check held.
    pub violations: Vec<String>,
    /// The start-up error, for a device out of memory that left too few pages.
    pub refused: Option<String>,
}

impl SeedReport {
    /// Faults of the seed's own kind that were injected (all of them for `Mixed`; pages
    /// withheld for a device out of memory).
    pub fn injected_of_kind(&self) -> u64 {
        let i = &self.injected;
        match self.kind {
            FaultKind::NvmeReadError => i.nvme_read_errors,
            FaultKind::CorruptPage => i.corrupt_pages,
            FaultKind::NvmeWriteError => i.nvme_write_errors,
            FaultKind::PcieError => i.pcie_errors,
            FaultKind::LatencySpike => i.latency_spikes,
            FaultKind::SlowLink => i.slow_copies,
            FaultKind::StalledStep => i.stalled_steps,
            FaultKind::DeviceOutOfMemory => u64::from(i.hbm_pages_withheld),
            FaultKind::Mixed => {
                i.nvme_read_errors
                    + i.corrupt_pages
                    + i.nvme_write_errors
                    + i.pcie_errors
                    + i.latency_spikes
                    + i.slow_copies
                    + i.stalled_steps
            }
        }
    }
}

/// The policies seeds cycle through (every engine policy).
pub const CAMPAIGN_POLICIES: [&str; 5] = [
    "fastlibra",
    "vllm",
    "slora",
    "fastlibra-wom",
    "fastlibra-wos",
];

/// Runs one seed of the campaign. A set-up error other than a device out of memory, and a
/// request left unfinished in a run that had time to drain, count as violations.
pub fn run_seed(seed: u64, size: CampaignSize) -> SeedReport {
    let kind = FaultKind::ALL[(seed % FaultKind::ALL.len() as u64) as usize];
    let policy = CAMPAIGN_POLICIES[((seed / 9) % CAMPAIGN_POLICIES.len() as u64) as usize];
    let workload = tiny_workload(seed, size);
    let options = SimOptions {
        hardware: tiny_hardware(size.hbm_pages, 80, 600),
        seed,
        check_invariants: size.engine_invariants,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    };
    let plan = StressPlan {
        faults: kind.plan(seed),
        max_waiting: None,
    };
    let mut report = SeedReport {
        seed,
        kind,
        policy,
        requests: 0,
        failed: 0,
        unfinished: 0,
        injected: FaultCounts::default(),
        violations: Vec::new(),
        refused: None,
    };
    match run_stressed(&workload, policy, &options, &plan) {
        Ok((result, stress)) => {
            report.requests = result.outcomes.len();
            report.failed = result.failed();
            report.unfinished = result
                .outcomes
                .iter()
                .filter(|o| o.failure == Some(FailureReason::Unfinished))
                .count();
            report.injected = stress.injected;
            report.violations = stress.violations;
            if report.unfinished > 0 {
                report.violations.push(format!(
                    "{} requests unfinished after a drain of two minutes",
                    report.unfinished
                ));
            }
        }
        Err(e @ SimError::DeviceOutOfMemory { .. }) => report.refused = Some(e.to_string()),
        Err(e) => report.violations.push(format!("set-up failed: {e}")),
    }
    report
}

/// Llama-3-8B on an H100 cut down to `hbm_pages` KV pages, with `host_pages` and `nvme_pages`
/// pages in the lower tiers (pages of 16 tokens, 2 MiB).
pub fn tiny_hardware(hbm_pages: u32, host_pages: u32, nvme_pages: u32) -> HardwareConfig {
    let mut hardware =
        HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("built-in presets");
    let page = hardware.model.kv_bytes_per_token_per_gpu() * u64::from(BLOCK_TOKENS);
    let pool = page * u64::from(hbm_pages);
    let used = hardware.model.weight_bytes_per_gpu() + ACTIVATION_RESERVE_BYTES + pool;
    // The plan uses 90 % of HBM; a little slack keeps the rounding on the right side.
    hardware.gpu.hbm_bytes = (used as f64 / 0.9).ceil() as u64 + page / 2;
    hardware.gpu.host_memory_bytes = page * u64::from(host_pages);
    hardware.gpu.nvme_bytes = page * u64::from(nvme_pages);
    hardware
}

/// A small chat-like workload: each adapter has a system prompt its sessions share; sessions
/// of one to three turns arrive over the window; a few start after another session's turn.
pub fn tiny_workload(seed: u64, size: CampaignSize) -> Workload {
    let mut rng = SplitMix64(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x7e57);
    let adapters: Vec<AdapterSpec> = (0..size.adapters)
        .map(|i| AdapterSpec {
            name: format!("lora-{i}"),
            rank: [4, 8][rng.range(0, 1) as usize],
        })
        .collect();
    let system: Vec<Vec<u32>> = (0..size.adapters).map(|_| tokens(&mut rng, 32)).collect();
    // `After` always names an earlier session, as `Workload` requires.
    let sessions: Vec<SessionSpec> = (0..size.sessions)
        .map(|index| {
            let adapter = rng.range(0, u64::from(size.adapters) - 1) as u32;
            let start = if index > 0 && rng.range(0, 9) == 0 {
                SessionStart::After {
                    session: rng.range(0, u64::from(index) - 1) as u32,
                    turn: 0,
                    delay_ns: rng.range(0, 50) * 1_000_000,
                }
            } else {
                SessionStart::At(rng.range(0, size.window_ms) * 1_000_000)
            };
            let turns = (0..rng.range(1, 3))
                .map(|turn| {
                    let mut prompt = if turn == 0 {
                        system[adapter as usize].clone()
                    } else {
                        Vec::new()
                    };
                    let len = rng.range(8, 120) as usize;
                    prompt.extend(tokens(&mut rng, len));
                    TurnSpec {
                        think_ns: rng.range(50, 500) * 1_000_000,
                        tokens: prompt,
                        max_new_tokens: rng.range(1, 24) as u32,
                    }
                })
                .collect();
            SessionSpec {
                adapter,
                start,
                turns,
            }
        })
        .collect();
    Workload {
        name: "tiny".into(),
        adapters,
        sessions,
    }
}

fn tokens(rng: &mut SplitMix64, len: usize) -> Vec<u32> {
    (0..len).map(|_| rng.range(0, 31_999) as u32).collect()
}
