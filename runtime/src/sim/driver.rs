//! The discrete-event driver: replays a workload against the engine core in virtual time.
//!
//! Events (arrivals, transfer completions, step completions, engine timers) sit in one heap
//! ordered by (time, sequence number), so equal times resolve in a fixed order and the same
//! inputs give the same run. Links are FIFO servers (`latency + bytes / bandwidth` each);
//! compute runs one step at a time for `CostModel::iteration_ns`. Output tokens are synthetic,
//! a hash of the seed, request and position.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use fastlibra_kernels::{AdapterLoad, CostModel, Iteration, PrefillChunk};
use rustc_hash::FxHashMap;

use super::api::{ProgressFn, SimError, SimOptions, SimProgress, SimResult};
use super::faults::Fate;
use super::plan::{MIN_HBM_PAGES, MemoryPlan};
use super::stress::{Stress, StressPlan, StressReport};
use super::timing::CallTiming;
use crate::engine::{Engine, EngineConfig, Link, NewRequest, PolicyKind, StepCmd, TransferCmd};
use crate::outcome::RequestOutcome;
use crate::workload::{SessionStart, Workload};

/// How long the simulator keeps draining after the last arrival before it calls the rest
/// unfinished, ns (at least this, or the arrival span, whichever is longer).
const DRAIN_NS: u64 = 120_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival { session: u32, turn: u32 },
    TransferDone { id: u64 },
    StepDone { id: u64 },
    Tick,
}

struct Driver<'a> {
    workload: &'a Workload,
    engine: Engine,
    cost: CostModel,
    seed: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    link_free_at: [u64; 4],
    step_samples: Vec<u64>,
    /// Request id → (session, turn).
    requests: FxHashMap<u64, (u32, u32)>,
    /// Sessions waiting for a turn of another session: (session, turn) → dependents.
    dependents: FxHashMap<(u32, u32), Vec<(u32, u64)>>,
    outcomes: Vec<RequestOutcome>,
    next_request: u64,
    tick_at: Option<u64>,
    /// Events in the heap other than ticks.
    pending: u64,
    tokens_sampled: u64,
    progress: Option<ProgressFn>,
    /// Faults, checkers and peaks of a stressed run (`None`: the plain simulator).
    stress: Option<Box<Stress>>,
    /// Wall-clock timing, when asked for (see `super::timing`).
    timing: Option<Box<CallTiming>>,
}

pub(crate) fn simulate(
    workload: &Workload,
    kind: PolicyKind,
    options: &SimOptions,
) -> Result<SimResult, SimError> {
    simulate_with(workload, kind, options, None, None).map(|(result, _, _)| result)
}

/// A plain run that also measures its wall-clock cost.
pub(crate) fn simulate_timed(
    workload: &Workload,
    kind: PolicyKind,
    options: &SimOptions,
    timing: CallTiming,
) -> Result<(SimResult, CallTiming), SimError> {
    let (result, _, timing) = simulate_with(workload, kind, options, None, Some(timing))?;
    Ok((result, timing.expect("asked for")))
}

/// A run, stressed when `stress` is given (see `super::stress`).
pub(crate) fn simulate_with(
    workload: &Workload,
    kind: PolicyKind,
    options: &SimOptions,
    stress: Option<&StressPlan>,
    timing: Option<CallTiming>,
) -> Result<(SimResult, Option<StressReport>, Option<CallTiming>), SimError> {
    let plan = MemoryPlan::new(&options.hardware, &workload.adapters)?;
    let mut config = EngineConfig::new(
        kind,
        plan.pages,
        plan.geometry.block_tokens,
        plan.geometry.pages_per_block,
        plan.geometry.page_bytes,
        plan.adapters.clone(),
        plan.costs,
    );
    config.knobs = kind.knobs(options.lora_fraction);
    config.max_cpu_loras = options.max_cpu_loras;
    config.check_invariants = options.check_invariants;
    let mut stress = stress.map(|plan| Box::new(Stress::new(plan)));
    if let Some(stress) = &mut stress {
        stress.configure(&mut config, MIN_HBM_PAGES)?;
    }
    let engine = Engine::new(config).map_err(|e| SimError::Capacity(e.to_string()))?;
    let mut driver = Driver {
        workload,
        engine,
        cost: options.hardware.cost_model()?,
        seed: options.seed,
        events: BinaryHeap::new(),
        seq: 0,
        link_free_at: [0; 4],
        step_samples: Vec::new(),
        requests: FxHashMap::default(),
        dependents: FxHashMap::default(),
        outcomes: Vec::new(),
        next_request: 0,
        tick_at: None,
        pending: 0,
        tokens_sampled: 0,
        progress: options.progress.clone(),
        stress,
        timing: timing.map(Box::new),
    };
    let end_ns = driver.run();
    let mut outcomes = driver.outcomes;
    outcomes.sort_by_key(|o| o.request);
    let report = driver
        .stress
        .map(|stress| stress.finish(&driver.engine, &outcomes));
    let result = SimResult {
        policy: kind.name().to_string(),
        outcomes,
        stats: driver.engine.stats().clone(),
        simulated_ns: end_ns,
        lora_fraction: driver.engine.config().knobs.lora_fraction,
    };
    Ok((result, report, driver.timing.map(|t| *t)))
}

