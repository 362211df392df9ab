//! One engine shard with real bytes in every tier: the engine core, a [`Device`] (its HBM and
//! host tiers, the copies between them and the compute: emulated on the CPU or a CUDA GPU),
//! and the NVMe page file.
//!
//! A shard is a synchronous driver: [`Shard::pump`] carries out whatever the engine asks for
//! (copies between tiers, page I/O, a compute step, timers) until nothing moves or one step
//! has run, reading the
//! time from a [`Clock`]. The glommio runner calls it in a loop on its own core; tests call it
//! directly.
//!
//! ```text
//!  TransferCmd H2D / D2H ──► Device::start_copy … poll_copies ──► handle_transfer_done
//!  TransferCmd NVMe      ──► one page op per page (io_uring) ──► all back? done / failed / lost
//!  StepCmd               ──► step_inputs ──► Device::forward over HBM pages ──► tokens
//! ```

mod io;
mod live;
mod step;

pub use live::TokenChooser;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use fastlibra_kernels::cpu::CpuModel;
use fastlibra_kernels::cuda::WeightPrecision;
use rustc_hash::FxHashMap;

use super::adapters::SourceAdapter;
use super::device::{CudaShardDevice, Device, DeviceChoice, Emulated};
use super::error::RealError;
use super::nvme::{FaultyNvme, InjectedFaults, NvmeFaults, NvmeIo};
use super::tiers::NvmeOps;
use super::verify::{Verifier, VerifyStats};
use crate::engine::{CostHints, Engine, EngineConfig, NewRequest, PolicyKind};
use crate::io::{Completion, PageFile};
use crate::outcome::{EngineStats, RequestOutcome};

/// Tokens per KV block (one block is one page).
pub const BLOCK_TOKENS: u32 = 16;

/// Wall-clock time since the run started, ns: the engine's time base.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock that reads 0 now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// Everything a shard is built from.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// The policy.
    pub policy: PolicyKind,
    /// Pages of the HBM, host and NVMe tiers.
    pub pages: [u32; 3],
    /// io_uring queue depth of the page file.
    pub queue_depth: u32,
    /// Recompute and compare every request that reused cached KV.
    pub verify: bool,
    /// Faults to inject into the NVMe tier (tests), armed after start-up.
    pub faults: Option<NvmeFaults>,
    /// Check the tree's and the shard's invariants after every pump.
    pub check_invariants: bool,
    /// Cost hints for the engine's decisions (measured by `calibrate`).
    pub costs: CostHints,
    /// Most sequences per step.
    pub max_batch: u32,
    /// Most prefill tokens per step.
    pub prefill_token_budget: u32,
    /// Most requests waiting for admission (admission control).
    pub max_waiting: u32,
    /// For `vllm` and `vllm-async`: most adapters cached in host memory and HBM together,
    /// the base model's adapter 0 included (vLLM's `max_cpu_loras`; the engine's
    /// [`EngineConfig::max_cpu_loras`]). `None`: as many as the host tier holds.
    pub max_cpu_loras: Option<u32>,
    /// The device the shard computes on.
    pub device: DeviceChoice,
}

/// Counters of the NVMe tier as the shard saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IoCounters {
    /// Pages written to NVMe.
    pub pages_written: u64,
    /// Pages read back intact.
    pub pages_read: u64,
    /// Page writes that failed (the data stayed on the host).
    pub write_errors: u64,
    /// Page reads that failed (EIO, short read): the page was not used.
    pub read_errors: u64,
    /// Pages that failed their checksum: never used.
    pub checksum_failures: u64,
}

impl IoCounters {
    /// Adds another shard's counts.
    pub fn add(&mut self, x: &IoCounters) {
        self.pages_written += x.pages_written;
        self.pages_read += x.pages_read;
        self.write_errors += x.write_errors;
        self.read_errors += x.read_errors;
        self.checksum_failures += x.checksum_failures;
    }
}

