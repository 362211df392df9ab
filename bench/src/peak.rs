//! Peak load: the highest arrival rate whose mean TTFT stays under a threshold (the FASTLIBRA
//! and ELORA papers' definition, with a 500 ms threshold), found by bracketing and bisection.
//!
//! ```text
//!   probe(start) ──below?──► double until a probe is above ──┐
//!        │                                                   ├─► bisect [lo, hi] until
//!        └──above?──► halve until a probe is below ──────────┘   (hi − lo) / lo ≤ tolerance
//!                                                                 peak = lo
//! ```
//!
//! A probe is one whole simulation at one rate (same seed, same duration). It counts as
//! *above* the threshold when its mean TTFT is at or over the threshold **or** when more than
//! `max_failed_fraction` of its requests failed (requests left unfinished at the end of an
//! overloaded run have no TTFT, so they would otherwise make that run look good). The search
//! assumes mean TTFT grows with the rate; a workload where it does not can yield a peak that
//! is a local one. Every loop is bounded: at most [`MAX_STEPS`] doublings or halvings and
//! [`MAX_PROBES`] probes in all.

use serde::{Deserialize, Serialize};

/// Most doublings (or halvings) while bracketing: 2^20 spans any sensible rate range.
pub const MAX_STEPS: u32 = 20;

/// Most probes of one search, bracketing and bisection together.
pub const MAX_PROBES: usize = 40;

/// Default TTFT threshold, ms (the papers' peak-load definition).
pub const DEFAULT_THRESHOLD_MS: f64 = 500.0;

/// Default relative width of the final bracket.
pub const DEFAULT_REL_TOLERANCE: f64 = 0.05;

/// Default largest failed share a probe may have and still count as below the threshold.
pub const DEFAULT_MAX_FAILED_FRACTION: f64 = 0.01;

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeakConfig {
    /// Mean TTFT threshold, ms.
    pub threshold_ms: f64,
    /// The search stops when `(hi − lo) / lo` is at most this.
    pub rel_tolerance: f64,
    /// A probe with a larger failed share counts as above the threshold.
    pub max_failed_fraction: f64,
}

impl Default for PeakConfig {
    fn default() -> Self {
        PeakConfig {
            threshold_ms: DEFAULT_THRESHOLD_MS,
            rel_tolerance: DEFAULT_REL_TOLERANCE,
            max_failed_fraction: DEFAULT_MAX_FAILED_FRACTION,
        }
    }
}

impl PeakConfig {
    /// Whether a probe with measurement `m` counts as under the threshold.
    pub fn is_below(&self, m: &Measurement) -> bool {
        m.mean_ttft_ms < self.threshold_ms && m.failed_fraction <= self.max_failed_fraction
    }
}

/// What one simulation at one rate measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Mean TTFT, ms.
    pub mean_ttft_ms: f64,
    /// Failed requests ÷ requests.
    pub failed_fraction: f64,
}

/// One probe of the search, as `report.json` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Arrival rate probed, arrivals/s.
    pub rate: f64,
    /// Mean TTFT at that rate, ms (`null` when the rate brought no request).
    pub mean_ttft_ms: Option<f64>,
    /// Failed share of its requests.
    pub failed_fraction: f64,
    /// Whether the probe counted as under the threshold.
    pub below: bool,
}

/// The result of one search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeakOutcome {
    /// The highest probed rate under the threshold; `None` when none was found.
    pub peak_rps: Option<f64>,
    /// Whether the peak is bracketed by a probe above the threshold (`false`: the rate
    /// doubled [`MAX_STEPS`] times and stayed under, so the peak is only a lower bound).
    pub bracketed: bool,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
}

/// Searches the peak rate from `start_rps`. `probe(rate)` runs one simulation and returns its
/// measurement, or `None` when no request arrives at that rate (the search then stops going
/// down). Errors of `probe` end the search.
pub fn find_peak<E>(
    config: &PeakConfig,
    start_rps: f64,
    probe: impl FnMut(f64) -> Result<Option<Measurement>, E>,
) -> Result<PeakOutcome, E> {
    find_peak_from(config, start_rps, &[], probe)
}