impl Driver<'_> {
    fn run(&mut self) -> u64 {
        let mut last_arrival = 0;
        for (index, session) in self.workload.sessions.iter().enumerate() {
            match session.start {
                SessionStart::At(t) => {
                    last_arrival = last_arrival.max(t);
                    self.push(
                        t,
                        Event::Arrival {
                            session: index as u32,
                            turn: 0,
                        },
                    );
                }
                SessionStart::After {
                    session: s,
                    turn,
                    delay_ns,
                } => {
                    self.dependents
                        .entry((s, turn))
                        .or_default()
                        .push((index as u32, delay_ns));
                }
            }
        }
        let horizon = last_arrival + DRAIN_NS.max(last_arrival);
        let mut now = 0;
        let mut handled: u64 = 0;
        self.arm_tick();
        while let Some(Reverse((t, _, event))) = self.events.pop() {
            if t > horizon {
                break;
            }
            handled += 1;
            if handled.is_multiple_of(4096)
                && let Some(progress) = &self.progress
            {
                (progress.0)(SimProgress {
                    simulated_ns: t,
                    last_arrival_ns: last_arrival,
                    requests_done: self.outcomes.len() as u64,
                });
            }
            now = t;
            if event != Event::Tick {
                self.pending -= 1;
            }
            let turn_start = self.timing.is_some().then(Instant::now);
            match event {
                Event::Arrival { session, turn } => self.arrive(now, session, turn),
                Event::TransferDone { id } => self.transfer_done(now, id),
                Event::StepDone { id } => {
                    let tokens = self.sample_tokens();
                    self.engine
                        .handle_step_done(now, id, &tokens)
                        .expect("the engine issued this step");
                }
                Event::Tick => {
                    self.tick_at = None;
                    self.engine.handle_timeout(now);
                }
            }
            let call = turn_start.map(|start| start.elapsed());
            let done_before = self.outcomes.len();
            self.drain(now);
            if let (Some(timing), Some(start), Some(call)) = (&mut self.timing, turn_start, call) {
                if timing.opens_window(now) {
                    timing.tree_nodes(self.engine.tree().node_count());
                }
                let done = (self.outcomes.len() - done_before) as u64;
                timing.record(now, call, start.elapsed(), done);
            }
            if let Some(stress) = &mut self.stress {
                stress.observe(&self.engine);
            }
            if self.pending == 0 && self.engine.active_requests() == 0 && self.dependents.is_empty()
            {
                break;
            }
            self.arm_tick();
        }
        self.engine.finish(now);
        self.drain(now);
        now
    }

    fn push(&mut self, t: u64, event: Event) {
        self.seq += 1;
        if event != Event::Tick {
            self.pending += 1;
        }
        self.events.push(Reverse((t, self.seq, event)));
    }

    fn arm_tick(&mut self) {
        if self.tick_at.is_none()
            && let Some((t, _)) = self.engine.poll_timeout()
        {
            self.tick_at = Some(t);
            self.push(t, Event::Tick);
        }
    }

    fn arrive(&mut self, now: u64, session: u32, turn: u32) {
        let spec = &self.workload.sessions[session as usize];
        let turn_spec = &spec.turns[turn as usize];
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, (session, turn));
        if let Some(stress) = &mut self.stress {
            stress.arrival(id, turn_spec.max_new_tokens);
        }
        self.engine.handle_arrival(
            now,
            NewRequest {
                id,
                adapter: spec.adapter,
                session: Some(u64::from(session)),
                tokens: turn_spec.tokens.clone(),
                max_new_tokens: turn_spec.max_new_tokens,
            },
        );
    }

    /// Takes every command and outcome the engine has, and schedules what follows from them.
    fn drain(&mut self, now: u64) {
        while let Some(cmd) = self.engine.poll_transfer() {
            self.start_transfer(now, cmd);
        }
        if let Some(step) = self.engine.poll_step() {
            self.start_step(now, step);
        }
        while let Some(outcome) = self.engine.poll_outcome() {
            self.follow_up(now, &outcome);
            self.outcomes.push(outcome);
        }
    }

    fn start_transfer(&mut self, now: u64, cmd: TransferCmd) {
        let link = match cmd.link {
            Link::H2D => fastlibra_kernels::Link::H2D,
            Link::D2H => fastlibra_kernels::Link::D2H,
            Link::NvmeRead => fastlibra_kernels::Link::NvmeRead,
            Link::NvmeWrite => fastlibra_kernels::Link::NvmeWrite,
        };
        let start = now.max(self.link_free_at[cmd.link as usize]);
        // One command is one copy however many nodes it carries: one setup latency plus all
        // its bytes over the link's bandwidth, after the link's previous copy.
        let mut ns = self.cost.transfer_ns(link, cmd.bytes);
        if let Some(stress) = &mut self.stress {
            let latency = self.cost.link_latency_ns(link);
            let (fate, stressed_ns) = stress.injector.transfer(cmd.link, start, ns, latency);
            ns = stressed_ns;
            stress.transfer_issued(cmd, fate);
        }
        let done = start + ns;
        self.link_free_at[cmd.link as usize] = done;
        self.push(done, Event::TransferDone { id: cmd.id });
    }

    /// Reports a transfer as its fate says: done, failed (source intact) or lost.
    fn transfer_done(&mut self, now: u64, id: u64) {
        let fate = match &mut self.stress {
            Some(stress) => stress.transfer_reported(id),
            None => Fate::Ok,
        };
        match fate {
            Fate::Ok | Fate::Failed => self
                .engine
                .handle_transfer_done(now, id, fate == Fate::Ok)
                .expect("the engine issued this transfer"),
            // A reloaded adapter's bytes would be written into its new pages here; the
            // simulator moves no data.
            Fate::Lost => {
                self.engine
                    .handle_transfer_lost(now, id)
                    .expect("the engine issued this transfer");
            }
        }
    }

    fn start_step(&mut self, now: u64, step: StepCmd) {
        let prefill: Vec<PrefillChunk> = step
            .prefill
            .iter()
            .map(|p| PrefillChunk {
                new_tokens: p.new_tokens,
                context_tokens_before: p.context_before,
            })
            .collect();
        let adapters: Vec<AdapterLoad> = step
            .adapters
            .iter()
            .map(|&(rank, tokens)| AdapterLoad { rank, tokens })
            .collect();
        let mut duration = self.cost.iteration_ns(&Iteration {
            prefill: &prefill,
            decode_batch: step.decode_batch,
            decode_context_tokens: step.decode_context_tokens,
            adapters: &adapters,
        });
        if let Some(stress) = &mut self.stress {
            duration = stress.injector.step(duration);
            stress.step_issued(&self.engine);
        }
        self.step_samples = step.samples;
        self.push(now + duration.max(1), Event::StepDone { id: step.id });
    }

    /// Synthetic output tokens: a hash of the seed, the request and a running count.
    fn sample_tokens(&mut self) -> Vec<u32> {
        let seed = self.seed;
        let first = self.tokens_sampled;
        let samples = std::mem::take(&mut self.step_samples);
        self.tokens_sampled += samples.len() as u64;
        samples
            .into_iter()
            .enumerate()
            .map(|(i, request)| {
                let mut h = seed
                    ^ request.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    ^ (first + i as u64).wrapping_mul(0xd6e8_feb8_6659_fd93);
                h ^= h >> 31;
                h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                (h >> 40) as u32 % 32_000
            })
            .collect()
    }

    /// A turn ended: release the session's next turn and any sessions waiting on this turn.
    fn follow_up(&mut self, now: u64, outcome: &RequestOutcome) {
        let Some((session, turn)) = self.requests.remove(&outcome.request) else {
            return;
        };
        let spec = &self.workload.sessions[session as usize];
        let next = turn + 1;
        if outcome.failure.is_none() && (next as usize) < spec.turns.len() {
            let think = spec.turns[next as usize].think_ns;
            self.push(
                now + think,
                Event::Arrival {
                    session,
                    turn: next,
                },
            );
        } else {
            self.engine.end_session(u64::from(session));
        }
        if let Some(dependents) = self.dependents.remove(&(session, turn))
            && outcome.failure.is_none()
        {
            for (dependent, delay) in dependents {
                self.push(
                    now + delay,
                    Event::Arrival {
                        session: dependent,
                        turn: 0,
                    },
                );
            }
        }
    }
}