/// What a shard reports at the end.
#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    /// The engine's counters and HBM timeline.
    pub stats: EngineStats,
    /// `--verify` results.
    pub verify: VerifyStats,
    /// NVMe counters.
    pub io: IoCounters,
    /// Faults injected (tests).
    pub injected: InjectedFaults,
    /// Requests routed to this shard.
    pub served: u64,
    /// When the shard stopped serving (before `verify` recomputes), ns.
    pub finished_ns: u64,
    /// The longest wall time one engine call took on this shard, ns: the longest the shard's
    /// core was held by the engine alone (a TTFT spike for every request on the shard).
    pub engine_call_ns_max: u64,
}

/// Runs one engine call and keeps the longest wall time one took.
pub(super) fn timed<R>(max_ns: &mut u64, call: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let result = call();
    *max_ns = (*max_ns).max(start.elapsed().as_nanos() as u64);
    result
}

enum Nvme {
    Plain(Box<PageFile>),
    Faulty(Box<FaultyNvme>),
}

impl Nvme {
    fn io(&mut self) -> &mut dyn NvmeIo {
        match self {
            Nvme::Plain(f) => f.as_mut(),
            Nvme::Faulty(f) => f.as_mut(),
        }
    }
}

/// Per request: what the verifier needs to know.
#[derive(Clone, Copy, Debug)]
struct Track {
    max_new: u32,
    first_start: Option<u32>,
    sampled: u32,
}

/// One shard. See the module docs.
pub struct Shard {
    engine: Engine,
    device: Box<dyn Device>,
    device_choice: DeviceChoice,
    vocab: u32,
    nvme: Nvme,
    ops: NvmeOps,
    completions: Vec<Completion>,
    sources: FxHashMap<(u32, u32), Arc<SourceAdapter>>,
    current: Vec<Arc<SourceAdapter>>,
    tracks: FxHashMap<u64, Track>,
    verifier: Option<Verifier>,
    /// Served logits to compare at the end: (context, logits, the weights it used).
    verify_jobs: Vec<(Vec<u32>, Vec<f32>, Arc<SourceAdapter>)>,
    outcomes: Vec<RequestOutcome>,
    io_counters: IoCounters,
    /// The longest wall time one engine call (`handle_*`, `finish`) took, ns.
    engine_call_ns_max: u64,
    check: bool,
    /// Picks each sampled token (serving); greedy when `None` (benchmarks, verification).
    chooser: Option<Box<dyn TokenChooser>>,
    /// Wall time spent in the device's forward passes, ns.
    forward_ns: u64,
}

