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

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use fastlibra_kernels::checkpoint::Checkpoint;
use fastlibra_kernels::cpu::{CpuModel, CpuModelConfig};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

mod front;
mod inbox;
mod shard_loop;

use front::{Front, FrontInbox};
use inbox::{forward, forward_tagged};
use shard_loop::shard_main;

use super::adapters::SourceAdapter;
use super::calibrate::spill_and_costs;
use super::device::{DeviceChoice, EMULATED, cuda_cost_hints};
use super::error::RealError;
use super::nvme::{InjectedFaults, NvmeFaults};
use super::router::Router;
use super::shard::{BLOCK_TOKENS, Clock, IoCounters, ShardConfig, ShardReport};
use super::verify::VerifyStats;
use crate::engine::{CostHints, NewRequest, PolicyKind};
use crate::outcome::{EngineStats, RequestOutcome};
use crate::sim::{ProgressFn, SimResult};
use crate::workload::Workload;

/// Settings of a wall-clock run.
#[derive(Clone)]
pub struct RunOptions {
    /// Shards, one per core (at least one).
    pub shards: u32,
    /// The CPU model's shape (random weights); replaced by the checkpoint's own shape when
    /// `checkpoint` is given.
    pub model: CpuModelConfig,
    /// A real checkpoint (`.gguf` file or Hugging Face folder) to run instead of the random
    /// model: loaded once per process and shared read-only by every shard (memory-mapped where
    /// the format allows, never copied per shard).
    pub checkpoint: Option<PathBuf>,
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
    /// A folder of PEFT adapter folders (for example from `fastlibra adapters synth --model
    /// cpu-random`): the workload's adapter `i` is the `i`-th sub-folder in name order. Without
    /// it, adapters get random weights of the workload's ranks.
    pub adapters_dir: Option<PathBuf>,
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
    /// The device the shards compute on.
    pub device: DeviceChoice,
    /// With [`DeviceChoice::Cuda`]: run on the emulated device instead when no usable GPU is
    /// found (no driver, an old driver, no such device, no NVRTC), rather than fail.
    pub cuda_fallback: bool,
}

/// Most prefill tokens per step, in-process and in `fastlibra serve`.
pub const PREFILL_TOKEN_BUDGET: u32 = 512;
/// Spill a new session to its adapter's second shard when the home shard holds this many more
/// requests, in-process and in `fastlibra serve`.
pub const SPILL_MARGIN: u32 = 8;

impl Default for RunOptions {
    /// Two shards of 16 MiB HBM, 64 MiB host and 256 MiB NVMe each (64 KiB pages for the
    /// default model).
    fn default() -> Self {
        RunOptions {
            shards: 2,
            model: CpuModelConfig::default(),
            checkpoint: None,
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
            adapters_dir: None,
            // The server's batching and routing, so that an in-process run and the same
            // workload through `fastlibra serve` (its `--max-num-seqs` default) compare.
            max_batch: 64,
            prefill_token_budget: PREFILL_TOKEN_BUDGET,
            max_waiting: 512,
            spill_margin: SPILL_MARGIN,
            progress: None,
            device: DeviceChoice::Emulated,
            cuda_fallback: false,
        }
    }
}

/// What a wall-clock run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
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
    /// The longest wall time one engine call took on each shard, ns.
    pub per_shard_engine_call_ns_max: Vec<u64>,
    /// Adapters reloaded with new weights during the run.
    pub reloads: u64,
    /// The measured cost hints the engines used.
    pub costs: CostHints,
    /// Where the workload's time zero fell on the clock of the outcomes' times, ns.
    pub start_ns: u64,
    /// What the shards computed on ("emulated (CPU)", or the GPU's name).
    pub device: String,
    /// Why a CUDA run fell back to the emulated device, if it did.
    pub fallback: Option<String>,
}

pub(crate) enum ToShard {
    Arrive(NewRequest),
    EndSession(u64),
    Reload(u32, Arc<SourceAdapter>),
    Finish,
}

pub(crate) enum FromShard {
    Ready,
    Outcome(RequestOutcome),
    Done(Box<ShardReport>),
    Failed(String),
}

