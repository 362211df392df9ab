//! The page file's I/O buffers: one page-aligned allocation, cut into `count` equal buffers,
//! made once at creation and freed on drop.
//!
//! While the kernel owns a buffer (an operation on it is in flight) no Rust reference to it may
//! exist; [`PageFile`](super::PageFile) tracks that per buffer and only calls [`slot`] and
//! [`slot_mut`] on buffers it owns.
//!
//! [`slot`]: AlignedBuffers::slot
//! [`slot_mut`]: AlignedBuffers::slot_mut

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::ptr::NonNull;

use super::slot::PAGE_ALIGN;

/// `count` buffers of `buf_bytes`, each aligned to [`PAGE_ALIGN`].
pub(crate) struct AlignedBuffers {
    base: NonNull<u8>,
    layout: Layout,
    buf_bytes: usize,
    count: usize,
}

// SAFETY: the allocation is owned exclusively by this value (no aliasing handles exist outside
// it), so moving it to another thread moves sole ownership.
unsafe impl Send for AlignedBuffers {}

impl AlignedBuffers {
    /// Allocates zeroed buffers. `buf_bytes` must be a positive multiple of [`PAGE_ALIGN`] and
    /// `count × buf_bytes` must not overflow (the caller checked both).
    pub(crate) fn new(count: usize, buf_bytes: usize) -> Self {
        assert!(count > 0 && buf_bytes > 0 && buf_bytes.is_multiple_of(PAGE_ALIGN));
        let size = count
            .checked_mul(buf_bytes)
            .expect("buffer size checked by the caller");
        let layout = Layout::from_size_align(size, PAGE_ALIGN).expect("valid layout");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let Some(base) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        AlignedBuffers {
            base,
            layout,
            buf_bytes,
            count,
        }
    }

    /// Raw pointer to buffer `i`, for the kernel.
    pub(crate) fn ptr(&self, i: usize) -> *mut u8 {
        assert!(i < self.count);
        // SAFETY: `i < count`, so the offset stays inside the allocation.
        unsafe { self.base.as_ptr().add(i * self.buf_bytes) }
    }

    /// The iovecs to register with the ring, one per buffer.
    pub(crate) fn iovecs(&self) -> Vec<libc::iovec> {
        (0..self.count)
            .map(|i| libc::iovec {
                iov_base: self.ptr(i).cast(),
                iov_len: self.buf_bytes,
            })
            .collect()
    }

    /// Buffer `i`; the caller guarantees the kernel does not own it.
    pub(crate) fn slot(&self, i: usize) -> &[u8] {
        // SAFETY: `ptr(i)` points at `buf_bytes` initialised (zeroed at allocation) bytes
        // inside our allocation; the caller guarantees no operation on buffer `i` is in flight,
        // and `&self` rules out a concurrent `slot_mut`.
        unsafe { std::slice::from_raw_parts(self.ptr(i), self.buf_bytes) }
    }

    /// Buffer `i`, mutably; the caller guarantees the kernel does not own it.
    pub(crate) fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        // SAFETY: as in `slot`, and `&mut self` makes this the only reference into the
        // allocation.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(i), self.buf_bytes) }
    }
}

impl Drop for AlignedBuffers {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc_zeroed(self.layout)` and is freed exactly once.
        // `PageFile` drops the ring (after draining it) before its buffers.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}
