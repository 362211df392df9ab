//! The thread-per-core runtime: one glommio executor per shard, pinned to its own core, plus
//! a front executor that replays the workload in wall-clock time and routes requests.
//!
//! ```text
//!            ┌──────── front (unpinned) ────────┐
//!            │ Replay: due turns, follow-ups    │
//!            │ Router: rendezvous + spill-over  │
//!            └──┬──────────────┬────────────────┘
//!   ToShard     │ shared_channel (bounded, lock-free)
//!       ┌───────▼──────┐ ┌─────▼────────┐
//!       │ shard 0      │ │ shard 1      │  each: Engine + HBM arena + host arena
//!       │ core 0       │ │ core 1       │        + page file (io_uring) + CPU model
//!       └───────┬──────┘ └─────┬────────┘
//!   FromShard   └──────────────┴──► outcomes back to the front
//! ```
//!
//! Shards share nothing mutable: each owns its pools, tree, arenas and page file; the model
//! weights are shared read-only. The front counts each shard's requests in hand itself, so
//! routing needs no shared counters and the hot path takes no lock.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use fastlibra_kernels::cpu::{CpuModel, CpuModelConfig};
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};
use glommio::{LocalExecutorBuilder, Placement};
use rustc_hash::FxHashMap;

use super::adapters::SourceAdapter;
use super::calibrate::calibrate;
use super::error::RealError;
use super::nvme::{InjectedFaults, NvmeFaults};
use super::replay::Replay;
use super::router::Router;
use super::shard::{BLOCK_TOKENS, Clock, IoCounters, Shard, ShardConfig, ShardReport};
use super::spill::SpillDir;
use super::verify::VerifyStats;
use crate::engine::{CostHints, NewRequest, PolicyKind};
use crate::outcome::{EngineStats, RequestOutcome};
use crate::sim::{POLICIES, ProgressFn, SimProgress, SimResult};
use crate::workload::Workload;

/// Settings of a wall-clock run on the CPU backend.
#[derive(Clone)]
pub struct CpuRunOptions {
    /// Shards, one per core (at least one).
    pub shards: u32,
    /// The CPU model's shape.
    pub model: CpuModelConfig,
    /// Seed of the model's and adapters' random weights.
    pub seed: u64,
    /// Pages per shard of the HBM, host and NVMe tiers.
    pub pages: [u32; 3],
    /// io_uring queue depth of each page file.
    pub queue_depth: u32,
    /// Recompute and compare every request that reused cached KV.
    pub verify: bool,
    /// Where page files go (default: a temporary folder removed at exit).
    pub spill_dir: Option<PathBuf>,
    /// Reload a random adapter with new weights this often.
    pub reload_every_ns: Option<u64>,
    /// Faults to inject into every shard's NVMe tier.
    pub faults: Option<NvmeFaults>,
    /// Check invariants after every pump (slow; tests).
    pub check_invariants: bool,
    /// After the last scheduled arrival, how long to keep serving before the rest is counted
    /// unfinished.
    pub drain_ns: u64,
    /// Most LoRA rank accepted.
    pub max_rank: u32,
    /// Most sequences per step.
    pub max_batch: u32,
    /// Most prefill tokens per step.
    pub prefill_token_budget: u32,
    /// Most requests waiting per shard (admission control).
    pub max_waiting: u32,
    /// Spill a new session to its adapter's second shard when the home shard holds this many
    /// more requests.
    pub spill_margin: u32,
    /// Called about twice a second.
    pub progress: Option<ProgressFn>,
}

impl Default for CpuRunOptions {
    /// Two shards of 16 MiB HBM, 64 MiB host and 256 MiB NVMe each (64 KiB pages for the
    /// default model).
    fn default() -> Self {
        CpuRunOptions {
            shards: 2,
            model: CpuModelConfig::default(),
            seed: 1,
            pages: [256, 1024, 4096],
            queue_depth: 32,
            verify: false,
            spill_dir: None,
            reload_every_ns: None,
            faults: None,
            check_invariants: false,
            drain_ns: 30_000_000_000,
            max_rank: 64,
            max_batch: 32,
            prefill_token_budget: 256,
            max_waiting: 512,
            spill_margin: 16,
            progress: None,
        }
    }
}

