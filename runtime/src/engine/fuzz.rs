//! The fuzzing harness of the engine core: arbitrary bytes become a small configuration and a
//! sequence of driver events (arrivals, transfer completions that may fail, step completions,
//! timer ticks, session ends, and bogus reports), applied through the sans-IO interface with
//! `check_invariants` on. Afterwards the run is drained and finished, and every request must
//! have exactly one outcome and the engine must hold nothing.
//!
//! Used by the `engine_events` fuzz target and by the test that replays its corpus
//! (`runtime/tests/fuzz_corpus.rs`).
//!
//! Byte layout: eight configuration bytes (missing bytes read as zero), then events, each an
//! opcode byte followed by its arguments. Opcodes `0xE0..=0xFF` are the recovery events; any
//! other opcode is read as `op % 8`.
//!
//! ```text
//!  0..=1  arrival        adapter, session, max_new, len, ⌈len/4⌉ bytes of 2-bit tokens
//!  2..=3  transfer done  index into the issued transfers (top two bits set: failed)
//!  4      step done      (no argument)
//!  5      tick           time step (× 10 ms)
//!  6      end session    session
//!  7      bogus report   kind: stale transfer id, never-issued id, wrong step id, wrong count
//!  E0..EF transfer lost  index into the issued transfers (none issued: a never-issued id)
//!  F0..FF reload adapter adapter (one past the last: unknown), pages − 1 (mod 8)
//! ```
//!
//! A lost transfer must be accepted and counted (a lost adapter comes back as the current
//! version, on a new node); a reload must give a newer version, or a typed error and no
//! change when the adapter is unknown or no tier has room.

use std::collections::BTreeMap;

use fastlibra_alloc::Tier;

use super::{
    AdapterInfo, CostHints, Engine, EngineConfig, EngineError, Lost, NewRequest, PolicyKind,
};
use crate::outcome::{EngineStats, FailureReason, RequestOutcome};

/// Events applied at most per case.
const EVENTS_MAX: usize = 128;
/// Driver steps the final drain may take before giving up and calling `finish`.
const DRAIN_STEPS_MAX: usize = 1_000;
/// Consecutive idle ticks (nothing issued, nothing finished) that end the drain early.
const IDLE_TICKS_MAX: usize = 8;
/// Sessions are drawn from `1..=SESSIONS` (0 means none), so follow-up turns happen.
const SESSIONS: u8 = 4;
/// Transfer ids far above anything a bounded case can issue.
const NEVER_ISSUED_ID: u64 = 1 << 48;
/// Opcodes from here on are the recovery events.
const RECOVERY_OPS: u8 = 0xE0;

/// One fuzz case. `Err` describes a broken driver-side check; the engine's own invariant
/// checks panic.
pub fn run_case(data: &[u8]) -> Result<(), String> {
    run_case_stats(data).map(drop)
}

/// [`run_case`], returning the engine's counters at the end (`None` for a configuration the
/// tree rejects), so tests can see which paths a case reached.
pub fn run_case_stats(data: &[u8]) -> Result<Option<EngineStats>, String> {
    let mut bytes = Bytes(data);
    let config = decode_config(&mut bytes);
    // A configuration the tree rejects (no tier can hold the adapters) is a typed error.
    let Ok(engine) = Engine::new(config) else {
        return Ok(None);
    };
    let mut driver = Driver::new(engine);
    let mut events = 0;
    while !bytes.0.is_empty() && events < EVENTS_MAX {
        driver.event(&mut bytes)?;
        events += 1;
    }
    driver.drain()?;
    driver.finish_and_check().map(Some)
}

/// A reader that yields zeros once the input runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Cost hints of the small engines the fuzzer and the unit tests drive: 1 µs a page over PCIe
/// each way, 5 µs from NVMe, 10 µs to recompute a token.
pub(crate) const SMALL_COSTS: CostHints = CostHints {
    h2d_ns_per_page: 1_000.0,
    d2h_ns_per_page: 1_000.0,
    nvme_read_ns_per_page: 5_000.0,
    recompute_ns_per_token: 10_000.0,
};