impl Shard {
    /// Builds a shard: the engine, the device with its two tiers (allocated once), a page file
    /// in `spill_dir`, and every adapter's pages written into the tier the engine registered
    /// it in. For [`DeviceChoice::Cuda`] the adapters must be in the CUDA page layout
    /// ([`SourceAdapter::for_cuda`]).
    pub fn new(
        config: &ShardConfig,
        model: Arc<CpuModel>,
        adapters: &[Arc<SourceAdapter>],
        spill_dir: &Path,
    ) -> Result<Shard, RealError> {
        let mc = model.config().clone();
        let page_floats = mc.page_floats(BLOCK_TOKENS as usize);
        let page_bytes = page_floats * 4;
        for a in adapters {
            if a.paged.layout.page_bytes != page_bytes {
                return Err(RealError::Config(format!(
                    "adapter {} is paged in {} B pages; the model's KV block is {page_bytes} B",
                    a.name, a.paged.layout.page_bytes
                )));
            }
            check_layout(config.device, a)?;
        }
        if config.queue_depth < 2 {
            return Err(RealError::Config(format!(
                "the NVMe queue depth must be at least 2, got {}",
                config.queue_depth
            )));
        }
        let [hbm_pages, host_pages, nvme_pages] = config.pages;
        let tolerance = match config.device {
            DeviceChoice::Emulated => super::verify::TOLERANCE,
            DeviceChoice::Cuda {
                weights: WeightPrecision::F32,
                ..
            } => super::verify::CUDA_TOLERANCE,
            DeviceChoice::Cuda {
                weights: WeightPrecision::Bf16,
                ..
            } => super::verify::CUDA_BF16_TOLERANCE,
        };
        let mut engine_config = EngineConfig::new(
            config.policy,
            config.pages,
            BLOCK_TOKENS,
            1,
            page_bytes as u64,
            adapters.iter().map(|a| a.info()).collect(),
            config.costs,
        );
        engine_config.check_invariants = config.check_invariants;
        engine_config.report_clean_moves = true;
        engine_config.max_batch = config.max_batch;
        engine_config.prefill_token_budget = config.prefill_token_budget;
        engine_config.max_waiting = config.max_waiting;
        engine_config.max_cpu_loras = config.max_cpu_loras;
        let engine = Engine::new(engine_config)?;
        let block = BLOCK_TOKENS as usize;
        let device: Box<dyn Device> = match config.device {
            DeviceChoice::Emulated => {
                Box::new(Emulated::new(model.clone(), hbm_pages, host_pages, block)?)
            }
            DeviceChoice::Cuda { ordinal, weights } => Box::new(CudaShardDevice::new(
                ordinal, weights, &model, hbm_pages, host_pages, block,
            )?),
        };
        let file = PageFile::create(spill_dir, page_bytes, nvme_pages, config.queue_depth)?;
        let nvme = match config.faults {
            Some(f) => Nvme::Faulty(Box::new(FaultyNvme::new(file, f))),
            None => Nvme::Plain(Box::new(file)),
        };
        let mut shard = Shard {
            engine,
            device,
            device_choice: config.device,
            vocab: mc.vocab as u32,
            nvme,
            ops: NvmeOps::default(),
            completions: Vec::new(),
            sources: FxHashMap::default(),
            current: adapters.to_vec(),
            tracks: FxHashMap::default(),
            verifier: config.verify.then(|| Verifier::new(model, tolerance)),
            verify_jobs: Vec::new(),
            outcomes: Vec::new(),
            io_counters: IoCounters::default(),
            engine_call_ns_max: 0,
            check: config.check_invariants,
            chooser: None,
            forward_ns: 0,
        };
        for (id, source) in adapters.iter().enumerate() {
            let adapter = shard
                .engine
                .tree()
                .current_adapter(id as u32)
                .map_err(crate::engine::EngineError::from)?;
            let node = shard
                .engine
                .tree()
                .adapter_node(adapter)
                .map_err(crate::engine::EngineError::from)?;
            let tier = shard
                .engine
                .tree()
                .node(node)
                .map_err(crate::engine::EngineError::from)?
                .tier();
            shard.write_adapter(node, tier, &source.paged)?;
            shard
                .sources
                .insert((id as u32, adapter.version), source.clone());
        }
        if let Nvme::Faulty(f) = &mut shard.nvme {
            f.arm();
        }
        Ok(shard)
    }

    /// The engine (for inspection).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Requests the shard holds.
    pub fn active(&self) -> usize {
        self.engine.active_requests()
    }

    /// A request arrives.
    pub fn arrive(&mut self, now_ns: u64, request: NewRequest) {
        self.tracks.insert(
            request.id,
            Track {
                max_new: request.max_new_tokens.max(1),
                first_start: None,
                sampled: 0,
            },
        );
        timed(&mut self.engine_call_ns_max, || {
            self.engine.handle_arrival(now_ns, request)
        });
    }

    /// A session ended.
    pub fn end_session(&mut self, session: u64) {
        self.engine.end_session(session);
    }

