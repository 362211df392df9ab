//! The NVMe tier's page file against a real file: round trips at several queue depths, damage
//! on disk, pages never written, bad arguments. Skips (with a message) where the kernel refuses
//! io_uring.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use fastlibra_runtime::io::slot::HEADER_BYTES;
use fastlibra_runtime::io::{IoError, PageFile, PageReadStatus};

const PAGE: usize = 8192;

/// A scratch directory under the system temp dir, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("fastlibra-page-file-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a page file, or `None` (after saying so) where io_uring is unavailable.
fn page_file(dir: &ScratchDir, page_bytes: usize, pages: u32, depth: u32) -> Option<PageFile> {
    match PageFile::create(&dir.0, page_bytes, pages, depth) {
        Ok(file) => Some(file),
        Err(IoError::Unsupported { reason }) => {
            eprintln!("SKIPPED: io_uring is unavailable here ({reason})");
            None
        }
        Err(e) => panic!("create page file: {e}"),
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn pages_of(count: u32, seed: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|p| {
            let mut page = vec![0u8; PAGE];
            fill(&mut page, seed * 1_000_003 + u64::from(p));
            page
        })
        .collect()
}

#[test]
fn round_trip_at_several_queue_depths() {
    let dir = ScratchDir::new("round-trip");
    for depth in [1, 2, 8, 32] {
        let pages = 64;
        let Some(mut file) = page_file(&dir, PAGE, pages, depth) else {
            return;
        };
        let data = pages_of(pages, u64::from(depth));
        // Write in a shuffled order, read in another, so slots are not just sequential.
        let order: Vec<u32> = (0..pages).map(|i| (i * 37) % pages).collect();
        let writes: Vec<(u32, &[u8])> = order
            .iter()
            .map(|&p| (p, data[p as usize].as_slice()))
            .collect();
        file.write_pages(&writes).expect("write pages");
        let ids: Vec<u32> = (0..pages).rev().collect();
        let mut out = vec![vec![0u8; PAGE]; pages as usize];
        let mut views: Vec<&mut [u8]> = out.iter_mut().map(Vec::as_mut_slice).collect();
        let status = file.read_pages(&ids, &mut views).expect("read pages");
        assert!(
            status.iter().all(|s| *s == PageReadStatus::Valid),
            "{status:?}"
        );
        for (&p, got) in ids.iter().zip(&out) {
            assert!(*got == data[p as usize], "page {p} at depth {depth}");
        }
        assert_eq!(file.checksum_failures(), 0);
        assert_eq!(file.in_flight(), 0);
    }
}

#[test]
fn rewrite_and_duplicates_keep_the_last_data() {
    let dir = ScratchDir::new("rewrite");
    let Some(mut file) = page_file(&dir, PAGE, 4, 4) else {
        return;
    };
    let data = pages_of(3, 9);
    file.write_pages(&[(1, &data[0]), (1, &data[1]), (2, &data[2])])
        .expect("write");
    file.write_pages(&[(2, &data[0])]).expect("rewrite");
    let mut a = vec![0u8; PAGE];
    let mut b = vec![0u8; PAGE];
    let status = file
        .read_pages(&[1, 2], &mut [&mut a, &mut b])
        .expect("read");
    assert_eq!(status, vec![PageReadStatus::Valid; 2]);
    assert!(a == data[1] && b == data[0]);
}

#[test]
fn a_damaged_byte_on_disk_is_reported_corrupt() {
    let dir = ScratchDir::new("corrupt");
    let Some(mut file) = page_file(&dir, PAGE, 8, 4) else {
        return;
    };
    let data = pages_of(8, 3);
    let writes: Vec<(u32, &[u8])> = (0..8).map(|p| (p, data[p as usize].as_slice())).collect();
    file.write_pages(&writes).expect("write");
    // Flip one data byte of page 5 and one header byte of page 6, behind the ring's back.
    let raw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(file.path())
        .expect("open page file");
    for (page, at) in [(5u32, HEADER_BYTES + 1234), (6, 9)] {
        let offset = file.slot_offset(page) + at as u64;
        let mut byte = [0u8; 1];
        raw.read_exact_at(&mut byte, offset).expect("read byte");
        byte[0] ^= 0x40;
        raw.write_all_at(&byte, offset).expect("write byte");
    }
    raw.sync_all().expect("sync");
    let ids: Vec<u32> = (0..8).collect();
    let mut out = vec![vec![0u8; PAGE]; 8];
    let mut views: Vec<&mut [u8]> = out.iter_mut().map(Vec::as_mut_slice).collect();
    let status = file.read_pages(&ids, &mut views).expect("read");
    for (p, s) in status.iter().enumerate() {
        if p == 5 || p == 6 {
            let PageReadStatus::Corrupt {
                page,
                expected,
                found,
            } = *s
            else {
                panic!("page {p}: {s:?}");
            };
            assert_eq!(page, p as u32);
            assert_ne!(expected, found);
            assert!(
                out[p].iter().all(|&b| b == 0),
                "corrupt data never copied out"
            );
        } else {
            assert_eq!(*s, PageReadStatus::Valid, "page {p}");
            assert!(out[p] == data[p]);
        }
    }
    assert_eq!(file.checksum_failures(), 2);
}

#[test]
fn a_page_never_written_is_reported() {
    let dir = ScratchDir::new("never");
    let Some(mut file) = page_file(&dir, PAGE, 4, 2) else {
        return;
    };
    file.write_pages(&[(1, &vec![7u8; PAGE])]).expect("write");
    let mut a = vec![0xeeu8; PAGE];
    let mut b = vec![0u8; PAGE];
    let status = file
        .read_pages(&[0, 1], &mut [&mut a, &mut b])
        .expect("read");
    assert_eq!(
        status,
        vec![
            PageReadStatus::NeverWritten { page: 0 },
            PageReadStatus::Valid
        ]
    );
    assert!(a.iter().all(|&x| x == 0xee), "untouched");
    assert!(b.iter().all(|&x| x == 7));
    assert!(matches!(
        file.submit_read(3),
        Err(IoError::NotWritten { page: 3 })
    ));
}

#[test]
fn bad_arguments_are_typed_errors() {
    let dir = ScratchDir::new("args");
    for page_bytes in [0, 4095, 6000] {
        assert!(matches!(
            PageFile::create(&dir.0, page_bytes, 4, 2),
            Err(IoError::BadPageSize { .. })
        ));
    }
    assert!(matches!(
        PageFile::create(&dir.0, PAGE, 0, 2),
        Err(IoError::NoPages)
    ));
    assert!(matches!(
        PageFile::create(&dir.0, PAGE, 4, 0),
        Err(IoError::BadQueueDepth { .. })
    ));
    assert!(matches!(
        PageFile::create(dir.0.join("missing"), PAGE, 4, 2),
        Err(IoError::File { .. }) | Err(IoError::Unsupported { .. })
    ));
    let Some(mut file) = page_file(&dir, PAGE, 4, 2) else {
        return;
    };
    let page = vec![1u8; PAGE];
    assert!(matches!(
        file.write_pages(&[(4, &page)]),
        Err(IoError::PageOutOfRange { page: 4, pages: 4 })
    ));
    assert!(matches!(
        file.write_pages(&[(0, &page), (1, &page[..100])]),
        Err(IoError::BadBufferLength {
            page: 1,
            len: 100,
            ..
        })
    ));
    assert!(!file.is_written(0), "a rejected batch writes nothing");
    let mut short = vec![0u8; 10];
    assert!(matches!(
        file.read_pages(&[0], &mut [&mut short]),
        Err(IoError::BadBufferLength { .. })
    ));
    assert!(matches!(
        file.read_pages(&[0, 1], &mut []),
        Err(IoError::BatchMismatch { .. })
    ));
}

#[test]
fn submit_and_reap_bound_the_queue() {
    let dir = ScratchDir::new("submit");
    let Some(mut file) = page_file(&dir, PAGE, 8, 2) else {
        return;
    };
    let data = pages_of(3, 5);
    let t0 = file.submit_write(0, &data[0]).expect("submit 0");
    assert!(matches!(
        file.submit_write(0, &data[1]),
        Err(IoError::PageBusy { page: 0 })
    ));
    file.submit_write(1, &data[1]).expect("submit 1");
    assert!(matches!(
        file.submit_write(2, &data[2]),
        Err(IoError::QueueFull { queue_depth: 2 })
    ));
    assert!(matches!(
        file.write_pages(&[]),
        Err(IoError::NotIdle { busy: 2 })
    ));
    let mut done = Vec::new();
    while file.in_flight() > 0 {
        file.reap(1, &mut done).expect("reap");
    }
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|c| c.result.is_ok()));
    assert!(done.iter().any(|c| c.ticket == t0 && c.page == 0));
    let ticket = file.submit_read(1).expect("submit read");
    done.clear();
    file.reap(1, &mut done).expect("reap read");
    let mut out = vec![0u8; PAGE];
    assert_eq!(
        file.take_read(ticket, &mut out).expect("take"),
        PageReadStatus::Valid
    );
    assert!(out == data[1]);
    assert!(matches!(
        file.take_read(ticket, &mut out),
        Err(IoError::UnknownTicket(_))
    ));
}

#[test]
fn the_file_is_removed_on_drop() {
    let dir = ScratchDir::new("drop");
    let Some(mut file) = page_file(&dir, PAGE, 4, 2) else {
        return;
    };
    let path = file.path().to_path_buf();
    assert!(path.exists());
    // Dropping with operations in flight waits for them.
    file.submit_write(0, &vec![1u8; PAGE]).expect("submit");
    file.submit().expect("submit");
    drop(file);
    assert!(!path.exists());
}
