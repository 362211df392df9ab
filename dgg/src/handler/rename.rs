//! Renaming microservices by role, depth and popularity: `MS_<label>[+<depth>].<rank>` and
//! interfaces `func<k>`, as the reference does.
//!
//! Services are visited cluster by cluster, each cluster's services by descending trace count.
//! A microservice or interface keeps the name it got in the first service that contains it.
//! In a service, the not-yet-named microservices are grouped by label (and by depth for
//! `relay`/`normal`, the breadth-first depth in the service's dependency graph, `USER` at 1) and
//! ranked by how many times they occur in the kept call graphs (each graph counted `num` times),
//! skipping ranks that already-named microservices of the same group in this service hold.
//! Interfaces are ranked the same way. Ties are broken by the original name (the reference
//! keeps first-seen order).

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use super::corpus::{Corpus, KeptService};
use super::intern::NONE;
use super::trace::NodeKey;
use crate::digraph::Topology;
use crate::graph::{CallGraph, Edge, Label, Node};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Group {
    label: Label,
    depth: u32,
}

/// The names given so far.
#[derive(Debug, Default)]
pub struct Renamer {
    names: FxHashMap<u32, (Group, u32)>,
    funcs: FxHashMap<u32, u32>,
}

impl Renamer {
    /// Names what is new in `svc` (its kept graphs) and returns the graphs renamed, nodes and
    /// edges sorted by name.
    pub fn rename_service(
        &mut self,
        corpus: &Corpus,
        labels: &FxHashMap<u32, Label>,
        svc: &KeptService,
    ) -> Vec<CallGraph> {
        let user = corpus.strings.get(b"USER");
        let label = |ms: u32| labels.get(&ms).copied().unwrap_or(Label::Normal);
        let mut node_num: BTreeMap<u32, u64> = BTreeMap::new();
        let mut func_num: BTreeMap<u32, u64> = BTreeMap::new();
        // The service's dependency graph: the union of its kept graphs.
        let mut deps: Topology<NodeKey> = Topology::default();
        for (g, num) in &svc.graphs {
            let mut nodes: BTreeSet<NodeKey> = BTreeSet::new();
            for e in g {
                nodes.insert(e.source);
                nodes.insert(e.target);
                deps.add_edge(e.source, e.target);
            }
            for (ms, iface) in nodes {
                *node_num.entry(ms).or_default() += num;
                if iface != NONE {
                    *func_num.entry(iface).or_default() += num;
                }
            }
        }
        let depth = ms_depths(&deps, user);
        // Microservices.
        let mut used: BTreeMap<Group, BTreeSet<u32>> = BTreeMap::new();
        let mut fresh: BTreeMap<Group, Vec<u32>> = BTreeMap::new();
        for &ms in node_num.keys() {
            if Some(ms) == user {
                continue;
            }
            match self.names.get(&ms) {
                Some(&(group, idx)) => {
                    used.entry(group).or_default().insert(idx);
                }
                None => {
                    let l = label(ms);
                    let d = if l.has_depth() {
                        depth.get(&ms).copied().unwrap_or(2)
                    } else {
                        0
                    };
                    fresh
                        .entry(Group { label: l, depth: d })
                        .or_default()
                        .push(ms);
                }
            }
        }
        for (group, mut list) in fresh {
            list.sort_by_cached_key(|&ms| {
                (
                    std::cmp::Reverse(node_num[&ms]),
                    corpus.strings.bytes(ms).to_vec(),
                )
            });
            let taken = used.remove(&group).unwrap_or_default();
            let mut idx = 1;
            for ms in list {
                while taken.contains(&idx) {
                    idx += 1;
                }
                self.names.insert(ms, (group, idx));
                idx += 1;
            }
        }
        // Interfaces.
        let taken: BTreeSet<u32> = func_num
            .keys()
            .filter_map(|f| self.funcs.get(f).copied())
            .collect();
        let mut list: Vec<u32> = func_num
            .keys()
            .copied()
            .filter(|f| !self.funcs.contains_key(f))
            .collect();
        list.sort_by_cached_key(|&f| {
            (
                std::cmp::Reverse(func_num[&f]),
                corpus.strings.bytes(f).to_vec(),
            )
        });
        let mut idx = 1;
        for f in list {
            while taken.contains(&idx) {
                idx += 1;
            }
            self.funcs.insert(f, idx);
            idx += 1;
        }
        svc.graphs
            .iter()
            .map(|(g, num)| self.render(corpus, labels, user, g, *num))
            .collect()
    }

    fn name_of(&self, user: Option<u32>, (ms, iface): NodeKey) -> String {
        let base = match self.names.get(&ms) {
            _ if Some(ms) == user => "USER".to_string(),
            Some((g, idx)) if g.label.has_depth() => {
                format!("MS_{}+{}.{idx}", g.label.as_str(), g.depth)
            }
            Some((g, idx)) => format!("MS_{}.{idx}", g.label.as_str()),
            None => format!("MS_unnamed.{ms}"),
        };
        match self.funcs.get(&iface) {
            Some(k) if iface != NONE => format!("{base}_func{k}"),
            _ => base,
        }
    }

    fn render(
        &self,
        corpus: &Corpus,
        labels: &FxHashMap<u32, Label>,
        user: Option<u32>,
        g: &[super::trace::RawEdge],
        num: u64,
    ) -> CallGraph {
        let mut nodes: BTreeMap<String, Option<Label>> = BTreeMap::new();
        let mut edges: Vec<Edge> = Vec::with_capacity(g.len());
        for e in g {
            let (s, t) = (self.name_of(user, e.source), self.name_of(user, e.target));
            nodes.insert(s.clone(), labels.get(&e.source.0).copied());
            nodes.insert(t.clone(), labels.get(&e.target.0).copied());
            edges.push(Edge {
                source: s,
                target: t,
                weight: e.weight,
                rpctype: corpus.strings.text(e.rpctype),
                rpcid: None,
            });
        }
        edges.sort();
        let nodes = nodes
            .into_iter()
            .map(|(name, label)| Node { name, label })
            .collect();
        CallGraph { nodes, edges, num }
    }
}

/// Breadth-first depth per microservice (the smallest over its interfaces), `USER` at 1.
fn ms_depths(deps: &Topology<NodeKey>, user: Option<u32>) -> FxHashMap<u32, u32> {
    let mut depth: FxHashMap<u32, u32> = FxHashMap::default();
    let Some(user) = user else { return depth };
    for ((ms, _), d) in deps.bfs_depths((user, NONE)) {
        // Visiting order is by depth, so the first interface seen is the shallowest.
        depth.entry(ms).or_insert(d);
    }
    depth
}