/// What a wall-clock run produced.
#[derive(Clone, Debug)]
pub struct CpuRunResult {
    /// Outcomes and merged engine counters, in the simulator's result type (`simulated_ns`
    /// holds the wall-clock duration).
    pub result: SimResult,
    /// `--verify` counts over all shards.
    pub verify: VerifyStats,
    /// NVMe counters over all shards.
    pub io: IoCounters,
    /// Faults injected over all shards.
    pub injected: InjectedFaults,
    /// Requests each shard served.
    pub per_shard_requests: Vec<u64>,
    /// Adapters reloaded with new weights during the run.
    pub reloads: u64,
    /// The measured cost hints the engines used.
    pub costs: CostHints,
}

/// Messages received by a forwarding task, for a loop that must not park on a channel.
///
/// Polling a pending `recv()` future over and over registers a new waker each time (glommio
/// keeps them until the channel is written to, and a task's waker count is bounded), so each
/// receiver gets one task that awaits it and queues what arrives; `None` means closed.
type Inbox<T> = Rc<RefCell<VecDeque<Option<T>>>>;

fn forward<T: Send + 'static>(rx: ConnectedReceiver<T>) -> Inbox<T> {
    let inbox: Inbox<T> = Rc::default();
    let queue = inbox.clone();
    glommio::spawn_local(async move {
        loop {
            let msg = rx.recv().await;
            let closed = msg.is_none();
            queue.borrow_mut().push_back(msg);
            if closed {
                break;
            }
        }
    })
    .detach();
    inbox
}

/// Like [`Inbox`], with each message tagged by the receiver it came from.
type TaggedInbox<T> = Rc<RefCell<VecDeque<(usize, Option<T>)>>>;

fn forward_tagged<T: Send + 'static>(rx: ConnectedReceiver<T>, tag: usize, inbox: &TaggedInbox<T>) {
    let queue = inbox.clone();
    glommio::spawn_local(async move {
        loop {
            let msg = rx.recv().await;
            let closed = msg.is_none();
            queue.borrow_mut().push_back((tag, msg));
            if closed {
                break;
            }
        }
    })
    .detach();
}

enum ToShard {
    Arrive(NewRequest),
    EndSession(u64),
    Reload(u32, Arc<SourceAdapter>),
    Finish,
}

enum FromShard {
    Ready,
    Outcome(RequestOutcome),
    Done(Box<ShardReport>),
    Failed(String),
}

