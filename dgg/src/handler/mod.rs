//! The data handler: trace CSV rows → fine-grained call graphs → top 90 % per service →
//! labels → clusters → renamed graphs in the reference's folder layout.
//!
//! ```text
//! CSV files ─► reader (rows → traces, windowed) ─► trace checks + graph ─► corpus
//!   (distinct graphs per service with trace counts) ─► labels (all graphs) ─► top 90 %
//!   ─► dependency graphs ─► WL kernel + k-means ─► renaming ─► service_info.csv + JSON
//! ```
//!
//! A CSV file that cannot be used at all (missing, empty, a required column missing) is
//! reported in [`HandleReport::file_errors`] and the other files are still processed; rows
//! that cannot be used are counted by reason, and traces that fail a check are counted by
//! the reason they were dropped.

pub mod cluster;
pub mod corpus;
pub mod intern;
pub mod labels;
pub mod reader;
pub mod rename;
pub mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;
use rustc_hash::FxHashMap;

use crate::dataset::{REAL_DIR, SERVICE_INFO, ServiceInfo, write_service_info};
use crate::error::{DggError, Result};
use crate::graph::{CallGraph, Label};
use crate::json;
use cluster::KernelGraph;
use corpus::{Corpus, KeptService};
use intern::NONE;
use reader::Collector;
use trace::{Known, NodeKey};

/// Options of the data handler.
#[derive(Clone, Debug)]
pub struct HandleOptions {
    /// A trace is finished after this many rows without one of its rows (default 1,000,000).
    pub window_rows: u64,
    /// Number of clusters; `None` chooses it by silhouette in 2..=20.
    pub clusters: Option<usize>,
    /// Seed of k-means.
    pub seed: u64,
}

impl Default for HandleOptions {
    fn default() -> Self {
        HandleOptions {
            window_rows: 1_000_000,
            clusters: None,
            seed: 42,
        }
    }
}

/// What the handler read, dropped and wrote.
#[derive(Clone, Debug, Default)]
pub struct HandleReport {
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Unusable rows by reason.
    pub bad_rows: BTreeMap<&'static str, u64>,
    /// The first unusable rows, as `file:line: field: what`.
    pub row_examples: Vec<String>,
    /// Files that could not be used at all.
    pub file_errors: Vec<String>,
    /// Traces seen.
    pub traces: u64,
    /// Traces that passed the checks.
    pub kept_traces: u64,
    /// Dropped traces by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Services written.
    pub services: usize,
    /// Call-graph files written.
    pub graphs_written: usize,
    /// Number of clusters.
    pub clusters: usize,
    /// Silhouette of the chosen number of clusters (0 when given).
    pub silhouette: f64,
}

impl HandleReport {
    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "rows {}  traces {}  kept {}  services {}  graphs {}  clusters {} (silhouette {:.3})\n",
            self.rows,
            self.traces,
            self.kept_traces,
            self.services,
            self.graphs_written,
            self.clusters,
            self.silhouette
        );
        for (k, v) in &self.bad_rows {
            s.push_str(&format!("  rows skipped, {k}: {v}\n"));
        }
        for (k, v) in &self.dropped {
            s.push_str(&format!("  traces dropped, {k}: {v}\n"));
        }
        for e in &self.row_examples {
            s.push_str(&format!("  {e}\n"));
        }
        for e in &self.file_errors {
            s.push_str(&format!("  file skipped: {e}\n"));
        }
        s
    }
}

/// Reads trace files into distinct call graphs per service.
pub fn read_traces(paths: &[PathBuf], opts: &HandleOptions) -> Result<(Corpus, HandleReport)> {
    read_sources(paths, opts, |c, path, strings, sink| {
        c.read_file(path, strings, sink)
    })
}

/// Like [`read_traces`] for one trace CSV already in memory; `name` only names it in errors
/// and row examples.
pub fn read_trace_bytes(
    name: &Path,
    bytes: &[u8],
    opts: &HandleOptions,
) -> Result<(Corpus, HandleReport)> {
    read_sources(&[name.to_path_buf()], opts, |c, path, strings, sink| {
        c.read_from(path, bytes, strings, sink)
    })
}

