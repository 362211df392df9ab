//! HdrHistogram percentile-distribution files (`<policy>.ttft.hgrm`, `.tpot.hgrm`,
//! `.e2e.hgrm`), in the text format of
//! Java HdrHistogram's `outputPercentileDistribution` (what `HistogramLogProcessor` writes and
//! the online HdrHistogram plotter reads). The `hdrhistogram` crate has no writer for it, so
//! this module writes it: a header, one row per percentile tick (five ticks per half distance
//! to 100 %), and a footer with mean, standard deviation, max, count and the bucket layout.
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!       12.001 0.000000000000          1           1.00
//!       …
//!      310.015 1.000000000000        842
//! #[Mean    =       45.231, StdDeviation   =       30.118]
//! #[Max     =      310.015, Total count    =          842]
//! #[Buckets =           19, SubBuckets     =         2048]
//! ```
//!
//! Values are in milliseconds with as many decimals as the histogram has significant digits.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::error::ReportError;
use super::files::write_file;
use super::latency::UNITS_PER_MS;
use super::summary::Summarized;

/// Percentile ticks per half distance to 100 %, as Java's default output uses.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// File name of a policy's TTFT distribution.
pub fn ttft_file_name(policy: &str) -> String {
    file_name(policy, "ttft")
}

/// File name of a policy's distribution of `metric` (`ttft`, `tpot` or `e2e`).
pub fn file_name(policy: &str, metric: &str) -> String {
    format!("{policy}.{metric}.hgrm")
}

/// The percentile distribution of `histogram`, whose values are divided by `scale` for output
/// (1000 turns the microsecond histograms into milliseconds).
pub fn percentile_distribution(histogram: &Histogram<u64>, scale: f64) -> String {
    let digits = usize::from(histogram.sigfig());
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / scale;
        let q = v.quantile_iterated_to();
        // Writing to a String cannot fail.
        let _ = if q < 1.0 {
            writeln!(
                out,
                "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            )
        } else {
            writeln!(out, "{value:12.digits$} {q:2.12} {total:10}")
        };
    }
    let mean = histogram.mean() / scale;
    let stdev = histogram.stdev() / scale;
    let max = histogram.max() as f64 / scale;
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.digits$}, Total count    = {:12}]",
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    );
    out
}

/// Sub-buckets per bucket: the power of two that resolves `sigfig` decimal digits, as
/// HdrHistogram lays it out (2048 for 3 digits).
pub fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

/// Writes `<policy>.ttft.hgrm`, `<policy>.tpot.hgrm` and `<policy>.e2e.hgrm` (values in ms)
/// into `dir`.
pub fn write_all(dir: &Path, policy: &str, s: &Summarized) -> Result<(), ReportError> {
    for (metric, histogram) in [("ttft", &s.ttft), ("tpot", &s.tpot), ("e2e", &s.e2e)] {
        write_file(
            dir,
            &file_name(policy, metric),
            percentile_distribution(histogram, UNITS_PER_MS),
        )?;
    }
    Ok(())
}

/// Writes `<policy>.ttft.hgrm` (values in ms) into `dir` and returns its path.
pub fn write_ttft(
    dir: &Path,
    policy: &str,
    ttft_us: &Histogram<u64>,
) -> Result<PathBuf, ReportError> {
    write_file(
        dir,
        &ttft_file_name(policy),
        percentile_distribution(ttft_us, UNITS_PER_MS),
    )
}