    /// New weights under an existing adapter id: a new version; KV of the old one is never
    /// reused.
    pub fn reload(
        &mut self,
        now_ns: u64,
        adapter: u32,
        source: Arc<SourceAdapter>,
    ) -> Result<(), RealError> {
        check_layout(self.device_choice, &source)?;
        let (registered, tier) = timed(&mut self.engine_call_ns_max, || {
            self.engine.reload_adapter(now_ns, adapter, source.info())
        })?;
        self.write_adapter(registered.node, tier, &source.paged)?;
        self.sources
            .insert((adapter, registered.adapter.version), source.clone());
        if let Some(slot) = self.current.get_mut(adapter as usize) {
            *slot = source;
        }
        Ok(())
    }

    /// Carries out what the engine asks for until nothing moves or one compute step has run.
    /// Returns whether anything happened.
    pub fn pump(&mut self, clock: &Clock) -> Result<bool, RealError> {
        let mut any = false;
        loop {
            let mut moved = self.reap(clock)?;
            moved |= self.reap_copies(clock)?;
            if let Some((t, _)) = self.engine.poll_timeout()
                && clock.now_ns() >= t
            {
                timed(&mut self.engine_call_ns_max, || {
                    self.engine.handle_timeout(clock.now_ns())
                });
                moved = true;
            }
            // Adapters moved without a copy get their bytes before any transfer reads them.
            moved |= self.fill_clean_moves()?;
            moved |= self.fill_registrations()?;
            while let Some(cmd) = self.engine.poll_transfer() {
                self.start_transfer(cmd, clock)?;
                self.fill_clean_moves()?;
                moved = true;
            }
            moved |= self.submit_ops(clock)?;
            let mut stepped = false;
            if let Some(step) = self.engine.poll_step() {
                self.run_step(step, clock)?;
                moved = true;
                stepped = true;
            }
            while let Some(o) = self.engine.poll_outcome() {
                self.tracks.remove(&o.request);
                self.outcomes.push(o);
                moved = true;
            }
            if self.check {
                self.check_invariants()
                    .map_err(|e| RealError::Runtime(format!("invariant violated: {e}")))?;
            }
            if !moved {
                return Ok(any);
            }
            any = true;
            if stepped {
                // Back to the caller after each step, so arrivals and messages are taken
                // between steps rather than after the backlog.
                return Ok(true);
            }
        }
    }

    /// When the engine next wants a timer, ns.
    pub fn next_timer_ns(&self) -> Option<u64> {
        self.engine.poll_timeout().map(|t| t.0)
    }

    /// Whether page I/O or device copies are in flight or queued.
    pub fn io_busy(&self) -> bool {
        !self.ops.is_idle() || self.device.copies_busy()
    }

    /// Takes the outcomes so far.
    pub fn take_outcomes(&mut self) -> Vec<RequestOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// Ends the run: every request still held fails as unfinished, page I/O drains.
    pub fn finish(&mut self, clock: &Clock) -> Result<ShardReport, RealError> {
        let finished_ns = clock.now_ns();
        timed(&mut self.engine_call_ns_max, || {
            self.engine.finish(finished_ns)
        });
        while let Some(o) = self.engine.poll_outcome() {
            self.outcomes.push(o);
        }
        // Copies in flight end (the engine has finished; their results are not needed).
        self.device.drain(&mut Vec::new())?;
        // Drain the ring: nothing may be in flight when the page file goes.
        let mut out = std::mem::take(&mut self.completions);
        loop {
            for c in out.drain(..) {
                self.ops.in_flight.remove(&c.ticket);
                if c.op == crate::io::IoOp::Read && c.result.is_ok() {
                    let mut sink = vec![0; self.device.page_bytes()];
                    let _ = self.nvme.io().take_read(c.ticket, &mut sink);
                }
            }
            if self.ops.in_flight.is_empty() {
                break;
            }
            self.nvme.io().reap(1, &mut out)?;
        }
        if let Some(v) = &mut self.verifier {
            for (context, logits, source) in std::mem::take(&mut self.verify_jobs) {
                v.check(&context, &logits, &source.lora)?;
            }
        }
        Ok(ShardReport {
            stats: self.engine.stats().clone(),
            verify: self.verifier.as_ref().map(|v| v.stats).unwrap_or_default(),
            io: self.io_counters,
            injected: match &self.nvme {
                Nvme::Faulty(f) => f.injected,
                Nvme::Plain(_) => InjectedFaults::default(),
            },
            served: 0,
            finished_ns,
            engine_call_ns_max: self.engine_call_ns_max,
        })
    }