/// Reads every source with `read` (a collector, the source's name, the names, the sink).
fn read_sources(
    paths: &[PathBuf],
    opts: &HandleOptions,
    mut read: impl FnMut(
        &mut Collector,
        &Path,
        &mut intern::Interner,
        &mut dyn FnMut(trace::PendingTrace),
    ) -> Result<()>,
) -> Result<(Corpus, HandleReport)> {
    let mut corpus = Corpus::default();
    let mut report = HandleReport::default();
    let known = Known::new(&mut corpus.strings);
    let mut collector = Collector::new(opts.window_rows);
    let mut finished: Vec<trace::PendingTrace> = Vec::new();
    let mut used_files = 0;
    for path in paths {
        let mut sink = |t: trace::PendingTrace| finished.push(t);
        match read(&mut collector, path, &mut corpus.strings, &mut sink) {
            Ok(()) => used_files += 1,
            Err(e) => report.file_errors.push(e.to_string()),
        }
        // Traces already finished are built now; memory holds only open traces.
        absorb(&mut finished, &known, &mut corpus, &mut report);
    }
    let mut sink = |t: trace::PendingTrace| finished.push(t);
    collector.flush(&mut sink);
    absorb(&mut finished, &known, &mut corpus, &mut report);
    report.rows = collector.rows;
    report.bad_rows = collector.issues.counts.clone();
    report.row_examples = collector.issues.examples.clone();
    if used_files == 0 {
        let path = paths.first().cloned().unwrap_or_default();
        let msg = format!("no usable trace file: {}", report.file_errors.join("; "));
        return Err(DggError::NoData { path, msg });
    }
    Ok((corpus, report))
}

fn absorb(
    finished: &mut Vec<trace::PendingTrace>,
    known: &Known,
    corpus: &mut Corpus,
    report: &mut HandleReport,
) {
    for mut t in finished.drain(..) {
        report.traces += 1;
        match trace::build(&mut t, known) {
            Ok((service, graph)) => {
                report.kept_traces += 1;
                corpus.add(service, graph);
            }
            Err(reason) => *report.dropped.entry(reason.as_str()).or_default() += 1,
        }
    }
}

/// Runs the whole handler: reads the trace files and writes `out`.
pub fn handle(paths: &[PathBuf], out: &Path, opts: &HandleOptions) -> Result<HandleReport> {
    let (corpus, report) = read_traces(paths, opts)?;
    write_output(&corpus, report, out, opts)
}

/// One service of the handler's output, renamed, before it is written.
#[derive(Clone, Debug)]
pub struct RenamedService {
    /// Cluster (`type{cluster}`).
    pub cluster: usize,
    /// Its `service_info.csv` row (`service` is the folder name).
    pub info: ServiceInfo,
    /// Its kept call graphs with renamed nodes, most frequent first (`graph1.json`, …).
    pub graphs: Vec<CallGraph>,
}

/// Labels, filters, clusters, renames and writes the corpus to `out`.
pub fn write_output(
    corpus: &Corpus,
    report: HandleReport,
    out: &Path,
    opts: &HandleOptions,
) -> Result<HandleReport> {
    let (services, report) = build_output(corpus, report, out, opts)?;
    let root = out.join(REAL_DIR);
    for svc in &services {
        let dir = root
            .join(format!("type{}", svc.cluster))
            .join(&svc.info.service);
        for (i, g) in svc.graphs.iter().enumerate() {
            json::write_file(
                &dir.join(format!("graph{}.json", i + 1)),
                &json::real_json(g),
            )?;
        }
    }
    let mut infos: Vec<ServiceInfo> = services.into_iter().map(|s| s.info).collect();
    infos.sort_by(|a, b| {
        b.top90_trace_num
            .cmp(&a.top90_trace_num)
            .then_with(|| a.service.cmp(&b.service))
    });
    write_service_info(&out.join(SERVICE_INFO), &infos)?;
    Ok(report)
}

