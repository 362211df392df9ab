//! Refusing runs too large for this machine's memory, before they start.
//!
//! A run holds every grid point's workload at once (they are generated first, so that a bad
//! point fails before anything runs), and each simulation holds its requests' outcomes and
//! the engine's copies of their prompts. The estimate scales a sample of the workload: the
//! same generator over a window short enough for about [`SAMPLE_ARRIVALS`] arrivals, its
//! bytes and requests multiplied by `duration / window`.

use fastlibra_runtime::workload::Workload;

use super::BenchError;
use super::plan::WorkloadSpec;

/// Arrivals in the sample window.
const SAMPLE_ARRIVALS: f64 = 2_000.0;
/// Bytes a simulation holds per request beyond its tokens (its outcome, the engine's and the
/// driver's records of it, the report's samples). Measured: `chatbot --rate 100 --duration
/// 300 --policies slora`, about 90,000 requests, peaks at 162 MB, 1.8 KiB per request in all.
const BYTES_PER_REQUEST: f64 = 2048.0;
/// The engine's copies of prompts and histories, in multiples of the workload's own tokens.
const TOKEN_COPIES: f64 = 2.0;

/// A workload's size: requests (turns) and bytes.
fn size(w: &Workload) -> (f64, f64) {
    let mut requests = 0usize;
    let mut bytes = std::mem::size_of_val(w.sessions.as_slice());
    for s in &w.sessions {
        requests += s.turns.len();
        bytes += std::mem::size_of_val(s.turns.as_slice());
        bytes += s.turns.iter().map(|t| t.tokens.len() * 4).sum::<usize>();
    }
    (requests as f64, bytes as f64)
}

/// Estimated peak bytes of a run over `points` (rate, adapters) held together, each
/// simulated after the others, with `duration_s` of arrivals.
pub fn estimate_bytes(
    spec: &WorkloadSpec,
    points: &[(f64, u32)],
    duration_s: f64,
) -> Result<f64, BenchError> {
    let mut held = 0.0;
    let mut largest_run: f64 = 0.0;
    for &(rate, loras) in points {
        let mut window = (SAMPLE_ARRIVALS / rate).min(duration_s);
        // A bursty or call-graph workload may bring nothing in a short window: widen it.
        let mut sample = None;
        for _ in 0..8 {
            sample = spec.generate_window(rate, loras, Some(window))?;
            if sample.is_some() || window >= duration_s {
                break;
            }
            window = (window * 4.0).min(duration_s);
        }
        let Some(sample) = sample else { continue };
        let scale = duration_s / window;
        let (requests, bytes) = size(&sample);
        let (requests, bytes) = (requests * scale, bytes * scale);
        held += bytes;
        largest_run = largest_run.max(bytes * TOKEN_COPIES + requests * BYTES_PER_REQUEST);
    }
    Ok(held + largest_run)
}

/// Memory this process may still use, bytes (`MemAvailable` in `/proc/meminfo`); `None`
/// where the kernel does not say.
pub fn available_bytes() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses the run when its estimate exceeds the memory available.
pub fn check(
    spec: &WorkloadSpec,
    points: &[(f64, u32)],
    duration_s: f64,
) -> Result<(), BenchError> {
    let Some(available) = available_bytes() else {
        return Ok(());
    };
    let needed = estimate_bytes(spec, points, duration_s)?;
    if needed <= available {
        return Ok(());
    }
    Err(BenchError::TooLarge {
        needed_gib: needed / f64::from(1u32 << 30),
        available_gib: available / f64::from(1u32 << 30),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastlibra_bench::workload::WorkloadParams;

    fn chatbot(duration_s: f64) -> WorkloadSpec {
        WorkloadSpec::Synthetic {
            name: "chatbot".into(),
            params: WorkloadParams {
                duration_s,
                ..WorkloadParams::default()
            },
        }
    }

    #[test]
    fn the_estimate_grows_with_rate_and_duration() {
        let small = estimate_bytes(&chatbot(60.0), &[(4.0, 10)], 60.0).unwrap();
        let longer = estimate_bytes(&chatbot(600.0), &[(4.0, 10)], 600.0).unwrap();
        let faster = estimate_bytes(&chatbot(60.0), &[(40.0, 10)], 60.0).unwrap();
        assert!(small > 0.0);
        for big in [longer, faster] {
            assert!((5.0..20.0).contains(&(big / small)), "{big} vs {small}");
        }
        // Two points held at once cost more than the larger alone.
        let both = estimate_bytes(&chatbot(60.0), &[(4.0, 10), (40.0, 10)], 60.0).unwrap();
        assert!(both > faster);
    }

    #[test]
    fn a_huge_rate_is_estimated_from_a_small_sample() {
        // 10^12 sessions/s for a year: generating it would never end; the sample is quick.
        let huge = estimate_bytes(&chatbot(3.15e7), &[(1e12, 10)], 3.15e7).unwrap();
        assert!(huge > 1e18, "{huge}");
    }
}
