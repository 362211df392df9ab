//! `fastlibra bench-io`: the NVMe tier's throughput through the runtime's own page file.
//!
//! Writes `--bytes` of pages into a fresh [`PageFile`] in `--dir`, then reads them all back, with
//! at most `--queue-depth` operations in flight, exactly as the runtime spills and reloads
//! pages: each page is copied into a registered buffer and checksummed before its write, and
//! verified after its read. Reports GB/s (10^9 bytes of page data per second) per direction,
//! whether the file is open with `O_DIRECT`, and the checksum failures, which must be zero.
//! Compare with `fio --ioengine=io_uring --direct=1` at the same block size and queue depth
//! (see `docs/nvme-tier.md`).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use fastlibra_bench::units::parse_size;
use fastlibra_runtime::io::{BufferMode, CacheMode, PageFile, PageReadStatus};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Distinct random pages the benchmark cycles through (bounds its memory to 16 pages).
const SOURCE_PAGES: u32 = 16;

/// Arguments of `fastlibra bench-io`.
#[derive(Args, Debug)]
pub struct BenchIoArgs {
    /// Directory for the page file (default: the system temp dir); the file is removed after.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Bytes per page, a positive multiple of 4096 (suffixes K, M, G = KiB, MiB, GiB).
    /// Default 2M: one Llama-3-8B KV block.
    #[arg(long, default_value = "2M", value_parser = parse_size)]
    page_bytes: u64,
    /// The most reads or writes in flight at once.
    #[arg(long, default_value_t = 32)]
    queue_depth: u32,
    /// Bytes to write and then read, rounded up to whole pages (suffixes K, M, G).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    bytes: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What one run measured.
struct Measured {
    write_s: f64,
    read_s: f64,
    corrupt: u64,
    mismatched: u64,
}

/// Runs the benchmark.
pub fn run(args: BenchIoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    if !dir.is_dir() {
        return Err(format!("--dir {}: not an existing directory", dir.display()).into());
    }
    if args.page_bytes == 0 || !args.page_bytes.is_multiple_of(4096) {
        let b = args.page_bytes;
        return Err(format!("--page-bytes {b}: must be a positive multiple of 4096").into());
    }
    if args.bytes == 0 {
        return Err("--bytes: must be positive".into());
    }
    if args.queue_depth == 0 {
        return Err("--queue-depth: must be positive".into());
    }
    let page_bytes = usize::try_from(args.page_bytes).map_err(|_| "--page-bytes: too large")?;
    let pages = u32::try_from(args.bytes.div_ceil(args.page_bytes))
        .map_err(|_| "--bytes: more than 2^32 pages")?;
    let mut file = PageFile::create(&dir, page_bytes, pages, args.queue_depth)
        .map_err(|e| format!("page file in {}: {e}", dir.display()))?;
    let total_bytes = u64::from(pages) * args.page_bytes;
    if !args.json {
        println!(
            "page file {}: {pages} pages × {page_bytes} B = {:.2} GiB, queue depth {}, {}, {}",
            file.path().display(),
            total_bytes as f64 / f64::from(1u32 << 30),
            args.queue_depth,
            describe_cache(file.cache_mode()),
            describe_buffers(file.buffer_mode()),
        );
    }
    let m = measure(&mut file, args.json)?;
    let gb_s = |s: f64| total_bytes as f64 / s / 1e9;
    if args.json {
        let report = serde_json::json!({
            "dir": dir.display().to_string(),
            "page_bytes": page_bytes,
            "slot_bytes": file.slot_bytes(),
            "pages": pages,
            "bytes": total_bytes,
            "queue_depth": args.queue_depth,
            "o_direct": file.cache_mode().is_direct(),
            "registered_buffers": *file.buffer_mode() == BufferMode::Registered,
            "write_seconds": m.write_s,
            "write_gb_per_s": gb_s(m.write_s),
            "read_seconds": m.read_s,
            "read_gb_per_s": gb_s(m.read_s),
            "checksum_failures": m.corrupt,
            "content_mismatches": m.mismatched,
        });
        println!("{report}");
    } else {
        println!("write: {:.3} s, {:.2} GB/s", m.write_s, gb_s(m.write_s));
        println!("read:  {:.3} s, {:.2} GB/s", m.read_s, gb_s(m.read_s));
        println!(
            "checksum failures: {}, content mismatches: {}",
            m.corrupt, m.mismatched
        );
    }
    if m.corrupt > 0 || m.mismatched > 0 {
        return Err(format!(
            "{} pages failed their checksum and {} came back with other data",
            m.corrupt, m.mismatched
        )
        .into());
    }
    Ok(())
}

fn describe_cache(mode: &CacheMode) -> String {
    match mode {
        CacheMode::Direct => "O_DIRECT".to_owned(),
        CacheMode::Buffered { reason } => format!("buffered, not O_DIRECT ({reason})"),
    }
}

fn describe_buffers(mode: &BufferMode) -> String {
    match mode {
        BufferMode::Registered => "registered buffers".to_owned(),
        BufferMode::Unregistered { reason } => format!("unregistered buffers ({reason})"),
    }
}

/// Writes every page with the batch API, then reads them all back through submit / reap /
/// take, checking each against its source.
fn measure(file: &mut PageFile, quiet: bool) -> Result<Measured, Box<dyn std::error::Error>> {
    let pages = file.pages();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let sources: Vec<Vec<u8>> = (0..SOURCE_PAGES.min(pages))
        .map(|_| {
            let mut page = vec![0u8; file.page_bytes()];
            rng.fill_bytes(&mut page);
            page
        })
        .collect();
    let source = |page: u32| sources[(page % SOURCE_PAGES) as usize].as_slice();
    let writes: Vec<(u32, &[u8])> = (0..pages).map(|p| (p, source(p))).collect();
    if !quiet {
        println!("writing {pages} pages…");
    }
    let start = Instant::now();
    file.write_pages(&writes)?;
    let write_s = start.elapsed().as_secs_f64();
    if !quiet {
        println!("reading {pages} pages…");
    }
    let mut out = vec![0u8; file.page_bytes()];
    let mut done = Vec::with_capacity(file.queue_depth() as usize);
    let (mut next, mut corrupt, mut mismatched) = (0u32, 0u64, 0u64);
    let start = Instant::now();
    while next < pages || file.in_flight() > 0 {
        while next < pages && file.free_buffers() > 0 {
            file.submit_read(next)?;
            next += 1;
        }
        done.clear();
        file.reap(1, &mut done)?;
        for completion in done.drain(..) {
            completion.result?;
            match file.take_read(completion.ticket, &mut out)? {
                PageReadStatus::Valid if out == source(completion.page) => {}
                PageReadStatus::Valid => mismatched += 1,
                _ => corrupt += 1,
            }
        }
    }
    let read_s = start.elapsed().as_secs_f64();
    Ok(Measured {
        write_s,
        read_s,
        corrupt,
        mismatched,
    })
}
