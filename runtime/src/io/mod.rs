//! The NVMe tier's page file: real bytes over io_uring, `O_DIRECT`, registered buffers and a
//! checksum on every page.
//!
//! A [`PageFile`] is one file holding `pages` fixed-size pages, each in its own 4 KiB-aligned
//! slot with a small header (see [`slot`] for the layout and checksum rule). Page ids are the
//! NVMe tier's `u32` page indices from `fastlibra-alloc`. Everything is allocated once in
//! [`PageFile::create`]: the ring (`queue_depth` entries), `queue_depth` page-aligned buffers
//! registered with it, and the per-page checksum table; so no more than `queue_depth`
//! operations are ever in flight and the hot path does not allocate.
//!
//! Two ways to drive it:
//! - **batch**: [`PageFile::write_pages`] and [`PageFile::read_pages`] pipeline a whole batch
//!   and return when it is done;
//! - **submit / reap**, for an event loop that overlaps I/O with other work:
//!
//! ```text
//! submit_write(page, data) ─┐                       ┌─ write: buffer free again
//!                           ├─> submit() / reap(n) ─┤
//! submit_read(page) ────────┘    (Completion)       └─ read:  take_read(ticket, out)
//!                                                              verifies, copies, frees
//! ```
//!
//! Every page is checksummed (CRC32C) before the write and verified after the read against the
//! checksum kept in memory; a page that fails is reported as [`PageReadStatus::Corrupt`] and
//! never copied out. The file has a unique name, is removed on drop, and is a cache: its
//! contents do not outlive the process.

mod batch;
mod buffers;
mod error;
mod file;
mod page_file;
pub mod slot;

pub use error::{IoError, IoOp};
pub use file::CacheMode;
pub use page_file::{BufferMode, Completion, PageFile, PageReadStatus, Ticket};