fn decode_config(bytes: &mut Bytes<'_>) -> EngineConfig {
    let policy = PolicyKind::ALL[usize::from(bytes.next()) % PolicyKind::ALL.len()];
    let hbm = 16 + u32::from(bytes.next()) % 65;
    let host = u32::from(bytes.next()) % 65;
    let nvme = u32::from(bytes.next()) % 65;
    let shape = bytes.next();
    let adapter_count = 1 + u32::from(shape & 3);
    let block_tokens = 2 + u32::from(shape >> 2) % 7;
    let sizes = u16::from_le_bytes([bytes.next(), bytes.next()]);
    let adapters = (0..adapter_count)
        .map(|i| AdapterInfo {
            rank: 8,
            pages: 1 + u32::from((sizes >> (3 * i)) & 7),
        })
        .collect();
    let limits = bytes.next();
    let mut config = EngineConfig::new(
        policy,
        [hbm, host, nvme],
        block_tokens,
        1,
        4096,
        adapters,
        SMALL_COSTS,
    );
    config.prefill_token_budget = 1 + u32::from(limits & 63);
    config.link_queue_depth = 1 + u32::from(limits >> 6);
    // The adapter sizes use the low 12 bits; the rest bound the pages of a batched transfer.
    config.transfer_pages_max = 1 + u32::from(sizes >> 12);
    // From at once (every request overdue: first come first served) to 1.75 s.
    config.overdue_after_ns = u64::from(limits & 7) * 250_000_000;
    // Fresh first from the first wait (0) to once the oldest has waited 300 ms.
    config.backlog_after_ns = u64::from((limits >> 3) & 3) * 100_000_000;
    config.check_invariants = true;
    config
}

/// What the driver expects of one request's outcome.
struct Expected {
    adapter_known: bool,
    output_tokens: u32,
}

/// The driver: the engine, the commands it issued and not yet heard back, and the requests.
struct Driver {
    engine: Engine,
    now_ns: u64,
    /// Issued, unfinished transfer ids, in issue order.
    transfers: Vec<u64>,
    /// Transfer ids already reported (reporting one again must fail).
    reported: Vec<u64>,
    /// The step in flight: id and number of samples.
    step: Option<(u64, usize)>,
    next_request: u64,
    next_token: u32,
    expected: BTreeMap<u64, Expected>,
    outcomes: BTreeMap<u64, RequestOutcome>,
}

