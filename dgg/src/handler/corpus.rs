//! The distinct call graphs of every service, with the number of traces that had each.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::intern::{Interner, NONE};
use super::trace::{NodeKey, RawEdge};
use crate::graph::{CallGraph, Edge, Node, top90};

/// A raw call graph: sorted edges over interned names.
pub type RawGraph = Vec<RawEdge>;

/// Distinct call graphs per service.
#[derive(Debug, Default)]
pub struct Corpus {
    /// All names (microservices, interfaces, call types, services).
    pub strings: Interner,
    /// Service id → graph → traces.
    pub services: FxHashMap<u32, FxHashMap<RawGraph, u64>>,
}

/// A service's kept graphs, most frequent first.
#[derive(Clone, Debug)]
pub struct KeptService {
    /// Service id.
    pub service: u32,
    /// Service name.
    pub name: String,
    /// Kept graphs with their trace counts.
    pub graphs: Vec<(RawGraph, u64)>,
    /// Traces of the service (all graphs).
    pub traces: u64,
}

impl Corpus {
    /// Adds one trace's graph.
    pub fn add(&mut self, service: u32, graph: RawGraph) {
        *self
            .services
            .entry(service)
            .or_default()
            .entry(graph)
            .or_default() += 1;
    }

    /// Every service's graphs, most frequent first (ties by edges), in service-name order.
    pub fn sorted(&self) -> Vec<KeptService> {
        let mut out: Vec<KeptService> = self
            .services
            .iter()
            .map(|(&service, graphs)| {
                let mut graphs: Vec<(RawGraph, u64)> =
                    graphs.iter().map(|(g, &n)| (g.clone(), n)).collect();
                graphs.sort_by_cached_key(|(g, n)| (std::cmp::Reverse(*n), self.graph_key(g)));
                let traces = graphs.iter().map(|g| g.1).sum();
                KeptService {
                    service,
                    name: self.strings.text(service),
                    graphs,
                    traces,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Keeps each service's most frequent graphs covering 90 % of its traces (the handler's
    /// strict rule).
    pub fn top90(&self) -> Vec<KeptService> {
        let mut all = self.sorted();
        for s in &mut all {
            let nums: Vec<u64> = s.graphs.iter().map(|g| g.1).collect();
            let keep = top90(&nums, true).len();
            s.graphs.truncate(keep);
        }
        all
    }

    /// A sort key made of names, not interning order, so ties break the same way whatever
    /// order the traces came in.
    fn graph_key(&self, g: &RawGraph) -> Vec<(String, String, String, u32)> {
        let mut v: Vec<(String, String, String, u32)> = g
            .iter()
            .map(|e| {
                (
                    self.node_name(e.source),
                    self.node_name(e.target),
                    self.strings.text(e.rpctype),
                    e.weight,
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The raw name of a node: the microservice, with `_<interface>` for rpc targets.
    pub fn node_name(&self, (ms, iface): NodeKey) -> String {
        if iface == NONE {
            self.strings.text(ms)
        } else {
            format!("{}_{}", self.strings.text(ms), self.strings.text(iface))
        }
    }

    /// A raw graph with raw names, no labels, nodes and edges sorted by name.
    pub fn raw_call_graph(&self, g: &RawGraph, num: u64) -> CallGraph {
        let mut nodes: Vec<String> = Vec::new();
        let mut edges: Vec<Edge> = g
            .iter()
            .map(|e| {
                let (s, t) = (self.node_name(e.source), self.node_name(e.target));
                nodes.push(s.clone());
                nodes.push(t.clone());
                Edge {
                    source: s,
                    target: t,
                    weight: e.weight,
                    rpctype: self.strings.text(e.rpctype),
                    rpcid: None,
                }
            })
            .collect();
        nodes.sort();
        nodes.dedup();
        edges.sort();
        CallGraph {
            nodes: nodes
                .into_iter()
                .map(|name| Node { name, label: None })
                .collect(),
            edges,
            num,
        }
    }

    /// Every service's graphs (all of them, before the 90 % rule) with raw names.
    pub fn raw_graphs(&self) -> BTreeMap<String, Vec<CallGraph>> {
        self.sorted()
            .into_iter()
            .map(|s| {
                let gs = s
                    .graphs
                    .iter()
                    .map(|(g, n)| self.raw_call_graph(g, *n))
                    .collect();
                (s.name, gs)
            })
            .collect()
    }
}
