//! The stream scheduler's core, free of CUDA (sans-IO): which page copies go next, in which
//! runs, and when an HBM page may be reused. [`CopyEngine`](super::CopyEngine) drives it
//! on a device; the tests drive it here.
//!
//! ```text
//!  submit(dir, priority, pages) ─► queues[dir][OnDemand | Prefetch]
//!  poll_batch(dir) ─► CopyBatch { ticket, runs }   on-demand pages first; adjacent pages
//!        │                                         (HBM and host both consecutive) → one run
//!        ▼  device: one cuMemcpyAsync per run on the dir's copy stream, then an event
//!  handle_complete(ticket) ◄─ the event completed ─ pages leave `busy`
//! ```
//!
//! An HBM page is *busy* from the moment a copy of it is queued until its batch's event has
//! completed: a busy page cannot be queued again, so a page being swapped out (D2H) is never
//! overwritten by a swap-in or by compute before its bytes have left.

use std::collections::{BTreeSet, VecDeque};

use thiserror::Error;

/// Which way a copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Direction {
    /// Host (pinned) → HBM: a swap-in.
    H2d,
    /// HBM → host (pinned): a swap-out.
    D2h,
}

/// How urgent a copy is. On-demand copies (a request waits on them) go ahead of prefetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Priority {
    /// A request in the next batch needs the page.
    OnDemand,
    /// The page may be needed soon.
    Prefetch,
}

/// One page copy between HBM page `hbm` and host page `host`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageCopy {
    /// Page id in the device pool.
    pub hbm: u32,
    /// Page id in the pinned host pool.
    pub host: u32,
}

/// Pages `hbm_first..hbm_first + pages` ↔ `host_first..host_first + pages`: one copy call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyRun {
    /// First HBM page.
    pub hbm_first: u32,
    /// First host page.
    pub host_first: u32,
    /// Pages in the run.
    pub pages: u32,
}

/// Names a batch of copies until its completion is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// Copies issued together on one copy stream and completed by one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyBatch {
    /// Report it to [`StreamScheduler::handle_complete`] once the event completed.
    pub ticket: Ticket,
    /// Which way the runs go.
    pub direction: Direction,
    /// Whether these are on-demand copies.
    pub priority: Priority,
    /// The copies, coalesced.
    pub runs: Vec<CopyRun>,
}

/// A request the scheduler refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchedError {
    /// The HBM page already has a copy queued or in flight (for a swap-out: its bytes have not
    /// left yet, so it cannot be written).
    #[error("HBM page {hbm} is busy with a copy that has not completed")]
    PageBusy {
        /// The page.
        hbm: u32,
    },
    /// The same HBM page appears twice in one request.
    #[error("HBM page {hbm} appears twice in one copy request")]
    Duplicate {
        /// The page.
        hbm: u32,
    },
    /// More pages queued than the scheduler was built for.
    #[error("copy queue full: {queued} pages queued, {asked} more asked, bound {bound}")]
    QueueFull {
        /// Pages already queued.
        queued: usize,
        /// Pages in the refused request.
        asked: usize,
        /// The bound.
        bound: usize,
    },
    /// A completion for a ticket not in flight.
    #[error("no copy batch in flight with ticket {0:?}")]
    UnknownTicket(Ticket),
}

/// Coalesces copies into runs: sorted by HBM page, a page joins the previous run when both
/// its HBM and host ids follow the run's last ones.
pub fn coalesce(copies: &[PageCopy]) -> Vec<CopyRun> {
    let mut sorted = copies.to_vec();
    sorted.sort_unstable();
    let mut runs: Vec<CopyRun> = Vec::new();
    for c in sorted {
        match runs.last_mut() {
            Some(r)
                if u64::from(r.hbm_first) + u64::from(r.pages) == u64::from(c.hbm)
                    && u64::from(r.host_first) + u64::from(r.pages) == u64::from(c.host) =>
            {
                r.pages += 1
            }
            _ => runs.push(CopyRun {
                hbm_first: c.hbm,
                host_first: c.host,
                pages: 1,
            }),
        }
    }
    runs
}

const DIRS: [Direction; 2] = [Direction::H2d, Direction::D2h];

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::H2d => 0,
        Direction::D2h => 1,
    }
}

/// The queues of page copies of one device, bounded, with the busy-page rule.
#[derive(Clone, Debug)]
pub struct StreamScheduler {
    max_batch_pages: usize,
    max_queued_pages: usize,
    /// `[direction][0 = on-demand, 1 = prefetch]`.
    queues: [[VecDeque<PageCopy>; 2]; 2],
    in_flight: Vec<(Ticket, Direction, Vec<u32>)>,
    busy: BTreeSet<u32>,
    next_ticket: u64,
}

