//! HdrHistogram interval logs (`<policy>.ttft.hlog`): TTFT per interval of simulated time in
//! the standard V2 log format that Java HdrHistogram's `HistogramLogReader`,
//! `HistogramLogProcessor` and HistogramLogAnalyzer read.
//!
//! ```text
//! #[fastlibra bench: TTFT of policy fastlibra, values in microseconds]
//! #[Histogram log format version 1.3]
//! #[StartTime: 0.000 (seconds since epoch)]
//! #[BaseTime: 0.000 (seconds since epoch)]
//! #[MaxValueDivisor: 1000.000]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! 0.000,1.000,41.023,HISTFAA…
//! ```
//!
//! Timestamps are seconds of *simulated* time from the start of the run (StartTime and
//! BaseTime are 0), so the file holds no wall-clock time and the same seed gives the same
//! bytes. Recorded values are microseconds; the max column is divided by 1000 (milliseconds).

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

use super::error::ReportError;
use super::series::Interval;

/// The legend line Java's writer puts after the headers.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// File name of a policy's TTFT interval log.
pub fn ttft_file_name(policy: &str) -> String {
    format!("{policy}.ttft.hlog")
}

/// The interval log of `intervals` (histograms in µs) as bytes.
pub fn interval_log(policy: &str, intervals: &[Interval]) -> Result<Vec<u8>, ReportError> {
    let mut out: Vec<u8> = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let io = |e: std::io::Error| ReportError::Hlog(e.to_string());
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[fastlibra bench: TTFT of policy {policy}, values in microseconds, timestamps in simulated seconds]"
        ))
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(UNIX_EPOCH)
        .with_base_time(UNIX_EPOCH)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(io)?;
    out.extend_from_slice(LEGEND.as_bytes());
    let mut writer = IntervalLogWriterBuilder::new()
        .begin_log_with(&mut out, &mut serializer)
        .map_err(io)?;
    for i in intervals {
        writer
            .write_histogram(
                &i.histogram,
                Duration::from_nanos(i.start_ns),
                Duration::from_nanos(i.length_ns),
                None,
            )
            .map_err(|e| ReportError::Hlog(e.to_string()))?;
    }
    Ok(out)
}

/// Writes `<policy>.ttft.hlog` into `dir` and returns its path.
pub fn write_ttft(
    dir: &Path,
    policy: &str,
    intervals: &[Interval],
) -> Result<PathBuf, ReportError> {
    super::files::write_file(
        dir,
        &ttft_file_name(policy),
        interval_log(policy, intervals)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::series::intervals;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn log_reads_back_with_the_same_counts() {
        let s = 1_000_000_000u64;
        let samples = [(0, 5_000_000), (s / 2, 7_000_000), (2 * s, 1_000_000)];
        let iv = intervals(&samples, s, 3 * s);
        let bytes = interval_log("fastlibra", &iv).unwrap();
        assert_eq!(bytes, interval_log("fastlibra", &iv).unwrap());
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("#[StartTime: 0.000"), "{text}");
        assert!(text.contains("\"StartTimestamp\""), "{text}");
        let mut counts = Vec::new();
        for entry in IntervalLogIterator::new(text.as_bytes()) {
            if let LogEntry::Interval(h) = entry.unwrap() {
                let mut d = hdrhistogram::serialization::Deserializer::new();
                let bytes = h.encoded_histogram().as_bytes();
                let raw = base64_decode(bytes);
                let hist: hdrhistogram::Histogram<u64> = d.deserialize(&mut &raw[..]).unwrap();
                counts.push(hist.len());
            }
        }
        assert_eq!(counts, vec![2, 0, 1]);
    }

    /// Standard base64 (the log's encoding), decoded without another dependency.
    fn base64_decode(text: &[u8]) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let digits: Vec<u8> = text
            .iter()
            .copied()
            .filter(|&c| c != b'=')
            .map(value)
            .collect();
        let mut out = Vec::new();
        for chunk in digits.chunks(4) {
            let mut acc = 0u32;
            for (i, &d) in chunk.iter().enumerate() {
                acc |= u32::from(d) << (18 - 6 * i);
            }
            let bytes = acc.to_be_bytes();
            out.extend_from_slice(&bytes[1..chunk.len()]);
        }
        out
    }
}
