//! The NVMe tier as the runtime drives it: the [`NvmeIo`] interface, implemented by the real
//! [`PageFile`] and by [`FaultyNvme`], which wraps a page file and injects faults (EIO on a
//! write or a read, ENOSPC, a short read, a bit flipped in a page on disk) so tests can show
//! that the runtime never serves a bad page and loses nothing.

use std::os::unix::fs::FileExt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

use crate::io::{Completion, IoError, IoOp, PageFile, PageReadStatus, Ticket, slot};

/// What the runtime needs from the NVMe tier: the page file's submit / reap / take cycle.
pub trait NvmeIo {
    /// Queues a write of one page (see [`PageFile::submit_write`]).
    fn submit_write(&mut self, page: u32, data: &[u8]) -> Result<Ticket, IoError>;
    /// Queues a read of one page (see [`PageFile::submit_read`]).
    fn submit_read(&mut self, page: u32) -> Result<Ticket, IoError>;
    /// Submits, waits for at least `min_complete`, appends what finished (see
    /// [`PageFile::reap`]).
    fn reap(&mut self, min_complete: usize, out: &mut Vec<Completion>) -> Result<usize, IoError>;
    /// Verifies and copies out a finished read (see [`PageFile::take_read`]).
    fn take_read(&mut self, ticket: Ticket, out: &mut [u8]) -> Result<PageReadStatus, IoError>;
    /// Buffers free for new operations.
    fn free_buffers(&self) -> u32;
    /// Operations in flight.
    fn in_flight(&self) -> u32;
}

impl NvmeIo for PageFile {
    fn submit_write(&mut self, page: u32, data: &[u8]) -> Result<Ticket, IoError> {
        PageFile::submit_write(self, page, data)
    }
    fn submit_read(&mut self, page: u32) -> Result<Ticket, IoError> {
        PageFile::submit_read(self, page)
    }
    fn reap(&mut self, min_complete: usize, out: &mut Vec<Completion>) -> Result<usize, IoError> {
        PageFile::reap(self, min_complete, out)
    }
    fn take_read(&mut self, ticket: Ticket, out: &mut [u8]) -> Result<PageReadStatus, IoError> {
        PageFile::take_read(self, ticket, out)
    }
    fn free_buffers(&self) -> u32 {
        PageFile::free_buffers(self)
    }
    fn in_flight(&self) -> u32 {
        PageFile::in_flight(self)
    }
}

/// Probabilities of each injected fault, per page operation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NvmeFaults {
    /// A write completes with EIO.
    pub write_eio: f64,
    /// A write completes with ENOSPC (a full disk).
    pub write_enospc: f64,
    /// A read completes with EIO.
    pub read_eio: f64,
    /// A read returns fewer bytes than the slot.
    pub short_read: f64,
    /// A bit of the page is flipped on disk just before it is read (the checksum must catch
    /// it).
    pub flip_bit: f64,
    /// Seed of the fault draws.
    pub seed: u64,
}

impl NvmeFaults {
    /// Every fault kind at probability `p`.
    pub fn all(p: f64, seed: u64) -> NvmeFaults {
        NvmeFaults {
            write_eio: p,
            write_enospc: p,
            read_eio: p,
            short_read: p,
            flip_bit: p,
            seed,
        }
    }
}

/// How many faults of each kind were injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InjectedFaults {
    /// Writes failed with EIO.
    pub write_eio: u64,
    /// Writes failed with ENOSPC.
    pub write_enospc: u64,
    /// Reads failed with EIO.
    pub read_eio: u64,
    /// Reads cut short.
    pub short_read: u64,
    /// Bits flipped on disk.
    pub flipped_bits: u64,
}

