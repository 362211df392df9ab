//! A minimal hand driver for scripted engine scenarios: every transfer takes `transfer_ns`,
//! every step `step_ns` plus `prefill_token_ns` per prefill token, tokens are a counter.
//! Invariants are checked after every input.

#![allow(dead_code)]

use fastlibra_runtime::engine::{
    AdapterInfo, CostHints, Engine, EngineConfig, Lost, NewRequest, PolicyKind,
};
use fastlibra_runtime::outcome::RequestOutcome;

pub const BLOCK: u32 = 4;

pub fn config(policy: PolicyKind, hbm_pages: u32, adapters: &[u32]) -> EngineConfig {
    let mut config = EngineConfig::new(
        policy,
        [hbm_pages, 1_000, 1_000],
        BLOCK,
        1,
        1 << 20,
        adapters
            .iter()
            .map(|&pages| AdapterInfo { rank: 8, pages })
            .collect(),
        CostHints {
            h2d_ns_per_page: 1_000.0,
            d2h_ns_per_page: 1_000.0,
            nvme_read_ns_per_page: 5_000.0,
            recompute_ns_per_token: 10_000.0,
        },
    );
    config.check_invariants = true;
    config.prefill_token_budget = 64;
    config
}

pub struct Hand {
    pub engine: Engine,
    pub now: u64,
    pub transfer_ns: u64,
    pub step_ns: u64,
    /// Added to a step's time per prefill token it computes (0: every step takes `step_ns`).
    pub prefill_token_ns: u64,
    pending_transfers: Vec<(u64, u64)>,
    pending_step: Option<(u64, u64, usize)>,
    pub outcomes: Vec<RequestOutcome>,
    next_token: u32,
    /// The next this many transfers are reported lost (their source data unusable).
    pub lose_transfers: u32,
    /// What the engine did with each lost transfer.
    pub lost: Vec<Lost>,
}

impl Hand {
    pub fn new(config: EngineConfig) -> Hand {
        Hand {
            engine: Engine::new(config).expect("valid config"),
            now: 0,
            transfer_ns: 1_000,
            step_ns: 1_000_000,
            prefill_token_ns: 0,
            pending_transfers: Vec::new(),
            pending_step: None,
            outcomes: Vec::new(),
            next_token: 1,
            lose_transfers: 0,
            lost: Vec::new(),
        }
    }

    pub fn arrive(
        &mut self,
        id: u64,
        adapter: u32,
        session: Option<u64>,
        tokens: Vec<u32>,
        max_new: u32,
    ) {
        self.engine.handle_arrival(
            self.now,
            NewRequest {
                id,
                adapter,
                session,
                tokens,
                max_new_tokens: max_new,
            },
        );
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(cmd) = self.engine.poll_transfer() {
            self.pending_transfers
                .push((self.now + self.transfer_ns, cmd.id));
        }
        if let Some(step) = self.engine.poll_step() {
            let prefill: u64 = step.prefill.iter().map(|p| u64::from(p.new_tokens)).sum();
            let done = self.now + self.step_ns + prefill * self.prefill_token_ns;
            self.pending_step = Some((done, step.id, step.samples.len()));
        }
        while let Some(outcome) = self.engine.poll_outcome() {
            self.outcomes.push(outcome);
        }
    }

    /// Runs events until nothing is pending or `until` is reached.
    pub fn run_until(&mut self, until: u64) {
        loop {
            let next_transfer = self.pending_transfers.iter().map(|p| p.0).min();
            let next_step = self.pending_step.map(|s| s.0);
            let next_tick = self.engine.poll_timeout().map(|t| t.0);
            let next = [next_transfer, next_step, next_tick]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next else { return };
            if t > until {
                return;
            }
            self.now = t;
            if next_transfer == Some(t) {
                let i = self
                    .pending_transfers
                    .iter()
                    .position(|p| p.0 == t)
                    .expect("due");
                let (_, id) = self.pending_transfers.remove(i);
                if self.lose_transfers > 0 {
                    self.lose_transfers -= 1;
                    let lost = self.engine.handle_transfer_lost(t, id).expect("issued");
                    self.lost.push(lost);
                } else {
                    self.engine
                        .handle_transfer_done(t, id, true)
                        .expect("issued");
                }
            } else if next_step == Some(t) {
                let (_, id, samples) = self.pending_step.take().expect("due");
                let tokens: Vec<u32> = (0..samples as u32).map(|i| self.next_token + i).collect();
                self.next_token += samples as u32;
                self.engine
                    .handle_step_done(t, id, &tokens)
                    .expect("issued");
            } else {
                self.engine.handle_timeout(t);
            }
            self.collect();
        }
    }

    pub fn outcome(&self, id: u64) -> &RequestOutcome {
        self.outcomes
            .iter()
            .find(|o| o.request == id)
            .expect("finished")
    }
}

pub fn tokens(seed: u32, n: u32) -> Vec<u32> {
    (0..n).map(|i| seed * 1000 + i).collect()
}