/// Runs `policy` on `workload` for real, in wall-clock time, on `options.shards` cores.
pub fn run_cpu(
    workload: &Workload,
    policy: &str,
    options: &CpuRunOptions,
) -> Result<CpuRunResult, RealError> {
    let kind = PolicyKind::from_name(policy).ok_or_else(|| {
        RealError::Config(format!(
            "unknown policy `{policy}` for the CPU backend; valid: {}",
            POLICIES[..5].join(", ")
        ))
    })?;
    if options.shards == 0 {
        return Err(RealError::Config(
            "at least one shard (core) is needed".into(),
        ));
    }
    options
        .model
        .validate()
        .map_err(|e| RealError::Config(e.to_string()))?;
    let model = Arc::new(CpuModel::random(options.model.clone(), options.seed)?);
    let page_bytes = (options.model.page_floats(BLOCK_TOKENS as usize) * 4) as u64;
    let mut adapters = Vec::with_capacity(workload.adapters.len());
    for (i, spec) in workload.adapters.iter().enumerate() {
        if spec.rank == 0 || spec.rank > options.max_rank {
            return Err(RealError::Config(format!(
                "adapter {} has rank {}; the CPU backend accepts 1..={}",
                spec.name, spec.rank, options.max_rank
            )));
        }
        adapters.push(Arc::new(SourceAdapter::random(
            &options.model,
            &spec.name,
            spec.rank,
            options.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9),
            page_bytes,
        )?));
    }
    let spill = SpillDir::new(options.spill_dir.as_deref()).map_err(|source| RealError::Spill {
        path: options.spill_dir.clone().unwrap_or_default(),
        source,
    })?;
    let costs = calibrate(&model, spill.path())?;
    let config = ShardConfig {
        policy: kind,
        pages: options.pages,
        queue_depth: options.queue_depth,
        verify: options.verify,
        faults: options.faults,
        check_invariants: options.check_invariants,
        costs,
        max_batch: options.max_batch,
        prefill_token_budget: options.prefill_token_budget,
        max_waiting: options.max_waiting,
    };
    let clock = Clock::start();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut to_shards = Vec::new();
    let mut from_shards = Vec::new();
    let mut handles = Vec::new();
    for s in 0..options.shards {
        let (to_tx, to_rx) = shared_channel::new_bounded::<ToShard>(4096);
        let (from_tx, from_rx) = shared_channel::new_bounded::<FromShard>(4096);
        to_shards.push(to_tx);
        from_shards.push(from_rx);
        let (config, model, adapters) = (config.clone(), model.clone(), adapters.clone());
        let spill_path = spill.path().to_path_buf();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(s as usize % cores))
            .name(&format!("shard-{s}"))
            .spawn(move || async move {
                let inbox = forward(to_rx.connect().await);
                let tx = from_tx.connect().await;
                shard_main(&config, model, &adapters, &spill_path, clock, &inbox, &tx).await;
            })
            .map_err(|e| RealError::Runtime(format!("starting shard {s}: {e}")))?;
        handles.push(handle);
    }
    let front = Front {
        workload,
        router: Router::new(options.shards, options.spill_margin),
        options,
        clock,
        adapters,
        page_bytes,
    };
    // The front runs on this thread, in an executor of its own (not pinned).
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("front")
        .make()
        .map_err(|e| RealError::Runtime(format!("starting the front: {e}")))?;
    let outcome = executor.run(async move {
        let mut txs = Vec::new();
        for t in to_shards {
            txs.push(t.connect().await);
        }
        let inbox: FrontInbox = Rc::default();
        for (s, r) in from_shards.into_iter().enumerate() {
            forward_tagged(r.connect().await, s, &inbox);
        }
        front.run(&txs, &inbox).await
    });
    for (s, h) in handles.into_iter().enumerate() {
        h.join()
            .map_err(|e| RealError::Runtime(format!("shard {s} stopped: {e}")))?;
    }
    let (mut outcomes, reports, reloads) = outcome?;
    outcomes.sort_by_key(|o| o.request);
    let mut result = CpuRunResult {
        result: SimResult {
            policy: kind.name().to_string(),
            outcomes,
            stats: EngineStats::default(),
            // Serving time: up to the last shard's stop, not counting `verify`'s recompute.
            simulated_ns: reports
                .iter()
                .map(|(r, _)| r.finished_ns)
                .max()
                .unwrap_or_else(|| clock.now_ns()),
            lora_fraction: None,
        },
        verify: VerifyStats::default(),
        io: IoCounters::default(),
        injected: InjectedFaults::default(),
        per_shard_requests: Vec::new(),
        reloads,
        costs,
    };
    let timelines: Vec<&[crate::outcome::MemorySample]> = reports
        .iter()
        .map(|(r, _)| r.stats.timeline.as_slice())
        .collect();
    result.result.stats.timeline = EngineStats::merge_timelines(&timelines, 100_000_000);
    for (r, served) in &reports {
        result.result.stats.add_counters(&r.stats);
        result.verify.add(r.verify);
        add_io(&mut result.io, &r.io);
        add_injected(&mut result.injected, &r.injected);
        result.per_shard_requests.push(*served);
    }
    drop(spill);
    Ok(result)
}

fn add_io(sum: &mut IoCounters, x: &IoCounters) {
    sum.pages_written += x.pages_written;
    sum.pages_read += x.pages_read;
    sum.write_errors += x.write_errors;
    sum.read_errors += x.read_errors;
    sum.checksum_failures += x.checksum_failures;
}

fn add_injected(sum: &mut InjectedFaults, x: &InjectedFaults) {
    sum.write_eio += x.write_eio;
    sum.write_enospc += x.write_enospc;
    sum.read_eio += x.read_eio;
    sum.short_read += x.short_read;
    sum.flipped_bits += x.flipped_bits;
}

/// One shard's loop: take messages, pump the shard, send outcomes; sleep when idle until a
/// message, the engine's next timer or (with I/O in flight) a short poll interval.
async fn shard_main(
    config: &ShardConfig,
    model: Arc<CpuModel>,
    adapters: &[Arc<SourceAdapter>],
    spill: &std::path::Path,
    clock: Clock,
    rx: &Inbox<ToShard>,
    tx: &ConnectedSender<FromShard>,
) {
    let mut shard = match Shard::new(config, model, adapters, spill) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(FromShard::Failed(e.to_string())).await;
            return;
        }
    };
    let _ = tx.send(FromShard::Ready).await;
    if let Err(e) = serve(&mut shard, clock, rx, tx).await {
        let _ = tx.send(FromShard::Failed(e.to_string())).await;
    }
}

