//! [`PageFile`]: the ring, its registered buffers, and the submit / reap / take cycle.

use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::path::Path;

use io_uring::{IoUring, opcode, types};

use super::buffers::AlignedBuffers;
use super::error::{IoError, IoOp};
use super::file::{CacheMode, SlotFile};
use super::slot::{self, HEADER_BYTES, MAX_QUEUE_DEPTH, Verdict};

/// Names one submitted operation; returned by `submit_*`, carried by its [`Completion`], and
/// handed to [`PageFile::take_read`] for reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    buffer: u16,
    generation: u32,
}

impl Ticket {
    fn user_data(self) -> u64 {
        (u64::from(self.generation) << 16) | u64::from(self.buffer)
    }

    fn from_user_data(user_data: u64) -> Self {
        Ticket {
            buffer: (user_data & 0xffff) as u16,
            generation: (user_data >> 16) as u32,
        }
    }

    /// The buffer the operation uses, in `0..queue_depth` (drivers may index tables with it).
    pub fn buffer(self) -> usize {
        usize::from(self.buffer)
    }
}

/// Whether the ring's buffers are registered with the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BufferMode {
    /// `register_buffers` succeeded: pages move with `READ_FIXED`/`WRITE_FIXED`, which skips
    /// pinning and mapping the user pages on every operation.
    Registered,
    /// Registration was refused (most often `ENOMEM`: `RLIMIT_MEMLOCK` is below
    /// `queue_depth × slot bytes` for an unprivileged user); pages move with plain
    /// `READ`/`WRITE` on the same aligned buffers.
    Unregistered {
        /// What the kernel answered.
        reason: String,
    },
}

/// What a page read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageReadStatus {
    /// The page came back exactly as written; the output buffer holds it.
    Valid,
    /// This file never wrote the page; the output buffer is untouched.
    NeverWritten {
        /// The page.
        page: u32,
    },
    /// Header or data do not match what was written; the output buffer is untouched and the
    /// page must not be used (the runtime drops the node and recomputes it).
    Corrupt {
        /// The page.
        page: u32,
        /// CRC32C recorded when the page was written.
        expected: u32,
        /// CRC32C of what came back (see [`slot`](super::slot) for the exact rule).
        found: u32,
    },
}

/// One finished operation, as reaped from the ring.
#[derive(Debug)]
pub struct Completion {
    /// The operation's ticket.
    pub ticket: Ticket,
    /// The page it moved.
    pub page: u32,
    /// [`IoOp::Write`] or [`IoOp::Read`].
    pub op: IoOp,
    /// Whether the kernel moved the whole slot. A successful read still has to be taken with
    /// [`PageFile::take_read`], which verifies it and frees its buffer.
    pub result: Result<(), IoError>,
}

#[derive(Debug, Clone, Copy)]
enum BufState {
    Free,
    InFlight { op: IoOp, page: u32, checksum: u32 },
    ReadDone { page: u32, checksum: u32 },
}

#[derive(Debug, Clone, Copy, Default)]
struct PageState {
    checksum: u32,
    written: bool,
    busy: bool,
}

/// The NVMe tier's pages in one file, moved by io_uring (see the [module docs](super)).
pub struct PageFile {
    ring: IoUring,
    /// Freed in `Drop` only once the ring holds no operation (leaked otherwise).
    buffers: ManuallyDrop<AlignedBuffers>,
    file: SlotFile,
    buffer_mode: BufferMode,
    page_bytes: usize,
    pages: u32,
    queue_depth: u32,
    bufs: Vec<BufState>,
    generations: Vec<u32>,
    free: Vec<u16>,
    in_flight: u32,
    page_state: Vec<PageState>,
    cqes: Vec<(u64, i32)>,
    checksum_failures: u64,
}

impl std::fmt::Debug for PageFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageFile")
            .field("path", &self.file.path)
            .field("mode", &self.file.mode)
            .field("buffer_mode", &self.buffer_mode)
            .field("page_bytes", &self.page_bytes)
            .field("pages", &self.pages)
            .field("queue_depth", &self.queue_depth)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

fn new_ring(queue_depth: u32, dir: &Path) -> Result<IoUring, IoError> {
    IoUring::new(queue_depth).map_err(|source| match source.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES) => IoError::Unsupported {
            reason: format!("io_uring_setup: {source}"),
        },
        _ => IoError::File {
            op: IoOp::RingSetup,
            path: dir.to_path_buf(),
            source,
        },
    })
}

