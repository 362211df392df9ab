//! Checkers of a stressed run: what must hold whatever was injected.
//!
//! - **Nothing admitted is lost**: every request handed to the engine has exactly one outcome,
//!   completed with all its tokens or failed with a reason.
//! - **No invalid KV served**: every sequence of every step computes with its LoRA resident in
//!   HBM, and under a policy that enforces the usage dependency no HBM page holds KV whose LoRA
//!   is not in HBM.
//! - **No lost or corrupt page served**: no step's block table or LoRA uses a node whose data
//!   the driver reported lost (the node ids carry a serial, so a reused slot is not confused
//!   with the lost node), and every block table covers the positions the step computes.
//! - **Accounting exact**: the engine's byte, failure and loss counters equal what the driver
//!   reported; after `finish` nothing is pinned or held and the tree's `check_invariants()`
//!   passes.

use fastlibra_alloc::{NodeId, NodeKind, Tier};
use rustc_hash::{FxHashMap, FxHashSet};

use super::faults::Fate;
use crate::engine::{Engine, Link, TransferCmd};
use crate::outcome::{FailureReason, LinkBytes, RequestOutcome};

/// Observes one run through the driver and collects violations.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// Transfers issued and not reported yet, with how they will end.
    in_flight: FxHashMap<u64, (TransferCmd, Fate)>,
    bytes_ok: LinkBytes,
    failures: u64,
    nodes_lost: u64,
    pages_lost: u64,
    /// Nodes whose data was reported lost.
    poisoned: Vec<NodeId>,
    /// Request id → output tokens a completion must have.
    expected_tokens: FxHashMap<u64, u32>,
    pub(crate) steps_checked: u64,
    pub(crate) violations: Vec<String>,
}

/// Violations kept per run (the first ones name the problem; the rest only count).
const VIOLATIONS_MAX: usize = 32;

impl Checker {
    fn violation(&mut self, what: String) {
        if self.violations.len() < VIOLATIONS_MAX {
            self.violations.push(what);
        }
    }

    pub(crate) fn arrival(&mut self, id: u64, max_new_tokens: u32) {
        if self
            .expected_tokens
            .insert(id, max_new_tokens.max(1))
            .is_some()
        {
            self.violation(format!("request id {id} handed in twice"));
        }
    }

    pub(crate) fn transfer_issued(&mut self, cmd: TransferCmd, fate: Fate) {
        if self.in_flight.insert(cmd.id, (cmd, fate)).is_some() {
            self.violation(format!("transfer id {} issued twice", cmd.id));
        }
    }

    /// Transfer `id` ends: returns the fate it was issued with (`Ok` for one never issued,
    /// which is a violation).
    pub(crate) fn transfer_reported(&mut self, id: u64) -> Fate {
        let Some((cmd, fate)) = self.in_flight.remove(&id) else {
            self.violation(format!("transfer {id} reported but never issued"));
            return Fate::Ok;
        };
        match fate {
            Fate::Ok => {
                let bytes = &mut self.bytes_ok;
                match cmd.link {
                    Link::H2D => bytes.h2d += cmd.bytes,
                    Link::D2H => bytes.d2h += cmd.bytes,
                    Link::NvmeRead => bytes.nvme_read += cmd.bytes,
                    Link::NvmeWrite => bytes.nvme_write += cmd.bytes,
                }
            }
            Fate::Failed => self.failures += 1,
            Fate::Lost => {
                self.nodes_lost += cmd.nodes().len() as u64;
                self.pages_lost += u64::from(cmd.pages);
                self.poisoned.extend_from_slice(cmd.nodes());
            }
        }
        fate
    }

    /// Checks the step the engine just issued: every sequence's LoRA in HBM and not lost,
    /// no page of a lost node in its block table, enough pages for its positions.
    pub(crate) fn step_issued(&mut self, engine: &Engine) {
        self.steps_checked += 1;
        let tree = engine.tree();
        self.poisoned.retain(|&id| tree.node(id).is_ok());
        let mut lost_pages = FxHashSet::default();
        for &id in &self.poisoned {
            if let Ok(pages) = tree.pages(id, Tier::Hbm) {
                lost_pages.extend(pages);
            }
        }
        let config = engine.config();
        let pages_per_block = config.pages_per_block.max(1) as usize;
        for seq in engine.step_inputs() {
            let request = seq.request;
            match tree.node(seq.lora_node) {
                Ok(view) if view.kind() == NodeKind::Lora && view.tier() == Tier::Hbm => {}
                Ok(view) => self.violation(format!(
                    "request {request}: step computes with LoRA {} of kind {:?} in {:?}",
                    seq.lora_node,
                    view.kind(),
                    view.tier()
                )),
                Err(e) => self.violation(format!("request {request}: LoRA node gone: {e}")),
            }
            if self.poisoned.contains(&seq.lora_node) {
                self.violation(format!(
                    "request {request}: step computes with lost LoRA {}",
                    seq.lora_node
                ));
            }
            if let Some(page) = seq.block_table.iter().find(|p| lost_pages.contains(*p)) {
                self.violation(format!(
                    "request {request}: block table serves page {page} of a lost node"
                ));
            }
            let covered =
                (seq.block_table.len() / pages_per_block) as u64 * u64::from(config.block_tokens);
            let needed = u64::from(seq.start_pos) + seq.tokens.len() as u64;
            if covered < needed {
                self.violation(format!(
                    "request {request}: block table covers {covered} positions, step needs {needed}"
                ));
            }
        }
        if config.knobs.enforce_dependency && tree.invalid_kv_pages() != 0 {
            self.violation(format!(
                "{} pages of invalid KV in HBM during a step",
                tree.invalid_kv_pages()
            ));
        }
    }