/// [`find_peak`] that starts from probes already run (a sweep's points, in any order): the
/// highest rate among them below the threshold and the lowest above it bracket the search,
/// which only doubles, halves or bisects from there. They come first in the outcome's probes.
/// Without any, it is [`find_peak`] from `start_rps`.
pub fn find_peak_from<E>(
    config: &PeakConfig,
    start_rps: f64,
    known: &[(f64, Measurement)],
    mut probe: impl FnMut(f64) -> Result<Option<Measurement>, E>,
) -> Result<PeakOutcome, E> {
    let mut probes: Vec<Probe> = known
        .iter()
        .map(|(rate, m)| Probe {
            rate: *rate,
            mean_ttft_ms: Some(m.mean_ttft_ms),
            failed_fraction: m.failed_fraction,
            below: config.is_below(m),
        })
        .collect();
    if !probes.is_empty() {
        let lo = probes
            .iter()
            .filter(|p| p.below)
            .map(|p| p.rate)
            .fold(0.0, f64::max);
        let hi = probes
            .iter()
            .filter(|p| !p.below && p.rate > lo)
            .map(|p| p.rate)
            .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.min(r))));
        return search(config, lo, hi, probes, probe);
    }
    let mut run = |rate: f64, probes: &mut Vec<Probe>| run_probe(config, &mut probe, rate, probes);
    let (lo, hi) = match run(start_rps, &mut probes)? {
        Some(true) => (start_rps, None),
        Some(false) => (0.0, Some(start_rps)),
        None => (0.0, None),
    };
    search(config, lo, hi, probes, probe)
}

/// Runs one probe and records it; `Some(below)`, or `None` when no request arrived.
fn run_probe<E>(
    config: &PeakConfig,
    probe: &mut impl FnMut(f64) -> Result<Option<Measurement>, E>,
    rate: f64,
    probes: &mut Vec<Probe>,
) -> Result<Option<bool>, E> {
    let m = probe(rate)?;
    let below = m.map(|m| config.is_below(&m));
    probes.push(Probe {
        rate,
        mean_ttft_ms: m.map(|m| m.mean_ttft_ms),
        failed_fraction: m.map_or(0.0, |m| m.failed_fraction),
        below: below == Some(true),
    });
    Ok(below)
}

