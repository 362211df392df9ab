//! The stream scheduler on a device: issues the [`StreamScheduler`]'s batches as one
//! `cuMemcpyAsync` per coalesced run on the copy stream of their direction, records one event
//! per batch, lets the compute stream wait on those events on the device, and reports batches
//! whose events completed without blocking the host.

use cudarc::driver::CudaEvent;

use super::device::CudaDevice;
use super::error::{Result, driver};
use super::pool::{DevicePagePool, HostPagePool};
use super::sched::{CopyBatch, Direction, PageCopy, Priority, StreamScheduler, Ticket};

/// Page copies of one device between its HBM pool and its pinned host pool.
pub struct CopyEngine {
    sched: StreamScheduler,
    in_flight: Vec<(Ticket, Direction, CudaEvent)>,
}

/// A batch whose copies have completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The batch.
    pub ticket: Ticket,
    /// Which way it went.
    pub direction: Direction,
    /// Its HBM pages: after a D2H, free to reuse; after an H2D, valid to compute on.
    pub hbm_pages: Vec<u32>,
}

impl CopyEngine {
    /// An engine issuing at most `max_batch_pages` pages per batch, holding at most
    /// `max_queued_pages` queued.
    pub fn new(max_batch_pages: usize, max_queued_pages: usize) -> Self {
        CopyEngine {
            sched: StreamScheduler::new(max_batch_pages, max_queued_pages),
            in_flight: Vec::new(),
        }
    }

    /// The scheduler (busy pages, queue lengths).
    pub fn scheduler(&self) -> &StreamScheduler {
        &self.sched
    }

    /// Queues copies (see [`StreamScheduler::submit`]).
    pub fn submit(
        &mut self,
        direction: Direction,
        priority: Priority,
        pages: &[PageCopy],
    ) -> Result<()> {
        Ok(self.sched.submit(direction, priority, pages)?)
    }

    /// Issues every queued batch on its copy stream, on-demand batches first, and returns
    /// their tickets in issue order.
    pub fn pump(
        &mut self,
        dev: &CudaDevice,
        hbm: &DevicePagePool,
        host: &mut HostPagePool,
    ) -> Result<Vec<Ticket>> {
        let mut issued = Vec::new();
        for direction in [Direction::H2d, Direction::D2h] {
            while let Some(batch) = self.sched.poll_batch(direction) {
                let event = self.issue(dev, hbm, host, &batch)?;
                self.in_flight.push((batch.ticket, direction, event));
                issued.push(batch.ticket);
            }
        }
        Ok(issued)
    }

    fn issue(
        &self,
        dev: &CudaDevice,
        hbm: &DevicePagePool,
        host: &mut HostPagePool,
        batch: &CopyBatch,
    ) -> Result<CudaEvent> {
        let stream = match batch.direction {
            Direction::H2d => &dev.h2d,
            Direction::D2h => &dev.d2h,
        };
        for run in &batch.runs {
            let (pages, dst) = (run.pages as usize, hbm.page_ptr(dev, run.hbm_first)?);
            // The last page of the run must lie in the pool too.
            hbm.page_ptr(dev, run.hbm_first + run.pages - 1)?;
            let host_pages = host.pages_mut(run.host_first, pages)?;
            // SAFETY: both ranges lie inside their pools (checked above); the pinned pages
            // stay allocated while the engine lives, and the scheduler keeps their HBM pages
            // busy until this batch's event has completed.
            unsafe {
                match batch.direction {
                    Direction::H2d => cudarc::driver::result::memcpy_htod_async(
                        dst,
                        host_pages,
                        stream.cu_stream(),
                    ),
                    Direction::D2h => cudarc::driver::result::memcpy_dtoh_async(
                        host_pages,
                        dst,
                        stream.cu_stream(),
                    ),
                }
                .map_err(driver("page copy"))?;
            }
        }
        stream.record_event(None).map_err(driver("copy event"))
    }

    /// Makes the compute stream wait, on the device, for batch `ticket` (a swap-in a kernel
    /// is about to read). No host synchronisation. A ticket already completed needs no wait.
    pub fn compute_waits_for(&self, dev: &CudaDevice, ticket: Ticket) -> Result<()> {
        match self.in_flight.iter().find(|(t, _, _)| *t == ticket) {
            Some((_, _, event)) => dev.compute.wait(event).map_err(driver("stream wait")),
            None => Ok(()),
        }
    }

    /// Reports every batch whose event has completed, without blocking.
    pub fn poll(&mut self) -> Result<Vec<Completed>> {
        let mut done = Vec::new();
        let mut at = 0;
        while at < self.in_flight.len() {
            let complete = self.in_flight[at]
                .2
                .try_is_complete()
                .map_err(driver("event query"))?;
            if complete {
                let (ticket, _, _) = self.in_flight.swap_remove(at);
                let (direction, hbm_pages) = self.sched.handle_complete(ticket)?;
                done.push(Completed {
                    ticket,
                    direction,
                    hbm_pages,
                });
            } else {
                at += 1;
            }
        }
        Ok(done)
    }

    /// Blocks the host until every issued batch completed and reports them (tests, shutdown
    /// and measurements only).
    pub fn drain(&mut self) -> Result<Vec<Completed>> {
        for (_, _, event) in &self.in_flight {
            event.synchronize().map_err(driver("event synchronize"))?;
        }
        self.poll()
    }
}
