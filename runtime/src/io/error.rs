//! The page file's error type: argument errors, operating conditions, and I/O failures that name
//! the operation, the file, the page and the byte offset.

use std::fmt;
use std::path::PathBuf;

use super::slot::{MAX_PAGE_BYTES, MAX_QUEUE_DEPTH, PAGE_ALIGN};

/// The operation an I/O error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Creating or opening the page file.
    Create,
    /// Reserving the file's blocks (`fallocate`, or `set_len` where that is refused).
    Allocate,
    /// The aligned test write that tells whether the filesystem accepts `O_DIRECT`.
    Probe,
    /// Setting up the io_uring instance.
    RingSetup,
    /// Submitting to or waiting on the ring.
    Submit,
    /// Writing a page slot.
    Write,
    /// Reading a page slot.
    Read,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Create => "create",
            IoOp::Allocate => "fallocate",
            IoOp::Probe => "O_DIRECT probe",
            IoOp::RingSetup => "io_uring setup",
            IoOp::Submit => "io_uring submit",
            IoOp::Write => "write",
            IoOp::Read => "read",
        })
    }
}

/// Everything that can go wrong with a [`PageFile`](super::PageFile).
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The kernel refuses io_uring (`ENOSYS`: too old or compiled out; `EPERM`/`EACCES`: disabled
    /// by `kernel.io_uring_disabled`, seccomp or a container policy).
    #[error("io_uring is unavailable here ({reason}); the NVMe tier cannot run on this system")]
    Unsupported {
        /// What the kernel answered.
        reason: String,
    },
    /// The page size is zero, not a multiple of the 4 KiB O_DIRECT alignment, or too large.
    #[error(
        "page size must be a positive multiple of {PAGE_ALIGN} bytes, at most {MAX_PAGE_BYTES}; \
         got {page_bytes}"
    )]
    BadPageSize {
        /// The size asked for.
        page_bytes: usize,
    },
    /// A page file of zero pages was asked for.
    #[error("a page file needs at least one page")]
    NoPages,
    /// The queue depth is zero or larger than the file supports.
    #[error("queue depth must be in 1..={MAX_QUEUE_DEPTH}, got {queue_depth}")]
    BadQueueDepth {
        /// The depth asked for.
        queue_depth: u32,
    },
    /// `pages × slot size` does not fit in a file offset or in memory.
    #[error("{pages} pages of {slot_bytes} bytes do not fit in one file")]
    TooLarge {
        /// Pages asked for.
        pages: u32,
        /// Bytes per slot (page plus header).
        slot_bytes: usize,
    },
    /// A page id past the end of the file.
    #[error("page {page} is out of range: the file holds {pages} pages")]
    PageOutOfRange {
        /// The page asked for.
        page: u32,
        /// Pages in the file.
        pages: u32,
    },
    /// A buffer whose length is not exactly one page.
    #[error("page {page}: the buffer holds {len} bytes, a page is exactly {page_bytes}")]
    BadBufferLength {
        /// The page the buffer belongs to.
        page: u32,
        /// The buffer's length.
        len: usize,
        /// The page size.
        page_bytes: usize,
    },
    /// `read_pages` got a different number of page ids and output buffers.
    #[error("{pages} page ids but {buffers} output buffers")]
    BatchMismatch {
        /// Page ids given.
        pages: usize,
        /// Output buffers given.
        buffers: usize,
    },
    /// `submit_read` of a page that this file has never written (batch reads report
    /// [`PageReadStatus::NeverWritten`](super::PageReadStatus::NeverWritten) instead).
    #[error("page {page} has never been written")]
    NotWritten {
        /// The page.
        page: u32,
    },
    /// An operation on a page that already has one in flight.
    #[error("page {page} already has an operation in flight")]
    PageBusy {
        /// The page.
        page: u32,
    },
    /// Every buffer is in flight or holds a completed read not yet taken.
    #[error("all {queue_depth} buffers are busy; reap completions and take reads first")]
    QueueFull {
        /// The file's queue depth.
        queue_depth: u32,
    },
    /// A batch call while operations submitted through the low-level API are outstanding.
    #[error("{busy} buffers are in flight or hold untaken reads; batch calls need an idle file")]
    NotIdle {
        /// Buffers not free.
        busy: u32,
    },
    /// `take_read` with a ticket that names no completed, untaken read.
    #[error("ticket {0:?} names no completed read")]
    UnknownTicket(super::Ticket),
    /// A system call failed.
    #[error("{op} {}: {source}", path.display())]
    File {
        /// What was being done.
        op: IoOp,
        /// The page file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A page read or write failed.
    #[error("{op} {}: page {page} at offset {offset}: {source}", path.display())]
    Page {
        /// [`IoOp::Write`] or [`IoOp::Read`].
        op: IoOp,
        /// The page file.
        path: PathBuf,
        /// The page.
        page: u32,
        /// Byte offset of the page's slot in the file.
        offset: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A page read or write moved fewer bytes than a slot.
    #[error(
        "{op} {}: page {page} at offset {offset}: transferred {done} of {expected} bytes",
        path.display()
    )]
    ShortTransfer {
        /// [`IoOp::Write`] or [`IoOp::Read`].
        op: IoOp,
        /// The page file.
        path: PathBuf,
        /// The page.
        page: u32,
        /// Byte offset of the page's slot in the file.
        offset: u64,
        /// Bytes moved.
        done: usize,
        /// Bytes in a slot.
        expected: usize,
    },
}