async fn serve(
    shard: &mut Shard,
    clock: Clock,
    rx: &Inbox<ToShard>,
    tx: &ConnectedSender<FromShard>,
) -> Result<(), RealError> {
    let mut served = 0u64;
    let mut finishing = false;
    loop {
        while !finishing {
            let Some(msg) = rx.borrow_mut().pop_front() else {
                break;
            };
            finishing |= handle(shard, msg, clock, &mut served)?;
        }
        if finishing {
            let report = shard.finish(&clock)?;
            for o in shard.take_outcomes() {
                send(tx, FromShard::Outcome(o)).await?;
            }
            return send(tx, FromShard::Done(Box::new(report_with(report, served)))).await;
        }
        let moved = shard.pump(&clock)?;
        for o in shard.take_outcomes() {
            send(tx, FromShard::Outcome(o)).await?;
        }
        if moved {
            glommio::yield_if_needed().await;
            continue;
        }
        // Idle: sleep until the engine's next timer, at most 1 ms (new messages wait that
        // long at worst), or 50 µs while page I/O is in flight.
        let now = clock.now_ns();
        let wait_ns = if shard.io_busy() {
            50_000
        } else {
            shard
                .next_timer_ns()
                .map_or(1_000_000, |t| t.saturating_sub(now))
                .clamp(50_000, 1_000_000)
        };
        if rx.borrow().is_empty() {
            glommio::timer::sleep(Duration::from_nanos(wait_ns)).await;
        }
    }
}

/// The report and the count of requests served travel together.
fn report_with(mut report: ShardReport, served: u64) -> ShardReport {
    report.served = served;
    report
}

/// Applies one message; true when the shard must finish (told to, or the front is gone).
fn handle(
    shard: &mut Shard,
    msg: Option<ToShard>,
    clock: Clock,
    served: &mut u64,
) -> Result<bool, RealError> {
    match msg {
        Some(ToShard::Arrive(request)) => {
            *served += 1;
            shard.arrive(clock.now_ns(), request);
        }
        Some(ToShard::EndSession(s)) => shard.end_session(s),
        Some(ToShard::Reload(adapter, source)) => shard.reload(clock.now_ns(), adapter, source)?,
        Some(ToShard::Finish) | None => return Ok(true),
    }
    Ok(false)
}

async fn send<T: Send>(tx: &ConnectedSender<T>, msg: T) -> Result<(), RealError> {
    tx.send(msg)
        .await
        .map_err(|_| RealError::Runtime("the other side of a channel is gone".into()))
}

struct Front<'a> {
    workload: &'a Workload,
    router: Router,
    options: &'a CpuRunOptions,
    clock: Clock,
    adapters: Vec<Arc<SourceAdapter>>,
    page_bytes: u64,
}

type FrontInbox = TaggedInbox<FromShard>;

type FrontResult = Result<(Vec<RequestOutcome>, Vec<(ShardReport, u64)>, u64), RealError>;