impl InjectedFaults {
    /// Adds another shard's counts.
    pub fn add(&mut self, x: &InjectedFaults) {
        self.write_eio += x.write_eio;
        self.write_enospc += x.write_enospc;
        self.read_eio += x.read_eio;
        self.short_read += x.short_read;
        self.flipped_bits += x.flipped_bits;
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Errno(i32),
    Short,
}

/// A [`PageFile`] with faults injected at random (see [`NvmeFaults`]). Until [`arm`] is called
/// it injects nothing, so start-up (writing adapters) is not disturbed.
///
/// [`arm`]: FaultyNvme::arm
pub struct FaultyNvme {
    inner: PageFile,
    faults: NvmeFaults,
    rng: ChaCha8Rng,
    armed: bool,
    pending: FxHashMap<Ticket, Fault>,
    scratch: Vec<u8>,
    /// What was injected so far.
    pub injected: InjectedFaults,
}

impl FaultyNvme {
    /// Wraps `inner`.
    pub fn new(inner: PageFile, faults: NvmeFaults) -> FaultyNvme {
        let scratch = vec![0; inner.page_bytes()];
        FaultyNvme {
            inner,
            rng: ChaCha8Rng::seed_from_u64(faults.seed),
            faults,
            armed: false,
            pending: FxHashMap::default(),
            scratch,
            injected: InjectedFaults::default(),
        }
    }

    /// Starts injecting faults.
    pub fn arm(&mut self) {
        self.armed = true;
    }

    fn roll(&mut self, p: f64) -> bool {
        self.armed && p > 0.0 && self.rng.random::<f64>() < p
    }

    /// Flips one bit of `page`'s data on disk, behind the page file's back.
    fn flip(&mut self, page: u32) -> Result<(), IoError> {
        let io = |source| IoError::File {
            op: IoOp::Write,
            path: self.inner.path().to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.inner.path())
            .map_err(io)?;
        let at = self.inner.slot_offset(page)
            + slot::HEADER_BYTES as u64
            + self.rng.random_range(0..self.inner.page_bytes() as u64);
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).map_err(io)?;
        byte[0] ^= 1 << self.rng.random_range(0..8);
        file.write_all_at(&byte, at).map_err(io)?;
        self.injected.flipped_bits += 1;
        Ok(())
    }
}

impl NvmeIo for FaultyNvme {
    fn submit_write(&mut self, page: u32, data: &[u8]) -> Result<Ticket, IoError> {
        let ticket = self.inner.submit_write(page, data)?;
        let (eio, enospc) = (self.faults.write_eio, self.faults.write_enospc);
        if self.roll(eio) {
            self.injected.write_eio += 1;
            self.pending.insert(ticket, Fault::Errno(libc::EIO));
        } else if self.roll(enospc) {
            self.injected.write_enospc += 1;
            self.pending.insert(ticket, Fault::Errno(libc::ENOSPC));
        }
        Ok(ticket)
    }

    fn submit_read(&mut self, page: u32) -> Result<Ticket, IoError> {
        if self.roll(self.faults.flip_bit) {
            self.flip(page)?;
        }
        let ticket = self.inner.submit_read(page)?;
        let (eio, short) = (self.faults.read_eio, self.faults.short_read);
        if self.roll(eio) {
            self.injected.read_eio += 1;
            self.pending.insert(ticket, Fault::Errno(libc::EIO));
        } else if self.roll(short) {
            self.injected.short_read += 1;
            self.pending.insert(ticket, Fault::Short);
        }
        Ok(ticket)
    }

