//! DGG (arXiv 2412.19083) in Rust: production-like microservice call graphs.
//!
//! ```text
//!  trace CSV rows ──► handler ──► call graphs per service ──► top 90 % ──► dependency graphs
//!  (traceid, service,   │          (node = microservice       per service   (union, max weight)
//!   rpc_id, um, dm, …)  │           + interface; weight =                      │
//!                       │           repeated calls; num)                       ▼
//!                       │                                        labels, clusters (WL + k-means)
//!                       ▼                                                      │
//!            service_info.csv + real_call_graph_renamed/type{K}/{service}/graph{N}.json
//!                       │
//!                       ▼
//!  generator: per service a model keyed by (node, depth) of whole child sets weighted by
//!  trace counts (+ sibling context) ──► breadth-first expansion ──► dedup (num) ──► top 90 %
//!                       │
//!                       ▼
//!            type{K}/graph{N}.json + type{K}/dependency_graph.json ──► compare (fidelity)
//!                                                                  └─► workloads (bench)
//! ```
//!
//! - [`handler`] streams Alibaba call-graph rows into fine-grained call graphs, labels,
//!   clusters and renames them, and writes the reference's folder layout.
//! - [`generator`] builds the empirical random graph model and samples new call graphs.
//! - [`compare`] measures how close two sets of call graphs are, per cluster.
//! - [`synth`] turns call graphs back into trace rows (tests, benchmarks).
//! - [`builtin`] holds a few call graphs written for this project, the default workload.
//! - [`fuzz_entry`] runs the parsers on arbitrary bytes for the fuzz targets.
//!
//! Files use the reference's JSON schemas ([`json`]), so graphs move freely between the
//! reference's Python code and this crate. All randomness comes from seeded ChaCha streams and
//! all output is sorted, so the same input and seed give byte-identical output.

pub mod builtin;
pub mod compare;
pub mod dataset;
pub mod digraph;
pub mod error;
pub mod fuzz_entry;
pub mod generator;
pub mod graph;
pub mod handler;
pub mod json;
pub mod synth;

pub use error::{DggError, Result};
pub use graph::{CallGraph, Edge, Label, Node};