/// Brackets from `lo` (highest rate known below; 0: none) and `hi` (lowest known above), then
/// bisects; `probes` holds what was run so far.
fn search<E>(
    config: &PeakConfig,
    mut lo: f64,
    mut hi: Option<f64>,
    mut probes: Vec<Probe>,
    mut probe: impl FnMut(f64) -> Result<Option<Measurement>, E>,
) -> Result<PeakOutcome, E> {
    let mut run = |rate: f64, probes: &mut Vec<Probe>| run_probe(config, &mut probe, rate, probes);
    if lo > 0.0 && hi.is_none() {
        // Double until above.
        for _ in 0..MAX_STEPS {
            let rate = lo * 2.0;
            if run(rate, &mut probes)? == Some(true) {
                lo = rate;
            } else {
                hi = Some(rate);
                break;
            }
        }
    } else if lo == 0.0
        && let Some(mut above) = hi
    {
        // Halve until below.
        for _ in 0..MAX_STEPS {
            let rate = above / 2.0;
            match run(rate, &mut probes)? {
                Some(true) => {
                    lo = rate;
                    break;
                }
                Some(false) => above = rate,
                None => break,
            }
        }
        hi = Some(above);
    }
    let Some(mut hi_rate) = hi.filter(|_| lo > 0.0) else {
        return Ok(PeakOutcome {
            peak_rps: (lo > 0.0).then_some(lo),
            bracketed: false,
            probes,
        });
    };
    while (hi_rate - lo) / lo > config.rel_tolerance && probes.len() < MAX_PROBES {
        let mid = (lo + hi_rate) / 2.0;
        if run(mid, &mut probes)? == Some(true) {
            lo = mid;
        } else {
            hi_rate = mid;
        }
    }
    Ok(PeakOutcome {
        peak_rps: Some(lo),
        bracketed: true,
        probes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean TTFT 100 ms below `knee` per second, 10 s above it.
    fn knee(knee: f64) -> impl FnMut(f64) -> Result<Option<Measurement>, ()> {
        move |rate| {
            Ok(Some(Measurement {
                mean_ttft_ms: if rate < knee { 100.0 } else { 10_000.0 },
                failed_fraction: 0.0,
            }))
        }
    }

    #[test]
    fn brackets_upward_then_bisects_to_tolerance() {
        let out = find_peak(&PeakConfig::default(), 1.0, knee(6.3)).unwrap();
        let peak = out.peak_rps.unwrap();
        assert!(out.bracketed);
        assert!((6.3 / 1.05..6.3).contains(&peak), "{peak}");
        // 1, 2, 4, 8 then bisection of [4, 8] down to 5 %: 5 more.
        assert!(out.probes.len() <= 10, "{:?}", out.probes);
        assert!(out.probes.iter().all(|p| p.below == (p.rate < 6.3)));
    }

    #[test]
    fn brackets_downward() {
        let out = find_peak(&PeakConfig::default(), 100.0, knee(0.7)).unwrap();
        let peak = out.peak_rps.unwrap();
        assert!((0.7 / 1.05..0.7).contains(&peak), "{peak}");
    }

    #[test]
    fn failures_count_as_above() {
        let probe = |rate: f64| -> Result<Option<Measurement>, ()> {
            Ok(Some(Measurement {
                mean_ttft_ms: 10.0,
                failed_fraction: if rate >= 3.0 { 0.5 } else { 0.0 },
            }))
        };
        let peak = find_peak(&PeakConfig::default(), 1.0, probe)
            .unwrap()
            .peak_rps
            .unwrap();
        assert!((3.0 / 1.05..3.0).contains(&peak), "{peak}");
    }

    #[test]
    fn never_below_or_never_above_is_bounded() {
        let never = find_peak(&PeakConfig::default(), 1.0, knee(0.0)).unwrap();
        assert_eq!(never.peak_rps, None);
        assert_eq!(never.probes.len() as u32, MAX_STEPS + 1);
        let always = find_peak(&PeakConfig::default(), 1.0, knee(f64::INFINITY)).unwrap();
        assert!(!always.bracketed);
        assert_eq!(always.peak_rps, Some(2f64.powi(MAX_STEPS as i32)));
    }

    #[test]
    fn known_probes_bracket_the_search() {
        let m = |ttft: f64| Measurement {
            mean_ttft_ms: ttft,
            failed_fraction: 0.0,
        };
        // A sweep at 2, 4, 6, 8 with the knee at 6.3: only the bisection of [6, 8] is left.
        let known = [
            (2.0, m(10.0)),
            (4.0, m(10.0)),
            (6.0, m(10.0)),
            (8.0, m(1e4)),
        ];
        let out = find_peak_from(&PeakConfig::default(), 1.0, &known, knee(6.3)).unwrap();
        let peak = out.peak_rps.unwrap();
        assert!(out.bracketed);
        assert!((6.3 / 1.05..6.3).contains(&peak), "{peak}");
        assert_eq!(
            &out.probes[..4].iter().map(|p| p.rate).collect::<Vec<_>>(),
            &[2.0, 4.0, 6.0, 8.0]
        );
        assert!(out.probes.len() <= 4 + 3, "{:?}", out.probes);
        // All below: it doubles from the highest.
        let known = [(2.0, m(10.0)), (4.0, m(10.0))];
        let out = find_peak_from(&PeakConfig::default(), 1.0, &known, knee(6.3)).unwrap();
        assert_eq!(out.probes[2].rate, 8.0);
        assert!((6.3 / 1.05..6.3).contains(&out.peak_rps.unwrap()));
        // All above: it halves from the lowest.
        let known = [(8.0, m(1e4))];
        let out = find_peak_from(&PeakConfig::default(), 1.0, &known, knee(0.7)).unwrap();
        assert!((0.7 / 1.05..0.7).contains(&out.peak_rps.unwrap()));
    }

    #[test]
    fn no_requests_stops_the_descent_and_errors_propagate() {
        let empty = |rate: f64| -> Result<Option<Measurement>, ()> {
            Ok((rate > 1.0).then_some(Measurement {
                mean_ttft_ms: 1e6,
                failed_fraction: 0.0,
            }))
        };
        let out = find_peak(&PeakConfig::default(), 8.0, empty).unwrap();
        assert_eq!(out.peak_rps, None);
        assert_eq!(out.probes.len(), 4);
        let failing = |_: f64| -> Result<Option<Measurement>, &str> { Err("boom") };
        assert_eq!(find_peak(&PeakConfig::default(), 1.0, failing), Err("boom"));
    }
}