    /// Drops the samples of the engine's HBM timeline. A server makes no run report, and one
    /// sample per swapper tick would otherwise grow for as long as it runs.
    pub fn forget_timeline(&mut self) {
        self.engine.stats.timeline.clear();
    }

    /// Makes the device's in-memory tiers resident now ([`Device::prefault`]): a server's
    /// memory then stays flat under load instead of growing as pages are first used.
    pub fn prefault(&mut self) {
        self.device.prefault();
    }

    /// The tree's invariants and the shard's own: every page operation and every device copy
    /// belongs to a transfer the engine still has in flight.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.engine
            .tree()
            .check_invariants()
            .map_err(|e| e.to_string())?;
        self.ops.check()?;
        self.device.check_invariants()
    }
}

/// The CUDA kernels read adapters as an f32 stream of q, k, v and o
/// ([`SourceAdapter::for_cuda`]); the emulated device decodes any layout.
fn check_layout(device: DeviceChoice, a: &SourceAdapter) -> Result<(), RealError> {
    use fastlibra_kernels::LoraTargets;
    use fastlibra_kernels::peft::WeightDtype;
    let shape = a.paged.layout.shape;
    let stream = shape.dtype == WeightDtype::F32 && shape.targets == LoraTargets::ATTENTION;
    if matches!(device, DeviceChoice::Cuda { .. }) && !stream {
        return Err(RealError::Config(format!(
            "adapter {} is paged as {} on {}; the CUDA device reads f32 q, k, v, o pages \
             (page it with SourceAdapter::for_cuda)",
            a.name,
            shape.dtype.name(),
            shape
                .targets
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

pub(super) fn engine_err(e: fastlibra_alloc::AllocError) -> RealError {
    RealError::Engine(e.into())
}

#[cfg(test)]
mod tests {
    use fastlibra_kernels::cpu::CpuModelConfig;
    use fastlibra_kernels::peft::{Adapter, AdapterShape, WeightDtype};
    use fastlibra_kernels::{LoraTarget, LoraTargets};

    use super::*;

    #[test]
    fn the_cuda_device_refuses_adapters_not_in_the_kernels_layout() {
        let c = CpuModelConfig::tiny();
        let page_bytes = (c.page_floats(BLOCK_TOKENS as usize) * 4) as u64;
        let shape = AdapterShape {
            rank: 2,
            alpha: 2.0,
            targets: LoraTargets::NONE.with(LoraTarget::Q),
            dtype: WeightDtype::F16,
        };
        let adapter = Adapter::from_fn(&c.model_spec(), shape, |_, _, _, _| 0.5).unwrap();
        let a = Arc::new(SourceAdapter::from_adapter(&c, "q-only", &adapter, page_bytes).unwrap());
        let cuda = DeviceChoice::Cuda {
            ordinal: 0,
            weights: WeightPrecision::F32,
        };
        let err = check_layout(cuda, &a).unwrap_err().to_string();
        assert!(
            err.contains("q-only") && err.contains("f16") && err.contains("for_cuda"),
            "{err}"
        );
        assert!(check_layout(DeviceChoice::Emulated, &a).is_ok());
        let repaged = a.for_cuda(&c, page_bytes).unwrap();
        assert!(check_layout(cuda, &repaged).is_ok());
    }
}