impl Driver {
    fn new(engine: Engine) -> Driver {
        Driver {
            engine,
            now_ns: 0,
            transfers: Vec::new(),
            reported: Vec::new(),
            step: None,
            next_request: 1,
            next_token: 1,
            expected: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }

    fn event(&mut self, bytes: &mut Bytes<'_>) -> Result<(), String> {
        let op = bytes.next();
        if op >= RECOVERY_OPS {
            if op < 0xF0 {
                self.lose_transfer(bytes.next())?;
            } else {
                self.reload(bytes.next(), bytes.next())?;
            }
            return self.collect();
        }
        match op % 8 {
            0 | 1 => self.arrive(bytes),
            2 | 3 => {
                let arg = bytes.next();
                if !self.transfers.is_empty() {
                    let index = usize::from(arg & 63) % self.transfers.len();
                    self.complete_transfer(index, arg & 0xC0 != 0xC0)?;
                }
            }
            4 => self.complete_step()?,
            5 => {
                self.now_ns += u64::from(bytes.next()) * 10_000_000;
                self.engine.handle_timeout(self.now_ns);
            }
            6 => {
                let session = u64::from(bytes.next() % (SESSIONS + 1));
                self.engine.end_session(session);
            }
            _ => self.bogus(bytes.next())?,
        }
        self.collect()
    }

    fn arrive(&mut self, bytes: &mut Bytes<'_>) {
        let adapters = self.engine.config().adapters.len() as u32;
        let adapter = u32::from(bytes.next()) % (adapters + 1);
        let session = u64::from(bytes.next() % (SESSIONS + 1));
        let max_new = u32::from(bytes.next()) % 21;
        let len = usize::from(bytes.next()) % 41;
        let mut tokens = Vec::with_capacity(len);
        while tokens.len() < len {
            let packed = bytes.next();
            for shift in [0, 2, 4, 6] {
                if tokens.len() < len {
                    tokens.push(u32::from((packed >> shift) & 3));
                }
            }
        }
        let id = self.next_request;
        self.next_request += 1;
        self.expected.insert(
            id,
            Expected {
                adapter_known: adapter < adapters,
                output_tokens: max_new.max(1),
            },
        );
        let request = NewRequest {
            id,
            adapter,
            session: (session != 0).then_some(session),
            tokens,
            max_new_tokens: max_new,
        };
        self.engine.handle_arrival(self.now_ns, request);
    }

    fn complete_transfer(&mut self, index: usize, ok: bool) -> Result<(), String> {
        let id = self.transfers.remove(index);
        self.now_ns += 1_000;
        self.engine
            .handle_transfer_done(self.now_ns, id, ok)
            .map_err(|e| format!("issued transfer {id} refused: {e}"))?;
        self.reported.push(id);
        Ok(())
    }

    fn lose_transfer(&mut self, arg: u8) -> Result<(), String> {
        if self.transfers.is_empty() {
            let before = self.snapshot();
            let id = NEVER_ISSUED_ID + u64::from(arg);
            return match self.engine.handle_transfer_lost(self.now_ns, id) {
                Err(EngineError::UnknownTransfer(_)) if self.snapshot() == before => Ok(()),
                Err(EngineError::UnknownTransfer(_)) => Err(format!(
                    "lost never-issued {id}: refused but changed the state"
                )),
                other => Err(format!("lost never-issued {id}: {other:?}")),
            };
        }
        let id = self
            .transfers
            .remove(usize::from(arg) % self.transfers.len());
        let lost_before = self.engine.stats().nodes_lost;
        self.now_ns += 1_000;
        let lost = self
            .engine
            .handle_transfer_lost(self.now_ns, id)
            .map_err(|e| format!("lost issued transfer {id} refused: {e}"))?;
        self.reported.push(id);
        if self.engine.stats().nodes_lost != lost_before + 1 {
            return Err(format!("lost transfer {id} not counted"));
        }
        if let Lost::AdapterReloaded { registered, .. } = lost {
            let current = self.engine.tree().current_adapter(registered.adapter.id);
            if current != Ok(registered.adapter) {
                return Err(format!(
                    "lost adapter of transfer {id} came back as {:?}, current {current:?}",
                    registered.adapter
                ));
            }
        }
        Ok(())
    }

    fn reload(&mut self, adapter: u8, pages: u8) -> Result<(), String> {
        let adapters = self.engine.config().adapters.len() as u32;
        let adapter = u32::from(adapter) % (adapters + 1);
        let info = AdapterInfo {
            rank: 8,
            pages: 1 + u32::from(pages % 8),
        };
        let before = self.snapshot();
        self.now_ns += 1_000;
        let result = self.engine.reload_adapter(self.now_ns, adapter, info);
        let unchanged = self.snapshot() == before;
        match result {
            Ok((registered, _)) if registered.adapter.version > 0 => Ok(()),
            Ok((registered, _)) => Err(format!(
                "reload of adapter {adapter} gave version {}",
                registered.adapter.version
            )),
            Err(EngineError::UnknownAdapter(_)) if adapter >= adapters && unchanged => Ok(()),
            Err(EngineError::Alloc(_)) if adapter < adapters && unchanged => Ok(()),
            Err(e) => Err(format!(
                "reload of adapter {adapter} of {adapters}: error {e}, state changed: {}",
                !unchanged
            )),
        }
    }

    fn complete_step(&mut self) -> Result<(), String> {
        let Some((id, samples)) = self.step.take() else {
            return Ok(());
        };
        let tokens: Vec<u32> = (0..samples as u32).map(|i| self.next_token + i).collect();
        self.next_token += samples as u32;
        self.now_ns += 10_000;
        self.engine
            .handle_step_done(self.now_ns, id, &tokens)
            .map_err(|e| format!("step {id} in flight refused: {e}"))
    }

    /// Reports something the engine never issued; it must answer with a typed error and
    /// change nothing.
    fn bogus(&mut self, kind: u8) -> Result<(), String> {
        let before = self.snapshot();
        let (what, result) = match kind % 4 {
            0 => {
                let id = self.reported.last().copied().unwrap_or(0);
                let result = self.engine.handle_transfer_done(self.now_ns, id, true);
                (format!("stale transfer {id}"), result)
            }
            1 => {
                let id = NEVER_ISSUED_ID + u64::from(kind);
                let result = self.engine.handle_transfer_done(self.now_ns, id, false);
                (format!("never-issued transfer {id}"), result)
            }
            2 => {
                let id = self.step.map_or(0, |(id, _)| id + 1);
                let result = self.engine.handle_step_done(self.now_ns, id, &[]);
                (format!("step {id} not in flight"), result)
            }
            _ => {
                let (id, samples) = self.step.unwrap_or((0, 0));
                let tokens = vec![7; samples + 1];
                let result = self.engine.handle_step_done(self.now_ns, id, &tokens);
                (format!("step {id} with {} tokens", samples + 1), result)
            }
        };
        match result {
            Err(EngineError::UnknownTransfer(_) | EngineError::BadStep(_)) => {}
            Err(e) => return Err(format!("{what}: wrong error {e}")),
            Ok(()) => return Err(format!("{what}: accepted")),
        }
        if self.snapshot() != before {
            return Err(format!("{what}: refused but changed the engine's state"));
        }
        Ok(())
    }

    /// What a refused input must leave unchanged.
    fn snapshot(&self) -> impl PartialEq + use<> {
        let tree = self.engine.tree();
        (
            self.engine.active_requests(),
            tree.pinned_count(),
            tree.node_count(),
            Tier::ALL.map(|t| tree.usage(t)),
            self.engine.stats().clone(),
            self.engine.poll_timeout(),
        )
    }

    /// Takes every command and outcome the engine has for the driver.
    fn collect(&mut self) -> Result<(), String> {
        let mut bound = 0;
        while let Some(cmd) = self.engine.poll_transfer() {
            self.transfers.push(cmd.id);
            bound += 1;
            if bound > 100_000 {
                return Err("endless transfer commands".into());
            }
        }
        if let Some(step) = self.engine.poll_step() {
            if self.step.is_some() {
                return Err(format!(
                    "step {} issued while another is in flight",
                    step.id
                ));
            }
            self.step = Some((step.id, step.samples.len()));
        }
        // Adapters the engine registered again after a lost copy found no room (a real driver
        // writes their bytes here).
        while self.engine.poll_registration().is_some() {}
        while let Some(outcome) = self.engine.poll_outcome() {
            self.check_outcome(&outcome)?;
            self.outcomes.insert(outcome.request, outcome);
        }
        Ok(())
    }

    fn check_outcome(&self, outcome: &RequestOutcome) -> Result<(), String> {
        let id = outcome.request;
        let Some(expected) = self.expected.get(&id) else {
            return Err(format!("outcome for unknown request {id}"));
        };
        if self.outcomes.contains_key(&id) {
            return Err(format!("second outcome for request {id}"));
        }
        match &outcome.failure {
            None if !expected.adapter_known => Err(format!("{id} completed on an unknown adapter")),
            None if outcome.output_tokens != expected.output_tokens => Err(format!(
                "{id} completed with {} tokens, expected {}",
                outcome.output_tokens, expected.output_tokens
            )),
            Some(FailureReason::UnknownAdapter) if expected.adapter_known => {
                Err(format!("{id} failed as unknown adapter on a known one"))
            }
            Some(reason) if !expected.adapter_known && *reason != FailureReason::UnknownAdapter => {
                Err(format!("{id} on an unknown adapter failed as {reason}"))
            }
            Some(reason) if outcome.output_tokens >= expected.output_tokens => Err(format!(
                "{id} failed ({reason}) after all {} tokens",
                outcome.output_tokens
            )),
            _ => Ok(()),
        }
    }

    /// Completes every transfer and step, in order, with ticks while the engine waits, until
    /// nothing is left or the bound is reached.
    fn drain(&mut self) -> Result<(), String> {
        let mut idle_ticks = 0;
        for _ in 0..DRAIN_STEPS_MAX {
            if !self.transfers.is_empty() {
                self.complete_transfer(0, true)?;
                idle_ticks = 0;
            } else if self.step.is_some() {
                self.complete_step()?;
                idle_ticks = 0;
            } else if self.engine.active_requests() > 0 && idle_ticks < IDLE_TICKS_MAX {
                let next = self.engine.poll_timeout().map_or(0, |(t, _)| t);
                self.now_ns = self.now_ns.max(next);
                self.engine.handle_timeout(self.now_ns);
                idle_ticks += 1;
            } else {
                break;
            }
            self.collect()?;
        }
        Ok(())
    }

    fn finish_and_check(mut self) -> Result<EngineStats, String> {
        self.now_ns += 1;
        self.engine.finish(self.now_ns);
        self.collect()?;
        if let Some(missing) = self
            .expected
            .keys()
            .find(|id| !self.outcomes.contains_key(id))
        {
            return Err(format!("request {missing} vanished without an outcome"));
        }
        let tree = self.engine.tree();
        if tree.pinned_count() != 0 {
            return Err(format!("{} nodes pinned after finish", tree.pinned_count()));
        }
        if self.engine.active_requests() != 0 {
            return Err(format!(
                "{} requests held after finish",
                self.engine.active_requests()
            ));
        }
        tree.check_invariants()
            .map_err(|v| format!("after finish: {v}"))?;
        Ok(self.engine.stats().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovery_seeds_lose_transfers_and_reload_adapters() {
        for (name, data) in [
            (
                "fastlibra",
                &include_bytes!("../../../fuzz/corpus/engine_events/fastlibra-recovery")[..],
            ),
            (
                "vllm",
                &include_bytes!("../../../fuzz/corpus/engine_events/vllm-recovery")[..],
            ),
        ] {
            let stats = run_case_stats(data)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .expect("a valid configuration");
            assert!(stats.nodes_lost > 0, "{name}: no transfer lost");
            assert!(stats.adapters_reloaded > 0, "{name}: no adapter reloaded");
        }
    }

    #[test]
    fn a_lost_report_before_any_transfer_is_refused() {
        let data = include_bytes!("../../../fuzz/corpus/engine_events/lost-before-any-transfer");
        let stats = run_case_stats(data).expect("clean").expect("valid");
        assert_eq!(stats.nodes_lost, 0);
    }
}
