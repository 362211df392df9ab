//! Time series drawn from one run: TTFT per interval of simulated time (for the interval log
//! and the TTFT-over-time plot) and a thinned HBM timeline (for the HBM plot).
//!
//! A request's TTFT belongs to the interval in which its first token was produced, the moment
//! a monitoring system would have observed it (as in a live HdrHistogram interval log).

use fastlibra_runtime::outcome::MemorySample;
use hdrhistogram::Histogram;

use super::latency::{NS_PER_UNIT, SIGNIFICANT_DIGITS};

/// Interval lengths to choose from, seconds: the smallest giving at most [`MAX_INTERVALS`].
const INTERVAL_CHOICES_S: [u64; 10] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600];

/// Most intervals a run is cut into (except runs longer than 600 × this many seconds).
pub const MAX_INTERVALS: u64 = 120;

/// Most points of a thinned HBM timeline.
pub const MAX_TIMELINE_POINTS: usize = 400;

/// The interval length for a run that lasted `simulated_ns`, ns.
pub fn interval_ns(simulated_ns: u64) -> u64 {
    let seconds = simulated_ns.div_ceil(1_000_000_000);
    let chosen = INTERVAL_CHOICES_S
        .iter()
        .copied()
        .find(|&s| seconds.div_ceil(s) <= MAX_INTERVALS)
        .unwrap_or(INTERVAL_CHOICES_S[INTERVAL_CHOICES_S.len() - 1]);
    chosen * 1_000_000_000
}

/// TTFTs observed in one interval.
#[derive(Clone, Debug)]
pub struct Interval {
    /// Start of the interval, ns of simulated time.
    pub start_ns: u64,
    /// Length, ns.
    pub length_ns: u64,
    /// TTFTs observed in it, µs (3 significant digits).
    pub histogram: Histogram<u64>,
}

fn empty_histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits is within HdrHistogram's 0..=5")
}

/// Cuts `(first token ns, TTFT ns)` samples into consecutive intervals of `length_ns` covering
/// `[0, end_ns)` (and any sample past it); empty intervals are kept, so the log has no gaps.
pub fn intervals(samples: &[(u64, u64)], length_ns: u64, end_ns: u64) -> Vec<Interval> {
    let length_ns = length_ns.max(1);
    let last_ns = samples.iter().map(|s| s.0).max().unwrap_or(0).max(end_ns);
    let count = (last_ns / length_ns + 1) as usize;
    let mut out: Vec<Interval> = (0..count)
        .map(|i| Interval {
            start_ns: i as u64 * length_ns,
            length_ns,
            histogram: empty_histogram(),
        })
        .collect();
    for &(at_ns, ttft_ns) in samples {
        let units = ttft_ns / NS_PER_UNIT + u64::from(ttft_ns % NS_PER_UNIT >= NS_PER_UNIT / 2);
        let h = &mut out[(at_ns / length_ns) as usize].histogram;
        // `record` grows the histogram; only a value past its largest range is clamped.
        if h.record(units).is_err() {
            h.saturating_record(units);
        }
    }
    // A trailing interval that starts at the end of the run and holds nothing adds nothing.
    while out.len() > 1
        && out
            .last()
            .is_some_and(|i| i.histogram.is_empty() && i.start_ns >= end_ns)
    {
        out.pop();
    }
    out
}

/// One point of the HBM timeline, as shares of the HBM cache's pages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HbmPoint {
    /// Simulated time, s.
    pub t_s: f64,
    /// Share held by LoRA adapters.
    pub lora: f64,
    /// Share held by KV whose adapter is in HBM.
    pub kv_valid: f64,
    /// Share held by KV whose adapter is not in HBM.
    pub kv_invalid: f64,
}

/// The HBM timeline as shares of capacity, averaged over at most [`MAX_TIMELINE_POINTS`]
/// equal runs of consecutive samples.
pub fn hbm_points(timeline: &[MemorySample]) -> Vec<HbmPoint> {
    let chunk = timeline.len().div_ceil(MAX_TIMELINE_POINTS).max(1);
    timeline
        .chunks(chunk)
        .map(|c| {
            let n = c.len() as f64;
            let share = |f: fn(&MemorySample) -> u32| {
                c.iter()
                    .map(|s| {
                        if s.capacity_pages == 0 {
                            0.0
                        } else {
                            f64::from(f(s)) / f64::from(s.capacity_pages)
                        }
                    })
                    .sum::<f64>()
                    / n
            };
            HbmPoint {
                t_s: c[0].t_ns as f64 / 1e9,
                lora: share(|s| s.lora_pages),
                kv_valid: share(|s| s.kv_valid_pages),
                kv_invalid: share(|s| s.kv_invalid_pages),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn interval_length_keeps_the_count_bounded() {
        assert_eq!(interval_ns(0), S);
        assert_eq!(interval_ns(60 * S), S);
        assert_eq!(interval_ns(121 * S), 2 * S);
        assert_eq!(interval_ns(3_600 * S), 30 * S);
    }

    #[test]
    fn samples_land_in_their_interval() {
        let samples = [
            (0, 5_000_000),
            (S - 1, 1_000),
            (S, 2_000),
            (3 * S + 7, 3_000),
        ];
        let iv = intervals(&samples, S, 2 * S);
        assert_eq!(iv.len(), 4);
        assert_eq!(iv[0].histogram.len(), 2);
        assert_eq!(iv[1].histogram.len(), 1);
        assert!(iv[2].histogram.is_empty());
        assert_eq!(iv[3].start_ns, 3 * S);
        assert_eq!(iv[1].histogram.max(), 2);
        assert!((5_000..=5_005).contains(&iv[0].histogram.max()));
        assert_eq!(intervals(&[], S, 0).len(), 1);
    }

    #[test]
    fn hbm_points_average_and_thin() {
        let timeline: Vec<MemorySample> = (0..800u32)
            .map(|i| MemorySample {
                t_ns: u64::from(i) * 1_000,
                capacity_pages: 100,
                lora_pages: 10,
                kv_valid_pages: i % 2 * 20,
                kv_invalid_pages: 5,
            })
            .collect();
        let points = hbm_points(&timeline);
        assert_eq!(points.len(), MAX_TIMELINE_POINTS);
        assert!((points[0].kv_valid - 0.1).abs() < 1e-12, "{:?}", points[0]);
        assert!((points[0].lora - 0.1).abs() < 1e-12);
        assert!(hbm_points(&[]).is_empty());
    }
}
