//! One engine shard with real bytes in every tier: the engine core, the emulated device's HBM
//! arena, the host arena, the NVMe page file, and the CPU model that computes each step.
//!
//! A shard is a synchronous driver: [`Shard::pump`] carries out whatever the engine asks for
//! (copies between tiers, page I/O, a compute step, timers) until nothing moves, reading the
//! time from a [`Clock`]. The glommio runner calls it in a loop on its own core; tests call it
//! directly.
//!
//! ```text
//!  TransferCmd H2D / D2H ──► memcpy between the arenas ──► handle_transfer_done
//!  TransferCmd NVMe      ──► one page op per page (io_uring) ──► all back? done / failed / lost
//!  StepCmd               ──► step_inputs ──► CpuModel::forward_batch over HBM pages ──► tokens
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use fastlibra_alloc::{NodeId, Tier};
use fastlibra_kernels::cpu::{CpuLora, CpuModel, KvArena, SeqInput};
use fastlibra_kernels::peft::PagedAdapter;
use rustc_hash::FxHashMap;

use super::adapters::SourceAdapter;
use super::arena::{self, HostArena};
use super::error::RealError;
use super::nvme::{FaultyNvme, InjectedFaults, NvmeFaults, NvmeIo};
use super::tiers::{NvmeOps, PageOp, Pending};
use super::verify::{Verifier, VerifyStats};
use crate::engine::{
    CostHints, Engine, EngineConfig, Link, Lost, NewRequest, PolicyKind, StepCmd, StepSeq,
    TransferCmd,
};
use crate::io::{Completion, PageFile, PageReadStatus};
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
    model: Arc<CpuModel>,
    hbm: KvArena,
    host: HostArena,
    nvme: Nvme,
    ops: NvmeOps,
    completions: Vec<Completion>,
    sources: FxHashMap<(u32, u32), Arc<SourceAdapter>>,
    current: Vec<Arc<SourceAdapter>>,
    decoded: FxHashMap<NodeId, Arc<CpuLora>>,
    tracks: FxHashMap<u64, Track>,
    verifier: Option<Verifier>,
    /// Served logits to compare at the end: (sequence, logits, the weights it used).
    verify_jobs: Vec<(StepSeq, Vec<f32>, Arc<SourceAdapter>)>,
    outcomes: Vec<RequestOutcome>,
    io_counters: IoCounters,
    check: bool,
}