/// Runs `policy` on `workload` for real, in wall-clock time, on `options.shards` cores.
pub fn run_real(
    workload: &Workload,
    policy: &str,
    options: &RunOptions,
) -> Result<RunResult, RealError> {
    let kind = PolicyKind::from_name(policy).ok_or_else(|| {
        RealError::Config(format!(
            "unknown policy `{policy}` for the real runtime; valid: {}",
            PolicyKind::ALL.map(PolicyKind::name).join(", ")
        ))
    })?;
    if options.shards == 0 {
        return Err(RealError::Config(
            "at least one shard (core) is needed".into(),
        ));
    }
    let (model, resolved) = shared_model(options)?;
    let options = &resolved;
    let page_bytes = (options.model.page_floats(BLOCK_TOKENS as usize) * 4) as u64;
    // The device first: a machine without a usable GPU learns it before any set-up work.
    let mut cuda_costs = None;
    let (device, device_name, fallback) = match options.device {
        DeviceChoice::Emulated => (DeviceChoice::Emulated, EMULATED.to_string(), None),
        DeviceChoice::Cuda { ordinal, weights } => {
            match cuda_cost_hints(ordinal, weights, &model, BLOCK_TOKENS as usize) {
                Ok((hints, name)) => {
                    cuda_costs = Some(hints);
                    (options.device, name, None)
                }
                Err(RealError::Cuda(e)) if options.cuda_fallback && e.is_unavailable() => {
                    let why = e.to_string();
                    (DeviceChoice::Emulated, EMULATED.to_string(), Some(why))
                }
                Err(e) => return Err(e),
            }
        }
    };
    let adapters = match &options.adapters_dir {
        Some(dir) => load_adapters(dir, workload.adapters.len(), options, page_bytes)?,
        None => random_adapters(workload, options, page_bytes)?,
    };
    let (spill, costs) = spill_and_costs(options.spill_dir.as_deref(), &model, cuda_costs)?;
    let adapters = match device {
        DeviceChoice::Cuda { .. } => adapters
            .iter()
            .map(|a| a.for_cuda(&options.model, page_bytes))
            .collect::<Result<Vec<_>, _>>()?,
        DeviceChoice::Emulated => adapters,
    };
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
        max_cpu_loras: None,
        device,
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
        start_ns: std::cell::Cell::new(0),
    };
    // The front runs on this thread, in an executor of its own (not pinned).
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("front")
        .make()
        .map_err(|e| RealError::Runtime(format!("starting the front: {e}")))?;
    let (outcome, start_ns) = executor.run(async move {
        let mut txs = Vec::new();
        for t in to_shards {
            txs.push(t.connect().await);
        }
        let inbox: FrontInbox = Rc::default();
        for (s, r) in from_shards.into_iter().enumerate() {
            forward_tagged(r.connect().await, s, &inbox);
        }
        let outcome = front.run(&txs, &inbox).await;
        (outcome, front.start_ns.get())
    });
    for (s, h) in handles.into_iter().enumerate() {
        h.join()
            .map_err(|e| RealError::Runtime(format!("shard {s} stopped: {e}")))?;
    }
    let (mut outcomes, reports, reloads) = outcome?;
    outcomes.sort_by_key(|o| o.request);
    let mut result = RunResult {
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
        per_shard_engine_call_ns_max: Vec::new(),
        reloads,
        costs,
        start_ns,
        device: device_name,
        fallback,
    };
    let timelines: Vec<&[crate::outcome::MemorySample]> = reports
        .iter()
        .map(|(r, _)| r.stats.timeline.as_slice())
        .collect();
    result.result.stats.timeline = EngineStats::merge_timelines(&timelines, 100_000_000);
    for (r, served) in &reports {
        result.result.stats.add_counters(&r.stats);
        result.verify.add(r.verify);
        result.io.add(&r.io);
        result.injected.add(&r.injected);
        result.per_shard_requests.push(*served);
        result
            .per_shard_engine_call_ns_max
            .push(r.engine_call_ns_max);
    }
    drop(spill);
    Ok(result)
}

/// The model every shard computes with (one copy, shared), and `options` with the model's
/// shape: the checkpoint's, or the random model of `options.model`.
fn shared_model(options: &RunOptions) -> Result<(Arc<CpuModel>, RunOptions), RealError> {
    let model = match &options.checkpoint {
        Some(path) => {
            let checkpoint = Checkpoint::open_shared(path)?;
            CpuModel::from_checkpoint(&checkpoint)?
        }
        None => {
            options
                .model
                .validate()
                .map_err(|e| RealError::Config(e.to_string()))?;
            CpuModel::random(options.model.clone(), options.seed)?
        }
    };
    let resolved = RunOptions {
        model: model.config().clone(),
        ..options.clone()
    };
    Ok((Arc::new(model), resolved))
}

/// Random weights of each workload adapter's rank.
fn random_adapters(
    workload: &Workload,
    options: &RunOptions,
    page_bytes: u64,
) -> Result<Vec<Arc<SourceAdapter>>, RealError> {
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
    Ok(adapters)
}

/// The first `count` PEFT adapter folders of `dir`, in name order.
fn load_adapters(
    dir: &std::path::Path,
    count: usize,
    options: &RunOptions,
    page_bytes: u64,
) -> Result<Vec<Arc<SourceAdapter>>, RealError> {
    let bad = |why: String| RealError::Config(format!("--adapters {}: {why}", dir.display()));
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    if folders.len() < count {
        return Err(bad(format!(
            "{} adapter folders; the workload needs {count}",
            folders.len()
        )));
    }
    folders
        .iter()
        .take(count)
        .map(|f| SourceAdapter::load(&options.model, f, options.max_rank, page_bytes).map(Arc::new))
        .collect()
}
