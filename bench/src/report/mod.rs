//! Reports of a benchmark run: what `fastlibra bench` writes once every policy has run.
//!
//! ```text
//!   SimResult ──summarize──► Summarized { PolicySummary, TTFT histogram (µs) }
//!   (per policy)                 │                         │
//!                                ▼                         ▼
//!            Report { RunInfo, policies, comparison }   <policy>.ttft.hgrm   (hgrm)
//!                 │                     │
//!                 ▼                     ▼
//!            report.json (json)    terminal table (table)
//! ```
//!
//! Latencies are recorded in HdrHistograms of microseconds with 3 significant digits and
//! reported in milliseconds; means and maxima come from exact sums, not the histograms. The
//! output is a pure function of the simulation results, so the same seed gives the same bytes.
//! `docs/report.md` describes every field of `report.json`.

pub mod error;
pub mod files;
pub mod hgrm;
pub mod hlog;
mod http_md;
pub mod json;
pub mod latency;
pub mod markdown;
pub mod requests_csv;
pub mod series;
pub mod summary;
pub mod table;
pub mod timeline;

pub use error::ReportError;
pub use json::{Comparison, PeakRun, PeakSearch, Report, RunInfo, SweepPoint};
pub use latency::LatencyStats;
pub use summary::{
    PolicySummary, RuntimeFigures, Summarized, VerifyCounts, keep_outcomes, summarize,
};