    /// The end-of-run checks, after `finish`.
    pub(crate) fn finish(&mut self, engine: &Engine, outcomes: &[RequestOutcome]) {
        self.check_outcomes(outcomes);
        let stats = engine.stats();
        let counted = (
            stats.bytes,
            stats.transfer_failures,
            stats.nodes_lost,
            stats.pages_lost,
        );
        let reported = (
            self.bytes_ok,
            self.failures,
            self.nodes_lost,
            self.pages_lost,
        );
        if counted != reported {
            self.violation(format!(
                "engine counted (bytes, failures, nodes lost, pages lost) = {counted:?}, \
                 the driver reported {reported:?}"
            ));
        }
        if !self.in_flight.is_empty() {
            // Transfers still in flight at the horizon are fine only if requests were left
            // unfinished too (the run was cut short).
            let cut_short = outcomes
                .iter()
                .any(|o| o.failure == Some(FailureReason::Unfinished));
            if !cut_short {
                self.violation(format!(
                    "{} transfers never reported in a run that drained",
                    self.in_flight.len()
                ));
            }
        }
        let tree = engine.tree();
        if tree.pinned_count() != 0 || engine.active_requests() != 0 {
            self.violation(format!(
                "after finish: {} nodes pinned, {} requests held",
                tree.pinned_count(),
                engine.active_requests()
            ));
        }
        if let Err(v) = tree.check_invariants() {
            self.violation(format!("after finish: {v}"));
        }
    }

    fn check_outcomes(&mut self, outcomes: &[RequestOutcome]) {
        let mut seen = FxHashSet::default();
        for o in outcomes {
            let id = o.request;
            if !seen.insert(id) {
                self.violation(format!("request {id} has two outcomes"));
                continue;
            }
            let Some(&expected) = self.expected_tokens.get(&id) else {
                self.violation(format!("outcome for request {id}, never handed in"));
                continue;
            };
            match &o.failure {
                None if o.output_tokens != expected || o.first_token_ns.is_none() => {
                    self.violation(format!(
                        "request {id} completed with {} of {expected} tokens",
                        o.output_tokens
                    ));
                }
                Some(reason) if reason.to_string().is_empty() => {
                    self.violation(format!("request {id} failed without a reason"));
                }
                _ => {}
            }
        }
        let missing = self
            .expected_tokens
            .keys()
            .filter(|id| !seen.contains(*id))
            .count();
        if missing != 0 {
            self.violation(format!("{missing} requests have no outcome"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(request: u64, output_tokens: u32, failure: Option<FailureReason>) -> RequestOutcome {
        RequestOutcome {
            request,
            first_token_ns: (output_tokens > 0).then_some(1),
            finish_ns: 2,
            prompt_tokens: 4,
            output_tokens,
            failure,
            ..RequestOutcome::default()
        }
    }

    #[test]
    fn lost_duplicated_and_short_requests_are_violations() {
        let mut checker = Checker::default();
        for id in 0..4 {
            checker.arrival(id, 3);
        }
        checker.arrival(3, 3);
        checker.check_outcomes(&[
            outcome(0, 3, None),
            outcome(1, 2, None),
            outcome(1, 0, Some(FailureReason::Rejected)),
            outcome(9, 3, None),
        ]);
        let v = checker.violations.join("\n");
        for needle in [
            "request id 3 handed in twice",
            "request 1 completed with 2 of 3 tokens",
            "request 1 has two outcomes",
            "outcome for request 9, never handed in",
            "2 requests have no outcome",
        ] {
            assert!(v.contains(needle), "missing `{needle}` in:\n{v}");
        }
    }

    #[test]
    fn a_report_of_a_transfer_never_issued_is_a_violation() {
        let mut checker = Checker::default();
        assert_eq!(checker.transfer_reported(5), Fate::Ok);
        assert_eq!(checker.violations.len(), 1);
        assert!(checker.violations[0].contains("never issued"));
    }

    #[test]
    fn violations_are_capped() {
        let mut checker = Checker::default();
        for id in 0..100 {
            checker.transfer_reported(id);
        }
        assert_eq!(checker.violations.len(), VIOLATIONS_MAX);
    }
}
