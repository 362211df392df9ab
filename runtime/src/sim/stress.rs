//! Stressed runs: the simulator with injected faults (see [`super::faults`]), an admission
//! limit, the checkers of [`super::checks`] after every step and at the end, and the peaks of
//! what the engine holds (for overload runs).
//!
//! ```text
//!   run_stressed(workload, policy, options, plan)
//!     ├─ start-up: withhold HBM pages (device out of memory), set max_waiting
//!     ├─ every transfer: fate (ok / failed / lost) and duration drawn from the fault seed
//!     ├─ every step: maybe stalled; checked (LoRA in HBM, no lost page, block table covers)
//!     ├─ every event: peaks of waiting requests, held requests, tree nodes
//!     └─ end: outcomes (exactly one each), counters against the driver's, invariants
//! ```

use super::api::{SimError, SimOptions, SimResult};
use super::checks::Checker;
use super::faults::{Fate, FaultCounts, FaultPlan, Injector};
use crate::engine::{Engine, PolicyKind, TransferCmd};
use crate::outcome::RequestOutcome;
use crate::workload::Workload;

/// How to stress one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StressPlan {
    /// Faults to inject (the default injects none).
    pub faults: FaultPlan,
    /// Admission control: most requests waiting; `None` keeps the engine's default.
    pub max_waiting: Option<u32>,
}

/// The most the engine held at any event of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peaks {
    /// Requests waiting for admission to a batch.
    pub waiting_requests: usize,
    /// Requests held (waiting, staged or running).
    pub active_requests: usize,
    /// Nodes of the tree (adapters and KV blocks in every tier).
    pub tree_nodes: usize,
}

/// What a stressed run found, besides its [`SimResult`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StressReport {
    /// Faults injected.
    pub injected: FaultCounts,
    /// Steps the checkers looked at.
    pub steps_checked: u64,
    /// Checker violations (empty when all held); the first few, each naming what broke.
    pub violations: Vec<String>,
    /// Peaks of what the engine held.
    pub peaks: Peaks,
}

/// Simulates `policy` on `workload` under `plan`, with the checkers on. `vllm-oracle` is not
/// supported here (it is a sweep of `vllm` runs); every other name of
/// [`super::POLICIES`] is.
pub fn run_stressed(
    workload: &Workload,
    policy: &str,
    options: &SimOptions,
    plan: &StressPlan,
) -> Result<(SimResult, StressReport), SimError> {
    let kind = PolicyKind::from_name(policy).ok_or_else(|| SimError::UnknownPolicy {
        name: policy.to_string(),
        valid: super::POLICIES
            .iter()
            .filter(|p| **p != "vllm-oracle")
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let (result, report, _) =
        super::driver::simulate_with(workload, kind, options, Some(plan), None)?;
    Ok((result, report.unwrap_or_default()))
}

/// The driver-side state of a stressed run.
#[derive(Debug)]
pub(crate) struct Stress {
    pub(crate) injector: Injector,
    checker: Checker,
    peaks: Peaks,
    max_waiting: Option<u32>,
}

impl Stress {
    pub(crate) fn new(plan: &StressPlan) -> Stress {
        Stress {
            injector: Injector::new(&plan.faults),
            checker: Checker::default(),
            peaks: Peaks::default(),
            max_waiting: plan.max_waiting,
        }
    }

    /// Applies the start-up part of the plan to the engine's sizes and limits.
    pub(crate) fn configure(
        &mut self,
        config: &mut crate::engine::EngineConfig,
        min_hbm_pages: u32,
    ) -> Result<(), SimError> {
        let planned = config.pages[0];
        let left = self.injector.hbm_pages(planned);
        if left < min_hbm_pages {
            return Err(SimError::DeviceOutOfMemory {
                planned,
                available: left,
                needed: min_hbm_pages,
            });
        }
        config.pages[0] = left;
        if let Some(max) = self.max_waiting {
            config.max_waiting = max;
        }
        Ok(())
    }

    pub(crate) fn arrival(&mut self, id: u64, max_new_tokens: u32) {
        self.checker.arrival(id, max_new_tokens);
    }

    /// A transfer starts; `fate` is how it will end.
    pub(crate) fn transfer_issued(&mut self, cmd: TransferCmd, fate: Fate) {
        self.checker.transfer_issued(cmd, fate);
    }

    /// A transfer ends: how to report it.
    pub(crate) fn transfer_reported(&mut self, id: u64) -> Fate {
        self.checker.transfer_reported(id)
    }

    pub(crate) fn step_issued(&mut self, engine: &Engine) {
        self.checker.step_issued(engine);
    }

    pub(crate) fn observe(&mut self, engine: &Engine) {
        let p = &mut self.peaks;
        p.waiting_requests = p.waiting_requests.max(engine.waiting.len());
        p.active_requests = p.active_requests.max(engine.active_requests());
        p.tree_nodes = p.tree_nodes.max(engine.tree().node_count());
    }

    pub(crate) fn finish(mut self, engine: &Engine, outcomes: &[RequestOutcome]) -> StressReport {
        self.checker.finish(engine, outcomes);
        StressReport {
            injected: self.injector.counts,
            steps_checked: self.checker.steps_checked,
            violations: self.checker.violations,
            peaks: self.peaks,
        }
    }
}
