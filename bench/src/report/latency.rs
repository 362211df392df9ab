//! One latency distribution: an HdrHistogram in microseconds for the percentiles, beside the
//! exact sum and maximum in nanoseconds for the mean and the max.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant decimal digits every histogram keeps (values within 0.1 %).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Nanoseconds per recorded histogram unit (the histograms count microseconds).
pub const NS_PER_UNIT: u64 = 1_000;

/// Histogram units (microseconds) per millisecond, the unit of every reported latency.
pub const UNITS_PER_MS: f64 = 1_000.0;

/// Summary of one latency distribution, in milliseconds. All zero when `count` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Samples recorded.
    pub count: u64,
    /// Exact mean, from the sum of the nanosecond values.
    pub mean: f64,
    /// Median, from the histogram (the highest value equivalent to the median sample).
    pub p50: f64,
    /// 90th percentile, from the histogram.
    pub p90: f64,
    /// 99th percentile, from the histogram.
    pub p99: f64,
    /// Exact maximum.
    pub max: f64,
}

/// Records latencies given in nanoseconds.
#[derive(Clone, Debug)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    sum_ns: u128,
    max_ns: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder whose histogram grows as needed.
    pub fn new() -> LatencyRecorder {
        LatencyRecorder {
            histogram: Histogram::new(SIGNIFICANT_DIGITS)
                .expect("3 significant digits is within HdrHistogram's 0..=5"),
            sum_ns: 0,
            max_ns: 0,
        }
    }

    /// Records one latency, rounded to the nearest microsecond in the histogram.
    pub fn record_ns(&mut self, ns: u64) {
        let units = ns / NS_PER_UNIT + u64::from(ns % NS_PER_UNIT >= NS_PER_UNIT / 2);
        // The histogram grows to fit; only a value beyond its largest possible range (far
        // beyond any latency) is clamped.
        if self.histogram.record(units).is_err() {
            self.histogram.saturating_record(units);
        }
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// The histogram, in microseconds.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// Mean, percentiles and maximum in milliseconds.
    pub fn stats(&self) -> LatencyStats {
        let count = self.histogram.len();
        if count == 0 {
            return LatencyStats::default();
        }
        let at = |q: f64| self.histogram.value_at_quantile(q) as f64 / UNITS_PER_MS;
        LatencyStats {
            count,
            mean: self.sum_ns as f64 / count as f64 / 1e6,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: self.max_ns as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_all_zero() {
        assert_eq!(LatencyRecorder::new().stats(), LatencyStats::default());
    }

    #[test]
    fn mean_and_max_are_exact_percentiles_from_histogram() {
        let mut r = LatencyRecorder::new();
        for ms in 1..=100u64 {
            r.record_ns(ms * 1_000_000 + 1);
        }
        let s = r.stats();
        assert_eq!(s.count, 100);
        assert!((s.mean - 50.500_001).abs() < 1e-9, "{}", s.mean);
        assert!((s.max - 100.000_001).abs() < 1e-12);
        // 50 ms = 50 000 µs, within 0.1 %.
        assert!((s.p50 - 50.0).abs() <= 0.05, "{s:?}");
        assert!((s.p90 - 90.0).abs() <= 0.09, "{}", s.p90);
        assert!((s.p99 - 99.0).abs() <= 0.1, "{}", s.p99);
    }

    #[test]
    fn rounds_to_nearest_microsecond() {
        let mut r = LatencyRecorder::new();
        r.record_ns(1_499);
        r.record_ns(1_500);
        assert_eq!(r.histogram().min(), 1);
        assert_eq!(r.histogram().max(), 2);
    }
}