    fn reap(&mut self, min_complete: usize, out: &mut Vec<Completion>) -> Result<usize, IoError> {
        let first = out.len();
        let n = self.inner.reap(min_complete, out)?;
        for c in &mut out[first..] {
            let Some(fault) = self.pending.remove(&c.ticket) else {
                continue;
            };
            if c.result.is_err() {
                continue; // a real error already
            }
            let (path, offset) = (
                self.inner.path().to_path_buf(),
                self.inner.slot_offset(c.page),
            );
            c.result = Err(match fault {
                Fault::Errno(errno) => IoError::Page {
                    op: c.op,
                    path,
                    page: c.page,
                    offset,
                    source: std::io::Error::from_raw_os_error(errno),
                },
                Fault::Short => IoError::ShortTransfer {
                    op: c.op,
                    path,
                    page: c.page,
                    offset,
                    done: self.inner.slot_bytes() / 2,
                    expected: self.inner.slot_bytes(),
                },
            });
            if c.op == IoOp::Read {
                // The page file holds the read's buffer until it is taken: free it; the
                // caller sees only the failure.
                let mut scratch = std::mem::take(&mut self.scratch);
                let _ = self.inner.take_read(c.ticket, &mut scratch);
                self.scratch = scratch;
            }
        }
        Ok(n)
    }

    fn take_read(&mut self, ticket: Ticket, out: &mut [u8]) -> Result<PageReadStatus, IoError> {
        self.inner.take_read(ticket, out)
    }

    fn free_buffers(&self) -> u32 {
        self.inner.free_buffers()
    }

    fn in_flight(&self) -> u32 {
        self.inner.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn faulty(faults: NvmeFaults) -> (FaultyNvme, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "fastlibra-nvme-test-{}-{}",
            std::process::id(),
            faults.seed
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = PageFile::create(&dir, PAGE, 4, 4).expect("page file");
        let mut f = FaultyNvme::new(file, faults);
        // Written before arming: intact.
        let t = f.submit_write(0, &[7u8; PAGE]).expect("write");
        let mut out = Vec::new();
        f.reap(1, &mut out).expect("reap");
        assert!(out.iter().all(|c| c.ticket == t && c.result.is_ok()));
        f.arm();
        (f, dir)
    }

    fn read(f: &mut FaultyNvme, page: u32) -> Result<PageReadStatus, String> {
        let t = f.submit_read(page).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        f.reap(1, &mut out).map_err(|e| e.to_string())?;
        let c = out.pop().expect("one completion");
        c.result.map_err(|e| e.to_string())?;
        let mut page_out = vec![0u8; PAGE];
        f.take_read(t, &mut page_out).map_err(|e| e.to_string())
    }

    #[test]
    fn each_fault_kind_is_injected_and_reported() {
        let (mut f, dir) = faulty(NvmeFaults {
            flip_bit: 1.0,
            seed: 1,
            ..NvmeFaults::default()
        });
        assert!(matches!(
            read(&mut f, 0),
            Ok(PageReadStatus::Corrupt { .. })
        ));
        assert_eq!(f.injected.flipped_bits, 1);
        drop(f);
        std::fs::remove_dir_all(dir).expect("clean up");

        let (mut f, dir) = faulty(NvmeFaults {
            read_eio: 1.0,
            seed: 2,
            ..NvmeFaults::default()
        });
        let err = read(&mut f, 0).expect_err("EIO");
        assert!(err.contains("Input/output error"), "{err}");
        assert_eq!(f.free_buffers(), 4, "the failed read's buffer was freed");
        drop(f);
        std::fs::remove_dir_all(dir).expect("clean up");

        let (mut f, dir) = faulty(NvmeFaults {
            short_read: 1.0,
            seed: 3,
            ..NvmeFaults::default()
        });
        assert!(read(&mut f, 0).is_err());
        assert_eq!(f.injected.short_read, 1);
        drop(f);
        std::fs::remove_dir_all(dir).expect("clean up");

        let (mut f, dir) = faulty(NvmeFaults {
            write_enospc: 1.0,
            seed: 4,
            ..NvmeFaults::default()
        });
        f.submit_write(1, &[1u8; PAGE]).expect("queued");
        let mut out = Vec::new();
        f.reap(1, &mut out).expect("reap");
        let err = out
            .pop()
            .expect("one")
            .result
            .expect_err("ENOSPC")
            .to_string();
        assert!(err.contains("No space left"), "{err}");
        drop(f);
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
