//! The NVMe tier's page operations in flight: each engine transfer to or from NVMe becomes one
//! page operation per page, queued while the ring has no free buffer, and the transfer is
//! reported once every one of its pages is back (so no page is reused while the kernel may
//! still touch it).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::io::Ticket;

/// One page to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageOp {
    /// Host page `host` → NVMe page `nvme`.
    Write { transfer: u64, host: u32, nvme: u32 },
    /// NVMe page `nvme` → host page `host`.
    Read { transfer: u64, nvme: u32, host: u32 },
}

impl PageOp {
    pub(crate) fn transfer(self) -> u64 {
        match self {
            PageOp::Write { transfer, .. } | PageOp::Read { transfer, .. } => transfer,
        }
    }
}

/// How a transfer's pages fared so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pending {
    /// Pages not back yet.
    pub(crate) left: u32,
    /// A write failed: the source is intact, the copy is not.
    pub(crate) failed: bool,
    /// A read failed or a page failed its checksum: the data is unusable.
    pub(crate) lost: bool,
}

/// The queue, the operations in flight and the transfers they belong to.
#[derive(Debug, Default)]
pub(crate) struct NvmeOps {
    pub(crate) queued: VecDeque<PageOp>,
    pub(crate) in_flight: FxHashMap<Ticket, PageOp>,
    pub(crate) transfers: FxHashMap<u64, Pending>,
}

impl NvmeOps {
    /// Queues every page of a transfer.
    pub(crate) fn push(&mut self, transfer: u64, ops: impl Iterator<Item = PageOp>) {
        let before = self.queued.len();
        self.queued.extend(ops);
        let left = (self.queued.len() - before) as u32;
        self.transfers.insert(
            transfer,
            Pending {
                left,
                ..Pending::default()
            },
        );
    }

    /// Records one page's end; returns the transfer's state if it was its last page.
    pub(crate) fn page_done(&mut self, transfer: u64, failed: bool, lost: bool) -> Option<Pending> {
        let p = self.transfers.get_mut(&transfer)?;
        p.left -= 1;
        p.failed |= failed;
        p.lost |= lost;
        if p.left == 0 {
            self.transfers.remove(&transfer)
        } else {
            None
        }
    }

    /// Whether nothing is queued or in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty()
    }

    /// Every operation in flight or queued belongs to a known transfer, and each transfer's
    /// count of pages left matches.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut count: FxHashMap<u64, u32> = FxHashMap::default();
        for op in self.queued.iter().chain(self.in_flight.values()) {
            *count.entry(op.transfer()).or_default() += 1;
        }
        for (t, p) in &self.transfers {
            let n = count.remove(t).unwrap_or(0);
            if n != p.left {
                return Err(format!(
                    "transfer {t}: {} pages left, {n} operations",
                    p.left
                ));
            }
        }
        match count.keys().next() {
            Some(t) => Err(format!("operations of unknown transfer {t}")),
            None => Ok(()),
        }
    }
}
