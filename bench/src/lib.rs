//! The benchmark harness behind the `fastlibra` command: workload generators, drivers of the
//! engine core, and reports.

pub mod report;
pub mod workload;