impl Front<'_> {
    async fn run(&self, txs: &[ConnectedSender<ToShard>], inbox: &FrontInbox) -> FrontResult {
        let result = self.serve(txs, inbox).await;
        // Whatever happened, every shard is told to finish and drained.
        for tx in txs {
            let _ = tx.send(ToShard::Finish).await;
        }
        let mut outcomes = Vec::new();
        let mut reports = Vec::new();
        let mut failure = None;
        let mut open = vec![true; txs.len()];
        while open.iter().any(|&o| o) {
            let Some((s, msg)) = inbox.borrow_mut().pop_front() else {
                glommio::timer::sleep(Duration::from_millis(1)).await;
                continue;
            };
            if !open[s] {
                continue; // the channel closing after the shard's report
            }
            match msg {
                Some(FromShard::Outcome(o)) => outcomes.push(o),
                Some(FromShard::Done(r)) => {
                    let served = r.served;
                    reports.push((*r, served));
                    open[s] = false;
                }
                Some(FromShard::Failed(e)) => {
                    failure.get_or_insert(RealError::Runtime(e));
                    open[s] = false;
                }
                Some(FromShard::Ready) => {}
                None => {
                    failure.get_or_insert(RealError::Runtime(format!("shard {s} stopped")));
                    open[s] = false;
                }
            }
        }
        let (mut served_outcomes, reloads, replay_fix) = result?;
        if let Some(e) = failure {
            return Err(e);
        }
        for mut o in outcomes {
            replay_fix(&mut o);
            served_outcomes.push(o);
        }
        Ok((served_outcomes, reports, reloads))
    }

    #[allow(clippy::type_complexity)]
    async fn serve(
        &self,
        txs: &[ConnectedSender<ToShard>],
        inbox: &FrontInbox,
    ) -> Result<
        (
            Vec<RequestOutcome>,
            u64,
            Box<dyn Fn(&mut RequestOutcome) + '_>,
        ),
        RealError,
    > {
        let mut ready = 0;
        while ready < txs.len() {
            let Some((_, msg)) = inbox.borrow_mut().pop_front() else {
                glommio::timer::sleep(Duration::from_millis(1)).await;
                continue;
            };
            match msg {
                Some(FromShard::Ready) => ready += 1,
                Some(FromShard::Failed(e)) => return Err(RealError::Runtime(e)),
                _ => return Err(RealError::Runtime("a shard stopped during start-up".into())),
            }
        }
        let start_ns = self.clock.now_ns();
        let mut replay = Replay::new(self.workload);
        let horizon = replay.last_arrival_ns() + self.options.drain_ns;
        let mut loads = vec![0u32; txs.len()];
        let mut session_shard: FxHashMap<u64, u32> = FxHashMap::default();
        let mut scheduled: FxHashMap<u64, u64> = FxHashMap::default();
        let mut outcomes = Vec::new();
        let mut reloads = 0u64;
        let mut next_reload = self.options.reload_every_ns;
        let mut next_progress = 0;
        let mut reload_seed = self.options.seed.wrapping_mul(31);
        loop {
            let now = self.clock.now_ns() - start_ns;
            while let Some((request, at)) = replay.pop_due(now) {
                let session = request.session.unwrap_or(u64::MAX - request.id);
                let shard = *session_shard
                    .entry(session)
                    .or_insert_with(|| self.router.route(request.adapter, &loads));
                loads[shard as usize] += 1;
                scheduled.insert(request.id, start_ns + at);
                send(&txs[shard as usize], ToShard::Arrive(request)).await?;
            }
            if let Some(t) = next_reload
                && now >= t
                && !self.adapters.is_empty()
            {
                reload_seed = reload_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let adapter = (reload_seed >> 33) as usize % self.adapters.len();
                let old = &self.adapters[adapter];
                let source = Arc::new(SourceAdapter::random(
                    &self.options.model,
                    &old.name,
                    old.paged.layout.shape.rank,
                    reload_seed,
                    self.page_bytes,
                )?);
                for tx in txs {
                    send(tx, ToShard::Reload(adapter as u32, source.clone())).await?;
                }
                reloads += 1;
                next_reload = Some(t + self.options.reload_every_ns.unwrap_or(u64::MAX));
            }
            loop {
                let Some((s, msg)) = inbox.borrow_mut().pop_front() else {
                    break;
                };
                match msg {
                    Some(FromShard::Outcome(mut o)) => {
                        loads[s] = loads[s].saturating_sub(1);
                        fix_arrival(&mut o, &scheduled);
                        if let Some(ended) = replay.on_outcome(now, &o) {
                            session_shard.remove(&ended);
                            send(&txs[s], ToShard::EndSession(ended)).await?;
                        }
                        outcomes.push(o);
                    }
                    Some(FromShard::Failed(e)) => return Err(RealError::Runtime(e)),
                    Some(_) => {}
                    None => return Err(RealError::Runtime(format!("shard {s} stopped"))),
                }
            }
            if now >= next_progress {
                next_progress = now + 500_000_000;
                if let Some(p) = &self.options.progress {
                    (p.0)(SimProgress {
                        simulated_ns: now,
                        last_arrival_ns: replay.last_arrival_ns(),
                        requests_done: outcomes.len() as u64,
                    });
                }
            }
            if replay.is_done() || now > horizon {
                break;
            }
            let until_due = replay
                .next_due_ns()
                .map_or(1_000_000, |t| t.saturating_sub(now));
            glommio::timer::sleep(Duration::from_nanos(until_due.clamp(50_000, 1_000_000))).await;
        }
        let fix: Box<dyn Fn(&mut RequestOutcome)> =
            Box::new(move |o: &mut RequestOutcome| fix_arrival(o, &scheduled));
        Ok((outcomes, reloads, fix))
    }
}

/// Times are measured from the scheduled arrival, not from when the shard got the request:
/// time spent in the front or the channel counts as queueing.
fn fix_arrival(o: &mut RequestOutcome, scheduled: &FxHashMap<u64, u64>) {
    if let Some(&at) = scheduled.get(&o.request)
        && at < o.arrival_ns
    {
        o.queue_ns += o.arrival_ns - at;
        o.arrival_ns = at;
    }
}