fn register(ring: &IoUring, buffers: &AlignedBuffers, path: &Path) -> BufferMode {
    let iovecs = buffers.iovecs();
    // SAFETY: every iovec points into `buffers`, which the `PageFile` keeps alive for as long
    // as the ring can use them: its `Drop` waits for all operations before freeing them and
    // leaks them if it cannot.
    match unsafe { ring.submitter().register_buffers(&iovecs) } {
        Ok(()) => BufferMode::Registered,
        Err(e) => {
            let reason = format!("register_buffers: {e}");
            eprintln!(
                "fastlibra: page file {}: {reason}; using unregistered buffers \
                 (raise `ulimit -l` to at least queue depth × slot bytes to register them)",
                path.display()
            );
            BufferMode::Unregistered { reason }
        }
    }
}

impl PageFile {
    /// Creates a page file of `pages` pages of `page_bytes` in `dir`, with a ring of
    /// `queue_depth` entries and as many aligned buffers. The file has a unique name and is
    /// removed when the `PageFile` is dropped.
    pub fn create(
        dir: impl AsRef<Path>,
        page_bytes: usize,
        pages: u32,
        queue_depth: u32,
    ) -> Result<PageFile, IoError> {
        let dir = dir.as_ref();
        if !slot::page_size_ok(page_bytes) {
            return Err(IoError::BadPageSize { page_bytes });
        }
        if pages == 0 {
            return Err(IoError::NoPages);
        }
        if queue_depth == 0 || queue_depth > MAX_QUEUE_DEPTH {
            return Err(IoError::BadQueueDepth { queue_depth });
        }
        let slot_bytes = slot::slot_bytes(page_bytes);
        let too_large = IoError::TooLarge { pages, slot_bytes };
        let Some(file_bytes) = u64::from(pages)
            .checked_mul(slot_bytes as u64)
            .filter(|&b| i64::try_from(b).is_ok())
        else {
            return Err(too_large);
        };
        if (queue_depth as usize).checked_mul(slot_bytes).is_none() {
            return Err(too_large);
        }
        let ring = new_ring(queue_depth, dir)?;
        let mut buffers = AlignedBuffers::new(queue_depth as usize, slot_bytes);
        let file = SlotFile::create(dir, file_bytes, buffers.slot_mut(0))?;
        let buffer_mode = register(&ring, &buffers, &file.path);
        let depth = queue_depth as usize;
        Ok(PageFile {
            ring,
            buffers: ManuallyDrop::new(buffers),
            file,
            buffer_mode,
            page_bytes,
            pages,
            queue_depth,
            bufs: vec![BufState::Free; depth],
            generations: vec![0; depth],
            // Popped from the back: buffer 0 first.
            free: (0..queue_depth as u16).rev().collect(),
            in_flight: 0,
            page_state: vec![PageState::default(); pages as usize],
            cqes: Vec::with_capacity(2 * depth),
            checksum_failures: 0,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Whether I/O bypasses the page cache (`O_DIRECT`), and why not if it does not.
    pub fn cache_mode(&self) -> &CacheMode {
        &self.file.mode
    }

    /// Whether the buffers are registered with the ring, and why not if they are not.
    pub fn buffer_mode(&self) -> &BufferMode {
        &self.buffer_mode
    }

    /// Bytes of one page.
    pub fn page_bytes(&self) -> usize {
        self.page_bytes
    }

    /// Bytes of one slot on disk (page plus header).
    pub fn slot_bytes(&self) -> usize {
        slot::slot_bytes(self.page_bytes)
    }

    /// Pages the file holds.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// The most operations in flight at once (also the number of buffers).
    pub fn queue_depth(&self) -> u32 {
        self.queue_depth
    }

    /// Operations submitted and not yet reaped.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Buffers free for a new operation.
    pub fn free_buffers(&self) -> u32 {
        self.free.len() as u32
    }

    /// Reads that failed their check since creation.
    pub fn checksum_failures(&self) -> u64 {
        self.checksum_failures
    }

    /// Whether `page` holds a page this file wrote (an in-range page id is assumed).
    pub fn is_written(&self, page: u32) -> bool {
        self.page_state
            .get(page as usize)
            .is_some_and(|state| state.written)
    }

    /// Whether `page` has an operation in flight.
    pub fn is_busy(&self, page: u32) -> bool {
        self.page_state
            .get(page as usize)
            .is_some_and(|state| state.busy)
    }

    /// Byte offset of `page`'s slot.
    pub fn slot_offset(&self, page: u32) -> u64 {
        u64::from(page) * self.slot_bytes() as u64
    }

    pub(super) fn check_page(&self, page: u32) -> Result<(), IoError> {
        if page < self.pages {
            Ok(())
        } else {
            Err(IoError::PageOutOfRange {
                page,
                pages: self.pages,
            })
        }
    }

    pub(super) fn check_len(&self, page: u32, len: usize) -> Result<(), IoError> {
        if len == self.page_bytes {
            Ok(())
        } else {
            Err(IoError::BadBufferLength {
                page,
                len,
                page_bytes: self.page_bytes,
            })
        }
    }

    pub(super) fn require_idle(&self) -> Result<(), IoError> {
        let busy = self.queue_depth - self.free_buffers();
        if busy == 0 {
            Ok(())
        } else {
            Err(IoError::NotIdle { busy })
        }
    }

    fn take_buffer(&mut self, page: u32) -> Result<u16, IoError> {
        if self.is_busy(page) {
            return Err(IoError::PageBusy { page });
        }
        self.free.pop().ok_or(IoError::QueueFull {
            queue_depth: self.queue_depth,
        })
    }

    fn release(&mut self, buffer: usize) {
        self.bufs[buffer] = BufState::Free;
        self.free.push(buffer as u16);
    }

    /// Queues a write of `data` to `page`: copies it into a free buffer, seals the slot header
    /// and checksum, and pushes the operation. Nothing reaches the kernel before
    /// [`submit`](Self::submit) or [`reap`](Self::reap).
    pub fn submit_write(&mut self, page: u32, data: &[u8]) -> Result<Ticket, IoError> {
        self.check_page(page)?;
        self.check_len(page, data.len())?;
        let buffer = self.take_buffer(page)?;
        let slot = self.buffers.slot_mut(usize::from(buffer));
        slot[HEADER_BYTES..].copy_from_slice(data);
        let checksum = slot::seal(slot, page);
        Ok(self.push(buffer, IoOp::Write, page, checksum))
    }

    /// Queues a read of `page` into a free buffer. Once its [`Completion`] is reaped, take the
    /// page with [`take_read`](Self::take_read).
    pub fn submit_read(&mut self, page: u32) -> Result<Ticket, IoError> {
        self.check_page(page)?;
        let state = self.page_state[page as usize];
        if !state.written {
            return Err(IoError::NotWritten { page });
        }
        let buffer = self.take_buffer(page)?;
        Ok(self.push(buffer, IoOp::Read, page, state.checksum))
    }

    fn push(&mut self, buffer: u16, op: IoOp, page: u32, checksum: u32) -> Ticket {
        let b = usize::from(buffer);
        self.generations[b] = self.generations[b].wrapping_add(1);
        let ticket = Ticket {
            buffer,
            generation: self.generations[b],
        };
        let fd = types::Fd(self.file.file.as_raw_fd());
        let ptr = self.buffers.ptr(b);
        // A slot is at most MAX_PAGE_BYTES + 4 KiB, checked at creation.
        let len = self.slot_bytes() as u32;
        let offset = self.slot_offset(page);
        let registered = self.buffer_mode == BufferMode::Registered;
        let entry = match (op, registered) {
            (IoOp::Write, true) => opcode::WriteFixed::new(fd, ptr, len, buffer)
                .offset(offset)
                .build(),
            (IoOp::Write, false) => opcode::Write::new(fd, ptr, len).offset(offset).build(),
            (_, true) => opcode::ReadFixed::new(fd, ptr, len, buffer)
                .offset(offset)
                .build(),
            (_, false) => opcode::Read::new(fd, ptr, len).offset(offset).build(),
        }
        .user_data(ticket.user_data());
        // SAFETY: the entry names buffer `b`, which came off the free list, so no other
        // operation uses it and no Rust reference to it outlives this call until its
        // completion is reaped; the buffers and the file descriptor outlive every operation
        // (`Drop` drains the ring first).
        let pushed = unsafe { self.ring.submission().push(&entry) };
        assert!(
            pushed.is_ok(),
            "the submission queue has queue_depth entries and at most queue_depth buffers are busy"
        );
        self.bufs[b] = BufState::InFlight { op, page, checksum };
        self.page_state[page as usize].busy = true;
        self.in_flight += 1;
        ticket
    }

    /// Hands queued operations to the kernel without waiting.
    pub fn submit(&mut self) -> Result<usize, IoError> {
        self.enter(0)
    }

    fn enter(&mut self, want: usize) -> Result<usize, IoError> {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(IoError::File {
                        op: IoOp::Submit,
                        path: self.file.path.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Submits queued operations, waits until at least `min_complete` of those in flight have
    /// finished (0: do not wait), and appends every finished one to `out`. Returns how many it
    /// appended.
    pub fn reap(
        &mut self,
        min_complete: usize,
        out: &mut Vec<Completion>,
    ) -> Result<usize, IoError> {
        self.enter(min_complete.min(self.in_flight as usize))?;
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        for &(user_data, result) in &cqes {
            out.push(self.complete(user_data, result));
        }
        let n = cqes.len();
        self.cqes = cqes;
        Ok(n)
    }

    fn complete(&mut self, user_data: u64, result: i32) -> Completion {
        let ticket = Ticket::from_user_data(user_data);
        let b = ticket.buffer();
        let BufState::InFlight { op, page, checksum } = self.bufs[b] else {
            panic!("completion for buffer {b}, which has no operation in flight");
        };
        assert_eq!(self.generations[b], ticket.generation, "stale completion");
        self.in_flight -= 1;
        let (path, offset, expected) = (&self.file.path, self.slot_offset(page), self.slot_bytes());
        let result = match usize::try_from(result) {
            Err(_) => Err(IoError::Page {
                op,
                path: path.clone(),
                page,
                offset,
                source: std::io::Error::from_raw_os_error(-result),
            }),
            Ok(done) if done != expected => Err(IoError::ShortTransfer {
                op,
                path: path.clone(),
                page,
                offset,
                done,
                expected,
            }),
            Ok(_) => Ok(()),
        };
        let state = &mut self.page_state[page as usize];
        state.busy = false;
        match (op, result.is_ok()) {
            (IoOp::Read, true) => self.bufs[b] = BufState::ReadDone { page, checksum },
            (IoOp::Write, ok) => {
                // A failed write leaves the slot's contents unknown: the page is lost.
                state.written = ok;
                state.checksum = checksum;
                self.release(b);
            }
            _ => self.release(b),
        }
        Completion {
            ticket,
            page,
            op,
            result,
        }
    }

    /// Verifies a completed read and, if the page is intact, copies it into `out` (exactly one
    /// page). Frees the read's buffer whatever the verdict.
    pub fn take_read(&mut self, ticket: Ticket, out: &mut [u8]) -> Result<PageReadStatus, IoError> {
        let b = ticket.buffer();
        let state = match self.generations.get(b) {
            Some(&generation) if generation == ticket.generation => self.bufs[b],
            _ => BufState::Free,
        };
        let BufState::ReadDone { page, checksum } = state else {
            return Err(IoError::UnknownTicket(ticket));
        };
        self.check_len(page, out.len())?;
        let slot = self.buffers.slot(b);
        let status = match slot::verify(slot, page, checksum) {
            Verdict::Valid => {
                out.copy_from_slice(&slot[HEADER_BYTES..]);
                PageReadStatus::Valid
            }
            Verdict::Corrupt { expected, found } => {
                self.checksum_failures += 1;
                PageReadStatus::Corrupt {
                    page,
                    expected,
                    found,
                }
            }
        };
        self.release(b);
        Ok(status)
    }
}

impl Drop for PageFile {
    fn drop(&mut self) {
        // The kernel may still write into buffers of operations in flight: wait for them all
        // before the buffers are freed.
        while self.in_flight > 0 {
            if self.enter(self.in_flight as usize).is_err() {
                // Cannot prove the kernel is done with the buffers: leak them rather than free
                // memory it may still write into.
                return;
            }
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
            for &(user_data, result) in &cqes {
                self.complete(user_data, result);
            }
            self.cqes = cqes;
        }
        // SAFETY: no operation is in flight, so the kernel holds no pending access to the
        // buffers, and they are dropped exactly once, here.
        unsafe { ManuallyDrop::drop(&mut self.buffers) }
    }
}
