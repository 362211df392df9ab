//! Creating the backing file: a unique name in the chosen directory, `O_DIRECT` when the
//! filesystem allows it, blocks reserved up front, and removal on drop.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{IoError, IoOp};
use super::slot::{HEADER_BYTES, PAGE_ALIGN};

/// Whether page I/O bypasses the kernel's page cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMode {
    /// The file is open with `O_DIRECT`: every page read and write goes to the device.
    Direct,
    /// The filesystem refused `O_DIRECT` (tmpfs before Linux 6.6, some FUSE and network
    /// filesystems); I/O goes through the page cache, so read figures measure memory.
    Buffered {
        /// Why `O_DIRECT` was not used.
        reason: String,
    },
}

impl CacheMode {
    /// Whether the file is open with `O_DIRECT`.
    pub fn is_direct(&self) -> bool {
        matches!(self, CacheMode::Direct)
    }
}

/// The page file on disk; the file is removed when this is dropped.
pub(crate) struct SlotFile {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) mode: CacheMode,
}

impl Drop for SlotFile {
    fn drop(&mut self) {
        // Best effort: the file is scratch space, and a failed removal must not panic in drop.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn unique_path(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        ".fastlibra-pages-{}-{nanos:x}-{n}",
        std::process::id()
    ))
}

impl SlotFile {
    /// Creates and sizes the file, then opens it with `O_DIRECT` if the filesystem allows.
    /// `scratch` is an aligned buffer of at least [`HEADER_BYTES`] for the `O_DIRECT` probe.
    pub(crate) fn create(dir: &Path, file_bytes: u64, scratch: &mut [u8]) -> Result<Self, IoError> {
        let path = unique_path(dir);
        let err = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| IoError::File { op, path, source }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(err(IoOp::Create, &path))?;
        // From here on the guard removes the file if a later step fails.
        let mut this = SlotFile {
            file,
            path,
            mode: CacheMode::Direct,
        };
        this.reserve(file_bytes)?;
        match this.open_direct(scratch)? {
            Ok(direct) => this.file = direct,
            Err(reason) => {
                eprintln!(
                    "fastlibra: page file {}: O_DIRECT unavailable ({reason}); \
                     using buffered I/O through the page cache",
                    this.path.display()
                );
                this.mode = CacheMode::Buffered { reason };
            }
        }
        Ok(this)
    }

    /// Reserves the blocks so that page writes never fail for want of space.
    fn reserve(&self, file_bytes: u64) -> Result<(), IoError> {
        let len = libc::off_t::try_from(file_bytes).map_err(|_| {
            self.error(
                IoOp::Allocate,
                std::io::Error::from_raw_os_error(libc::EFBIG),
            )
        })?;
        // SAFETY: plain system call on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let source = std::io::Error::last_os_error();
        let unsupported = matches!(
            source.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)
        );
        if !unsupported {
            return Err(self.error(IoOp::Allocate, source));
        }
        // The filesystem cannot preallocate: a sparse file of the right length still reads
        // as zeros and takes every offset.
        self.file
            .set_len(file_bytes)
            .map_err(|source| self.error(IoOp::Allocate, source))
    }

    /// Opens a second handle with `O_DIRECT` and proves it with one aligned write of zeros to
    /// slot 0's header (which leaves the slot reading as never written). `Ok(Err(reason))`
    /// when the filesystem refuses `O_DIRECT` (`EINVAL`); other failures are errors.
    fn open_direct(&self, scratch: &mut [u8]) -> Result<Result<File, String>, IoError> {
        let refused = |e: &std::io::Error| e.raw_os_error() == Some(libc::EINVAL);
        let direct = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(e) if refused(&e) => return Ok(Err(format!("open with O_DIRECT: {e}"))),
            Err(source) => return Err(self.error(IoOp::Create, source)),
        };
        let probe = &mut scratch[..HEADER_BYTES];
        assert!((probe.as_ptr() as usize).is_multiple_of(PAGE_ALIGN));
        probe.fill(0);
        match direct.write_all_at(probe, 0) {
            Ok(()) => Ok(Ok(direct)),
            Err(e) if refused(&e) => Ok(Err(format!("aligned O_DIRECT write: {e}"))),
            Err(source) => Err(self.error(IoOp::Probe, source)),
        }
    }

    fn error(&self, op: IoOp, source: std::io::Error) -> IoError {
        IoError::File {
            op,
            path: self.path.clone(),
            source,
        }
    }
}