impl StreamScheduler {
    /// A scheduler issuing at most `max_batch_pages` pages per batch and holding at most
    /// `max_queued_pages` queued pages (both at least one).
    pub fn new(max_batch_pages: usize, max_queued_pages: usize) -> Self {
        StreamScheduler {
            max_batch_pages: max_batch_pages.max(1),
            max_queued_pages: max_queued_pages.max(1),
            queues: Default::default(),
            in_flight: Vec::new(),
            busy: BTreeSet::new(),
            next_ticket: 0,
        }
    }

    /// Pages queued, all directions and priorities.
    pub fn queued_pages(&self) -> usize {
        self.queues.iter().flatten().map(VecDeque::len).sum()
    }

    /// Batches issued and not yet completed.
    pub fn batches_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether HBM page `hbm` has a copy queued or in flight (and so may not be reused).
    pub fn is_busy(&self, hbm: u32) -> bool {
        self.busy.contains(&hbm)
    }

    /// Queues `pages` for copying in `direction`. All or nothing: a busy or repeated HBM page,
    /// or a full queue, refuses the whole request.
    pub fn submit(
        &mut self,
        direction: Direction,
        priority: Priority,
        pages: &[PageCopy],
    ) -> Result<(), SchedError> {
        let queued = self.queued_pages();
        if queued + pages.len() > self.max_queued_pages {
            return Err(SchedError::QueueFull {
                queued,
                asked: pages.len(),
                bound: self.max_queued_pages,
            });
        }
        let mut seen = BTreeSet::new();
        for p in pages {
            if self.busy.contains(&p.hbm) {
                return Err(SchedError::PageBusy { hbm: p.hbm });
            }
            if !seen.insert(p.hbm) {
                return Err(SchedError::Duplicate { hbm: p.hbm });
            }
        }
        self.busy.extend(seen);
        let q = &mut self.queues[dir_index(direction)][usize::from(priority == Priority::Prefetch)];
        q.extend(pages.iter().copied());
        Ok(())
    }

    /// Moves the queued prefetch of HBM page `hbm` (either direction) ahead, to the on-demand
    /// queue; returns whether one was found.
    pub fn promote(&mut self, hbm: u32) -> bool {
        for queues in &mut self.queues {
            if let Some(at) = queues[1].iter().position(|p| p.hbm == hbm) {
                if let Some(p) = queues[1].remove(at) {
                    queues[0].push_back(p);
                }
                return true;
            }
        }
        false
    }

    /// The next batch for `direction`'s copy stream: on-demand pages if any are queued (up to
    /// the batch bound), else prefetches; coalesced into runs. `None` when nothing is queued.
    pub fn poll_batch(&mut self, direction: Direction) -> Option<CopyBatch> {
        let queues = &mut self.queues[dir_index(direction)];
        let (level, priority) = if queues[0].is_empty() {
            (1, Priority::Prefetch)
        } else {
            (0, Priority::OnDemand)
        };
        let take = queues[level].len().min(self.max_batch_pages);
        if take == 0 {
            return None;
        }
        let pages: Vec<PageCopy> = queues[level].drain(..take).collect();
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.in_flight
            .push((ticket, direction, pages.iter().map(|p| p.hbm).collect()));
        Some(CopyBatch {
            ticket,
            direction,
            priority,
            runs: coalesce(&pages),
        })
    }

    /// Reports that batch `ticket`'s event completed; returns its direction and HBM pages,
    /// which are no longer busy (after a D2H: free to reuse).
    pub fn handle_complete(&mut self, ticket: Ticket) -> Result<(Direction, Vec<u32>), SchedError> {
        let at = self
            .in_flight
            .iter()
            .position(|(t, _, _)| *t == ticket)
            .ok_or(SchedError::UnknownTicket(ticket))?;
        let (_, direction, pages) = self.in_flight.swap_remove(at);
        for p in &pages {
            self.busy.remove(p);
        }
        Ok((direction, pages))
    }

    /// Recomputes the busy set from the queues and the batches in flight and checks it, and
    /// that no HBM page is in two places. Panics with the broken rule (for tests and fuzzing).
    pub fn check_invariants(&self) {
        let mut all = Vec::new();
        for d in DIRS {
            for q in &self.queues[dir_index(d)] {
                all.extend(q.iter().map(|p| p.hbm));
            }
        }
        for (_, _, pages) in &self.in_flight {
            all.extend(pages.iter().copied());
        }
        let set: BTreeSet<u32> = all.iter().copied().collect();
        assert_eq!(
            set.len(),
            all.len(),
            "an HBM page is queued or in flight twice"
        );
        assert_eq!(set, self.busy, "busy set differs from queues + in flight");
        assert!(self.queued_pages() <= self.max_queued_pages);
    }
}

#[cfg(test)]
mod tests;