/// Labels, filters, clusters and renames the corpus, in memory: the services in renaming
/// order (clusters by descending traces, then services by descending traces), and the report
/// with the clusters, services and graphs filled in. An error naming `out` when no trace
/// passed the checks.
pub fn build_output(
    corpus: &Corpus,
    mut report: HandleReport,
    out: &Path,
    opts: &HandleOptions,
) -> Result<(Vec<RenamedService>, HandleReport)> {
    let labels = labels::label_microservices(corpus);
    let kept = corpus.top90();
    if kept.is_empty() {
        return Err(DggError::NoData {
            path: out.to_path_buf(),
            msg: "no trace passed the checks".into(),
        });
    }
    let kernel_graphs: Vec<KernelGraph> = kept
        .iter()
        .map(|s| kernel_graph(corpus, &labels, s))
        .collect();
    let clustering = cluster::cluster(&kernel_graphs, opts.clusters, opts.seed);
    report.clusters = clustering.k;
    report.silhouette = clustering.silhouette;
    // Clusters numbered by descending traces (ties by the first service name).
    let mut by_cluster: BTreeMap<usize, Vec<&KeptService>> = BTreeMap::new();
    for (s, &c) in kept.iter().zip(&clustering.assign) {
        by_cluster.entry(c).or_default().push(s);
    }
    let mut order: Vec<Vec<&KeptService>> = by_cluster.into_values().collect();
    let top = |s: &KeptService| s.graphs.iter().map(|g| g.1).sum::<u64>();
    order.sort_by_cached_key(|svcs| {
        let total: u64 = svcs.iter().map(|s| top(s)).sum();
        (
            std::cmp::Reverse(total),
            svcs.iter().map(|s| s.name.clone()).min(),
        )
    });
    let mut renamer = rename::Renamer::default();
    let mut services = Vec::new();
    for (k, mut svcs) in order.into_iter().enumerate() {
        svcs.sort_by_cached_key(|s| (std::cmp::Reverse(top(s)), s.name.clone()));
        for svc in svcs {
            let graphs = renamer.rename_service(corpus, &labels, svc);
            report.graphs_written += graphs.len();
            let info = ServiceInfo {
                service: safe_name(&svc.name),
                top90_trace_num: top(svc),
                top90_cg_num: graphs.len() as u64,
                ms_num: ms_count(svc),
                label: k as u32,
            };
            services.push(RenamedService {
                cluster: k,
                info,
                graphs,
            });
        }
    }
    report.services = services.len();
    Ok((services, report))
}

/// A service name usable as a folder name.
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() || s == "." || s == ".." {
        format!("_{s}")
    } else {
        s
    }
}

fn ms_count(svc: &KeptService) -> u64 {
    let mut ms: Vec<u32> = svc
        .graphs
        .iter()
        .flat_map(|(g, _)| g.iter().flat_map(|e| [e.source.0, e.target.0]))
        .collect();
    ms.sort_unstable();
    ms.dedup();
    ms.len() as u64
}

/// The labelled dependency graph of a service (union of its kept graphs) for the kernel; call
/// types are numbered by name so the features do not depend on input order.
fn kernel_graph(corpus: &Corpus, labels: &FxHashMap<u32, Label>, svc: &KeptService) -> KernelGraph {
    let mut index: BTreeMap<NodeKey, u32> = BTreeMap::new();
    let mut edges: Vec<(NodeKey, NodeKey, Vec<u8>)> = Vec::new();
    for (g, _) in &svc.graphs {
        for e in g {
            index.insert(e.source, 0);
            index.insert(e.target, 0);
            edges.push((e.source, e.target, corpus.strings.bytes(e.rpctype).to_vec()));
        }
    }
    edges.sort();
    edges.dedup();
    let mut types: Vec<&[u8]> = edges.iter().map(|e| e.2.as_slice()).collect();
    types.sort();
    types.dedup();
    for (i, v) in index.values_mut().enumerate() {
        *v = i as u32;
    }
    let label_id = |ms: u32| {
        Label::ALL
            .iter()
            .position(|&l| Some(&l) == labels.get(&ms))
            .unwrap_or(5) as u32
    };
    let mut g = KernelGraph::with_capacity(index.len(), edges.len());
    for &(ms, iface) in index.keys() {
        g.add_node(label_id(ms) * 2 + u32::from(iface != NONE));
    }
    for (s, t, r) in &edges {
        let ty = types.binary_search(&r.as_slice()).unwrap_or(0) as u32;
        g.add_edge(
            NodeIndex::new(index[s] as usize),
            NodeIndex::new(index[t] as usize),
            ty,
        );
    }
    g
}