impl Shard {
    /// Builds a shard: the engine, the arenas (allocated once), a page file in `spill_dir`,
    /// and every adapter's pages written into the tier the engine registered it in.
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
        }
        if config.queue_depth < 2 {
            return Err(RealError::Config(format!(
                "the NVMe queue depth must be at least 2, got {}",
                config.queue_depth
            )));
        }
        let [hbm_pages, host_pages, nvme_pages] = config.pages;
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
        let engine = Engine::new(engine_config)?;
        let file = PageFile::create(spill_dir, page_bytes, nvme_pages, config.queue_depth)?;
        let nvme = match config.faults {
            Some(f) => Nvme::Faulty(Box::new(FaultyNvme::new(file, f))),
            None => Nvme::Plain(Box::new(file)),
        };
        let mut shard = Shard {
            engine,
            hbm: KvArena::new(hbm_pages as usize, page_floats, BLOCK_TOKENS as usize)?,
            host: HostArena::new(host_pages, page_bytes),
            nvme,
            ops: NvmeOps::default(),
            completions: Vec::new(),
            sources: FxHashMap::default(),
            current: adapters.to_vec(),
            decoded: FxHashMap::default(),
            tracks: FxHashMap::default(),
            verifier: config.verify.then(|| Verifier::new(model.clone())),
            verify_jobs: Vec::new(),
            model,
            outcomes: Vec::new(),
            io_counters: IoCounters::default(),
            check: config.check_invariants,
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
        self.engine.handle_arrival(now_ns, request);
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
        let (registered, tier) = self.engine.reload_adapter(now_ns, adapter, source.info())?;
        self.write_adapter(registered.node, tier, &source.paged)?;
        self.sources
            .insert((adapter, registered.adapter.version), source.clone());
        if let Some(slot) = self.current.get_mut(adapter as usize) {
            *slot = source;
        }
        Ok(())
    }

    /// Carries out everything the engine asks for until nothing moves. Returns whether
    /// anything happened.
    pub fn pump(&mut self, clock: &Clock) -> Result<bool, RealError> {
        let mut any = false;
        loop {
            let mut moved = self.reap(clock)?;
            if let Some((t, _)) = self.engine.poll_timeout()
                && clock.now_ns() >= t
            {
                self.engine.handle_timeout(clock.now_ns());
                moved = true;
            }
            // Adapters moved without a copy get their bytes before any transfer reads them.
            moved |= self.fill_clean_moves()?;
            while let Some(cmd) = self.engine.poll_transfer() {
                self.start_transfer(cmd, clock)?;
                self.fill_clean_moves()?;
                moved = true;
            }
            moved |= self.submit_ops(clock)?;
            if let Some(step) = self.engine.poll_step() {
                self.run_step(step, clock)?;
                moved = true;
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
        }
    }

    /// When the engine next wants a timer, ns.
    pub fn next_timer_ns(&self) -> Option<u64> {
        self.engine.poll_timeout().map(|t| t.0)
    }

    /// Whether page I/O is in flight or queued.
    pub fn io_busy(&self) -> bool {
        !self.ops.is_idle()
    }

    /// Takes the outcomes so far.
    pub fn take_outcomes(&mut self) -> Vec<RequestOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// Ends the run: every request still held fails as unfinished, page I/O drains.
    pub fn finish(&mut self, clock: &Clock) -> Result<ShardReport, RealError> {
        let finished_ns = clock.now_ns();
        self.engine.finish(finished_ns);
        while let Some(o) = self.engine.poll_outcome() {
            self.outcomes.push(o);
        }
        // Drain the ring: nothing may be in flight when the page file goes.
        let mut out = std::mem::take(&mut self.completions);
        loop {
            for c in out.drain(..) {
                self.ops.in_flight.remove(&c.ticket);
                if c.op == crate::io::IoOp::Read && c.result.is_ok() {
                    let mut sink = vec![0; arena::hbm_page(&self.hbm, 0).len()];
                    let _ = self.nvme.io().take_read(c.ticket, &mut sink);
                }
            }
            if self.ops.in_flight.is_empty() {
                break;
            }
            self.nvme.io().reap(1, &mut out)?;
        }
        if let Some(v) = &mut self.verifier {
            for (seq, logits, source) in std::mem::take(&mut self.verify_jobs) {
                v.check(&seq, &logits, &source.lora)?;
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
        })
    }

    /// The tree's invariants and the shard's own: every page operation belongs to a transfer
    /// the engine still has in flight.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.engine
            .tree()
            .check_invariants()
            .map_err(|e| e.to_string())?;
        self.ops.check()
    }

    fn start_transfer(&mut self, cmd: TransferCmd, clock: &Clock) -> Result<(), RealError> {
        let tree = self.engine.tree();
        let src: Vec<u32> = tree
            .pages(cmd.node, cmd.from)
            .map_err(engine_err)?
            .collect();
        let dst: Vec<u32> = tree.pages(cmd.node, cmd.to).map_err(engine_err)?.collect();
        match cmd.link {
            Link::H2D => {
                arena::host_to_hbm(&self.host, &mut self.hbm, &src, &dst);
                self.engine
                    .handle_transfer_done(clock.now_ns(), cmd.id, true)?;
            }
            Link::D2H => {
                arena::hbm_to_host(&self.hbm, &mut self.host, &src, &dst);
                self.engine
                    .handle_transfer_done(clock.now_ns(), cmd.id, true)?;
            }
            Link::NvmeWrite => {
                let ops = src.iter().zip(&dst).map(|(&host, &nvme)| PageOp::Write {
                    transfer: cmd.id,
                    host,
                    nvme,
                });
                self.ops.push(cmd.id, ops);
            }
            Link::NvmeRead => {
                let ops = src.iter().zip(&dst).map(|(&nvme, &host)| PageOp::Read {
                    transfer: cmd.id,
                    nvme,
                    host,
                });
                self.ops.push(cmd.id, ops);
            }
        }
        Ok(())
    }

    /// Hands queued page operations to the ring while it has free buffers.
    fn submit_ops(&mut self, clock: &Clock) -> Result<bool, RealError> {
        let mut any = false;
        // One buffer stays free for the synchronous adapter writes (`write_nvme_page`).
        while self.nvme.io().free_buffers() > 1 {
            let Some(op) = self.ops.queued.pop_front() else {
                break;
            };
            any = true;
            let submitted = match op {
                PageOp::Write { host, nvme, .. } => {
                    self.nvme.io().submit_write(nvme, self.host.page(host))
                }
                PageOp::Read { nvme, .. } => self.nvme.io().submit_read(nvme),
            };
            match submitted {
                Ok(ticket) => {
                    self.ops.in_flight.insert(ticket, op);
                }
                Err(_) => {
                    // Refused before reaching the disk (a page never written, say): a write
                    // fails, a read is lost.
                    let is_read = matches!(op, PageOp::Read { .. });
                    self.count_error(is_read);
                    self.page_done_now(op, !is_read, is_read, clock)?;
                }
            }
        }
        Ok(any)
    }

    fn count_error(&mut self, read: bool) {
        if read {
            self.io_counters.read_errors += 1;
        } else {
            self.io_counters.write_errors += 1;
        }
    }

    /// Reaps finished page operations and completes the transfers they finish.
    fn reap(&mut self, clock: &Clock) -> Result<bool, RealError> {
        if self.ops.in_flight.is_empty() {
            return Ok(false);
        }
        // Completions set aside by a synchronous adapter write come first.
        let mut out = std::mem::take(&mut self.completions);
        self.nvme.io().reap(0, &mut out)?;
        let any = !out.is_empty();
        for c in out.drain(..) {
            let Some(op) = self.ops.in_flight.remove(&c.ticket) else {
                continue;
            };
            let (failed, lost) = match (op, &c.result) {
                (PageOp::Write { .. }, Ok(())) => {
                    self.io_counters.pages_written += 1;
                    (false, false)
                }
                (PageOp::Write { .. }, Err(_)) => {
                    self.count_error(false);
                    (true, false)
                }
                (PageOp::Read { .. }, Err(_)) => {
                    self.count_error(true);
                    (false, true)
                }
                (PageOp::Read { host, .. }, Ok(())) => {
                    let status = self
                        .nvme
                        .io()
                        .take_read(c.ticket, self.host.page_mut(host))?;
                    match status {
                        PageReadStatus::Valid => {
                            self.io_counters.pages_read += 1;
                            (false, false)
                        }
                        PageReadStatus::Corrupt { .. } | PageReadStatus::NeverWritten { .. } => {
                            self.io_counters.checksum_failures += 1;
                            (false, true)
                        }
                    }
                }
            };
            if let Some(p) = self.ops.page_done(op.transfer(), failed, lost) {
                self.transfer_finished(op.transfer(), p, clock)?;
            }
        }
        self.completions = out;
        Ok(any)
    }

    fn page_done_now(
        &mut self,
        op: PageOp,
        failed: bool,
        lost: bool,
        clock: &Clock,
    ) -> Result<(), RealError> {
        if let Some(p) = self.ops.page_done(op.transfer(), failed, lost) {
            self.transfer_finished(op.transfer(), p, clock)?;
        }
        Ok(())
    }

    fn transfer_finished(&mut self, id: u64, p: Pending, clock: &Clock) -> Result<(), RealError> {
        let now = clock.now_ns();
        if p.lost {
            if let Lost::AdapterReloaded { registered, tier } =
                self.engine.handle_transfer_lost(now, id)?
            {
                // The adapter's pages were lost: write them again from the source.
                let adapter = registered.adapter;
                let source = self.current[adapter.id as usize].clone();
                self.write_adapter(registered.node, tier, &source.paged)?;
                self.sources.insert((adapter.id, adapter.version), source);
            }
        } else {
            self.engine.handle_transfer_done(now, id, !p.failed)?;
        }
        Ok(())
    }

    /// Writes the weights of every adapter the engine moved without a copy into its new
    /// pages, from the adapter's source (the store every tier's copy comes from).
    fn fill_clean_moves(&mut self) -> Result<bool, RealError> {
        let mut any = false;
        while let Some(node) = self.engine.poll_clean_move() {
            any = true;
            let Ok(view) = self.engine.tree().node(node) else {
                continue; // dropped since
            };
            let (tier, key) = (view.tier(), view.key());
            let adapter = ((key >> 32) as u32, key as u32);
            let source =
                self.sources.get(&adapter).cloned().ok_or_else(|| {
                    RealError::Runtime(format!("no weights for adapter {adapter:?}"))
                })?;
            self.write_adapter(node, tier, &source.paged)?;
        }
        Ok(any)
    }

    /// Writes an adapter's pages into `node`'s pages in `tier` (host: a copy; NVMe: page
    /// writes, retried a few times).
    fn write_adapter(
        &mut self,
        node: NodeId,
        tier: Tier,
        paged: &PagedAdapter,
    ) -> Result<(), RealError> {
        let pages: Vec<u32> = self
            .engine
            .tree()
            .pages(node, tier)
            .map_err(engine_err)?
            .collect();
        for (&page, bytes) in pages.iter().zip(&paged.pages) {
            match tier {
                Tier::Host => self.host.page_mut(page).copy_from_slice(bytes),
                Tier::Hbm => arena::hbm_page_mut(&mut self.hbm, page).copy_from_slice(bytes),
                Tier::Nvme => self.write_nvme_page(page, bytes)?,
            }
        }
        Ok(())
    }

    /// One page written synchronously (start-up and adapter registration only).
    fn write_nvme_page(&mut self, page: u32, bytes: &[u8]) -> Result<(), RealError> {
        let mut last = None;
        for _ in 0..8 {
            let ticket = self.nvme.io().submit_write(page, bytes)?;
            let mut out = Vec::new();
            loop {
                self.nvme.io().reap(1, &mut out)?;
                if let Some(pos) = out.iter().position(|c| c.ticket == ticket) {
                    let c = out.swap_remove(pos);
                    // Other completions belong to the page ops in flight: put them back.
                    self.completions.append(&mut out);
                    match c.result {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            self.count_error(false);
                            last = Some(e);
                        }
                    }
                    break;
                }
            }
        }
        Err(RealError::Io(last.expect("eight failed attempts")))
    }

    /// The adapter weights of a sequence, decoded from its LoRA node's HBM pages (cached per
    /// node: a node's pages never change while it lives).
    fn lora_for(&mut self, seq: &StepSeq) -> Result<Arc<CpuLora>, RealError> {
        if let Some(l) = self.decoded.get(&seq.lora_node) {
            return Ok(l.clone());
        }
        let key = (seq.adapter.id, seq.adapter.version);
        let source = self
            .sources
            .get(&key)
            .ok_or_else(|| RealError::Runtime(format!("no weights for adapter {key:?}")))?;
        let tree = self.engine.tree();
        let view = tree.node(seq.lora_node).map_err(engine_err)?;
        if view.tier() != Tier::Hbm {
            return Err(RealError::Runtime(format!(
                "adapter {key:?} is computed with but sits in {:?}",
                view.tier()
            )));
        }
        let pages: Vec<Vec<u8>> = tree
            .pages(seq.lora_node, Tier::Hbm)
            .map_err(engine_err)?
            .map(|p| arena::hbm_page(&self.hbm, p).to_vec())
            .collect();
        let paged = PagedAdapter {
            pages,
            layout: source.paged.layout.clone(),
        };
        let adapter = paged.to_adapter().map_err(|e| RealError::Adapter {
            name: source.name.clone(),
            source: Box::new(e),
        })?;
        let lora = Arc::new(CpuLora::from_adapter(self.model.config(), &adapter)?);
        if self.decoded.len() >= 256 {
            let tree = self.engine.tree();
            self.decoded
                .retain(|node, _| tree.node(*node).is_ok_and(|v| v.tier() == Tier::Hbm));
        }
        self.decoded.insert(seq.lora_node, lora.clone());
        Ok(lora)
    }

    fn run_step(&mut self, step: StepCmd, clock: &Clock) -> Result<(), RealError> {
        let seqs = self.engine.step_inputs();
        let vocab = self.model.config().vocab as u32;
        let mut loras = Vec::with_capacity(seqs.len());
        for seq in &seqs {
            loras.push(self.lora_for(seq)?);
        }
        let tokens: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| s.tokens.iter().map(|t| t % vocab).collect())
            .collect();
        let inputs: Vec<SeqInput<'_>> = seqs
            .iter()
            .zip(&tokens)
            .zip(&loras)
            .map(|((s, t), l)| SeqInput {
                tokens: t,
                block_table: &s.block_table,
                start_pos: s.start_pos as usize,
                lora: Some(l),
            })
            .collect();
        let logits = self.model.forward_batch(&mut self.hbm, &inputs)?;
        drop(inputs);
        let mut sampled: FxHashMap<u64, u32> = FxHashMap::default();
        for (seq, logits) in seqs.iter().zip(&logits) {
            let track = self.tracks.entry(seq.request).or_insert(Track {
                max_new: 1,
                first_start: None,
                sampled: 0,
            });
            let first_start = *track.first_start.get_or_insert(seq.start_pos);
            if !seq.samples {
                continue;
            }
            track.sampled += 1;
            // A request that reused cached KV: its first token, and its last token (which
            // also reads the KV it decoded into its own pages).
            let check = first_start > 0 && (track.sampled == 1 || track.sampled == track.max_new);
            sampled.insert(seq.request, argmax(logits));
            if check && self.verifier.is_some() {
                // Checked after the run, so recomputing does not slow the serving path.
                let source = self.sources[&(seq.adapter.id, seq.adapter.version)].clone();
                self.verify_jobs.push((seq.clone(), logits.clone(), source));
            }
        }
        // One token per sampler, in the step's order (a request that left meanwhile gets a
        // placeholder the engine discards).
        let out: Vec<u32> = step
            .samples
            .iter()
            .map(|r| sampled.get(r).copied().unwrap_or(0))
            .collect();
        self.engine
            .handle_step_done(clock.now_ns(), step.id, &out)?;
        Ok(())
    }
}

fn engine_err(e: fastlibra_alloc::AllocError) -> RealError {
    RealError::Engine(e.into())
}

/// The most likely next token (greedy sampling: deterministic, so runs can be compared).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}
