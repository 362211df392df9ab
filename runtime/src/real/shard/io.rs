//! The shard's data movement: copies between the arenas, page I/O on the NVMe tier, and
//! adapters written from their source.

use fastlibra_alloc::{NodeId, Tier};
use fastlibra_kernels::peft::PagedAdapter;

use super::{Clock, Shard, engine_err};
use crate::engine::{Link, Lost, TransferCmd};
use crate::io::PageReadStatus;
use crate::real::device::CopyDir;
use crate::real::error::RealError;
use crate::real::tiers::{PageOp, Pending};

impl Shard {
    pub(super) fn start_transfer(
        &mut self,
        cmd: TransferCmd,
        clock: &Clock,
    ) -> Result<(), RealError> {
        // One command may move several nodes: their pages go as one list, one copy.
        let tree = self.engine.tree();
        let mut src: Vec<u32> = Vec::with_capacity(cmd.pages as usize);
        let mut dst: Vec<u32> = Vec::with_capacity(cmd.pages as usize);
        for &node in cmd.nodes() {
            src.extend(tree.pages(node, cmd.from).map_err(engine_err)?);
            dst.extend(tree.pages(node, cmd.to).map_err(engine_err)?);
        }
        if src.len() != dst.len() || src.len() != cmd.pages as usize {
            return Err(RealError::Runtime(format!(
                "transfer {}: {} source and {} destination pages for {} pages",
                cmd.id,
                src.len(),
                dst.len(),
                cmd.pages
            )));
        }
        match cmd.link {
            Link::H2D | Link::D2H => {
                let dir = if cmd.link == Link::H2D {
                    CopyDir::ToHbm
                } else {
                    CopyDir::ToHost
                };
                self.device
                    .start_copy(cmd.id, dir, cmd.on_demand, &src, &dst)?;
                // The emulated device copies at once: report it before the next command.
                self.reap_copies(clock)?;
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

    /// Reports the device copies that have arrived.
    pub(super) fn reap_copies(&mut self, clock: &Clock) -> Result<bool, RealError> {
        let mut done = Vec::new();
        self.device.poll_copies(&mut done)?;
        for id in &done {
            super::timed(&mut self.engine_call_ns_max, || {
                self.engine.handle_transfer_done(clock.now_ns(), *id, true)
            })?;
        }
        Ok(!done.is_empty())
    }

    /// Hands queued page operations to the ring while it has free buffers.
    pub(super) fn submit_ops(&mut self, clock: &Clock) -> Result<bool, RealError> {
        let mut any = false;
        // One buffer stays free for the synchronous adapter writes (`write_nvme_page`).
        while self.nvme.io().free_buffers() > 1 {
            let Some(op) = self.ops.queued.pop_front() else {
                break;
            };
            any = true;
            let submitted = match op {
                PageOp::Write { host, nvme, .. } => {
                    let bytes = self.device.host_page(host)?;
                    self.nvme.io().submit_write(nvme, bytes)
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

    pub(super) fn count_error(&mut self, read: bool) {
        if read {
            self.io_counters.read_errors += 1;
        } else {
            self.io_counters.write_errors += 1;
        }
    }

    /// Reaps finished page operations and completes the transfers they finish.
    pub(super) fn reap(&mut self, clock: &Clock) -> Result<bool, RealError> {
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
                        .take_read(c.ticket, self.device.host_page_mut(host)?)?;
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

    pub(super) fn page_done_now(
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

    pub(super) fn transfer_finished(
        &mut self,
        id: u64,
        p: Pending,
        clock: &Clock,
    ) -> Result<(), RealError> {
        let now = clock.now_ns();
        if p.lost {
            // A lost adapter with no room anywhere (`Lost::AdapterPending`) comes back later
            // through `fill_registrations`.
            let lost = super::timed(&mut self.engine_call_ns_max, || {
                self.engine.handle_transfer_lost(now, id)
            })?;
            if let Lost::AdapterReloaded { registered, tier } = lost {
                self.register_from_source(registered, tier)?;
            }
        } else {
            super::timed(&mut self.engine_call_ns_max, || {
                self.engine.handle_transfer_done(now, id, !p.failed)
            })?;
        }
        Ok(())
    }

    /// The adapter's pages were lost: its current weights go into the new version's pages.
    fn register_from_source(
        &mut self,
        registered: fastlibra_alloc::Registered,
        tier: Tier,
    ) -> Result<(), RealError> {
        let adapter = registered.adapter;
        let source = self.current[adapter.id as usize].clone();
        self.write_adapter(registered.node, tier, &source.paged)?;
        self.sources.insert((adapter.id, adapter.version), source);
        Ok(())
    }

    /// Adapters the engine registered again by itself once there was room.
    pub(super) fn fill_registrations(&mut self) -> Result<bool, RealError> {
        let mut any = false;
        while let Some((registered, tier)) = self.engine.poll_registration() {
            self.register_from_source(registered, tier)?;
            any = true;
        }
        Ok(any)
    }

    /// Writes the weights of every adapter the engine moved without a copy into its new
    /// pages, from the adapter's source (the store every tier's copy comes from).
    pub(super) fn fill_clean_moves(&mut self) -> Result<bool, RealError> {
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
    pub(super) fn write_adapter(
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
                Tier::Host => self.device.host_page_mut(page)?.copy_from_slice(bytes),
                Tier::Hbm => self.device.write_hbm_page(page, bytes)?,
                Tier::Nvme => self.write_nvme_page(page, bytes)?,
            }
        }
        Ok(())
    }

    /// One page written synchronously (start-up and adapter registration only).
    pub(super) fn write_nvme_page(&mut self, page: u32, bytes: &[u8]) -> Result<(), RealError> {
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
}
