//! The benchmark harness behind the `fastlibra` command: workload generators, drivers of the
//! engine core, and reports.

pub mod http;
pub mod peak;
pub mod plots;
pub mod progress;
pub mod report;
pub mod rss;
pub mod units;
pub mod workload;
