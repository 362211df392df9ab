//! The graph generator: an empirical random graph model per service, sampled breadth-first.
//!
//! For a requested number `n` of call graphs, each cluster gets its share of `n` by the traces
//! its services cover (`top90_trace_num`, largest-remainder rounding so the shares add up to
//! `n`); each query of a cluster picks a service by the same trace counts and expands a call
//! graph from `USER`: every (node, depth) draws its whole child set from the service's model,
//! conditioned on its siblings when that sibling context was seen, and a node name expands only
//! once. Identical graphs are merged with a count `num`, the most frequent graphs covering 90 %
//! of the queries are kept, and their union is the cluster's dependency graph.
//!
//! Everything is drawn from one ChaCha stream per cluster seeded from `seed` and the cluster
//! number, so the same input and seed give byte-identical output.

pub mod model;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::dataset::{Dataset, load_dataset};
use crate::error::{DggError, Result};
use crate::graph::{CallGraph, Edge, Label, Node, USER, top90};
use crate::json;
use model::{Names, ServiceModel};

/// The models of one cluster.
#[derive(Debug)]
struct ClusterModel {
    names: Names,
    /// (service name, weight, model); weights are `top90_trace_num`.
    services: Vec<(String, u64, ServiceModel)>,
    cum: Vec<u64>,
    user: u32,
    labels: FxHashMap<u32, Label>,
}

/// Which graphs the 90 % rule keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// The most frequent graphs of each cluster covering 90 % of its queries (the reference).
    PerCluster,
    /// The most frequent graphs of each service covering 90 % of its queries (how the data
    /// handler cut the real graphs), merged per cluster.
    PerService,
    /// Every distinct graph.
    None,
}

/// The generator: models of every cluster of a dataset.
#[derive(Debug)]
pub struct Generator {
    clusters: BTreeMap<u32, ClusterModel>,
    /// What was skipped while building the models.
    pub warnings: Vec<String>,
}

/// The outcome for one cluster.
#[derive(Clone, Debug)]
pub struct GeneratedCluster {
    /// Cluster number (`type{K}`).
    pub cluster: u32,
    /// Queries drawn for this cluster.
    pub drawn: u64,
    /// Distinct graphs among them.
    pub distinct: usize,
    /// The kept graphs (most frequent first, covering 90 % of the queries), with `num`.
    pub graphs: Vec<CallGraph>,
}

/// One generated edge, with interned names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GenEdge {
    rpcid: String,
    um: u32,
    dm: u32,
    time: u32,
    rpctype: u32,
}

impl Generator {
    /// Loads a handler output folder and builds the models of the clusters in `types` (all when
    /// `None`).
    pub fn load(root: &Path, types: Option<&[u32]>) -> Result<Generator> {
        let ds = load_dataset(root, types)?;
        Ok(Generator::from_dataset(&ds))
    }

    /// Builds the models from a loaded dataset.
    pub fn from_dataset(ds: &Dataset) -> Generator {
        let mut warnings = ds.warnings.clone();
        let mut clusters: BTreeMap<u32, ClusterModel> = BTreeMap::new();
        for svc in &ds.services {
            let cm = clusters.entry(svc.info.label).or_insert_with(|| {
                let mut names = Names::default();
                let user = names.intern(USER);
                ClusterModel {
                    names,
                    services: Vec::new(),
                    cum: Vec::new(),
                    user,
                    labels: FxHashMap::default(),
                }
            });
            let model = ServiceModel::build(&svc.graphs, &mut cm.names);
            if !model.nodes.contains_key(&(cm.user, 1)) {
                warnings.push(format!(
                    "service {}: no call from USER; service skipped",
                    svc.info.service
                ));
                continue;
            }
            for g in &svc.graphs {
                for n in &g.nodes {
                    if let Some(l) = n.label {
                        let id = cm.names.intern(&n.name);
                        cm.labels.insert(id, l);
                    }
                }
            }
            cm.services.push((
                svc.info.service.clone(),
                svc.info.top90_trace_num.max(1),
                model,
            ));
        }
        clusters.retain(|_, c| !c.services.is_empty());
        for c in clusters.values_mut() {
            let mut total = 0;
            c.cum = c
                .services
                .iter()
                .map(|s| {
                    total += s.1;
                    total
                })
                .collect();
        }
        Generator { clusters, warnings }
    }

    /// The clusters that have a model.
    pub fn clusters(&self) -> Vec<u32> {
        self.clusters.keys().copied().collect()
    }

    /// Draws `n` call graphs over all clusters and keeps each service's most frequent ones
    /// ([`Filter::PerService`]).
    pub fn generate(&self, n: u64, seed: u64) -> Result<Vec<GeneratedCluster>> {
        self.generate_filtered(n, seed, Filter::PerService)
    }

    /// Like [`Generator::generate`], with the 90 % filter of choice.
    pub fn generate_filtered(
        &self,
        n: u64,
        seed: u64,
        filter: Filter,
    ) -> Result<Vec<GeneratedCluster>> {
        if n == 0 {
            return Err(DggError::InvalidArgument {
                name: "--n",
                msg: "must be at least 1".into(),
            });
        }
        let weights: Vec<(u32, u64)> = self
            .clusters
            .iter()
            .map(|(&k, c)| (k, c.cum.last().copied().unwrap_or(0)))
            .collect();
        let counts = split_by_weight(n, &weights);
        let mut out = Vec::new();
        for (k, count) in counts {
            if let Some(cm) = self.clusters.get(&k) {
                out.push(generate_cluster(k, cm, count, seed, filter));
            }
        }
        Ok(out)
    }
}

/// Splits `n` in proportion to the weights, largest remainder first (ties by cluster).
fn split_by_weight(n: u64, weights: &[(u32, u64)]) -> Vec<(u32, u64)> {
    let total: u128 = weights
        .iter()
        .map(|&(_, w)| u128::from(w))
        .sum::<u128>()
        .max(1);
    let mut parts: Vec<(u32, u64, u128)> = weights
        .iter()
        .map(|&(k, w)| {
            let x = u128::from(n) * u128::from(w);
            (k, (x / total) as u64, x % total)
        })
        .collect();
    let mut left = n - parts.iter().map(|p| p.1).sum::<u64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| {
        parts[b]
            .2
            .cmp(&parts[a].2)
            .then(parts[a].0.cmp(&parts[b].0))
    });
    for i in order {
        if left == 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts.into_iter().map(|(k, c, _)| (k, c)).collect()
}

fn cluster_rng(seed: u64, cluster: u32) -> ChaCha8Rng {
    let mix = u64::from(cluster)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ChaCha8Rng::seed_from_u64(seed ^ mix)
}

fn generate_cluster(
    k: u32,
    cm: &ClusterModel,
    count: u64,
    seed: u64,
    filter: Filter,
) -> GeneratedCluster {
    let mut rng = cluster_rng(seed, k);
    let total = cm.cum.last().copied().unwrap_or(0);
    // Per service: graph → (count, first draw).
    let mut per_service: Vec<FxHashMap<Vec<GenEdge>, (u64, u64)>> =
        vec![FxHashMap::default(); cm.services.len()];
    for draw in 0..count {
        let x = rng.random_range(0..total);
        let s = cm
            .cum
            .partition_point(|&c| c <= x)
            .min(cm.services.len() - 1);
        let edges = expand(cm, &cm.services[s].2, &mut rng);
        per_service[s].entry(edges).or_insert((0, draw)).0 += 1;
    }
    let mut seen: FxHashMap<Vec<GenEdge>, (u64, u64)> = FxHashMap::default();
    let mut distinct_per_service = 0;
    for graphs in per_service {
        distinct_per_service += graphs.len();
        let mut list: Vec<(Vec<GenEdge>, (u64, u64))> = graphs.into_iter().collect();
        list.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
        if filter == Filter::PerService {
            let nums: Vec<u64> = list.iter().map(|g| g.1.0).collect();
            list.truncate(top90(&nums, false).len());
        }
        for (g, (c, first)) in list {
            let slot = seen.entry(g).or_insert((0, first));
            slot.0 += c;
            slot.1 = slot.1.min(first);
        }
    }
    let distinct = if filter == Filter::PerService {
        distinct_per_service
    } else {
        seen.len()
    };
    let mut all: Vec<(Vec<GenEdge>, u64, u64)> =
        seen.into_iter().map(|(e, (c, o))| (e, c, o)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let nums: Vec<u64> = all.iter().map(|a| a.1).collect();
    let keep = if filter == Filter::PerCluster {
        top90(&nums, false).len()
    } else {
        nums.len()
    };
    let graphs = all
        .into_iter()
        .take(keep)
        .map(|(e, num, _)| to_call_graph(cm, &e, num))
        .collect();
    GeneratedCluster {
        cluster: k,
        drawn: count,
        distinct,
        graphs,
    }
}

/// Expands one call graph breadth-first from `USER`.
///
/// Hand-rolled rather than a petgraph traversal: the graph does not exist yet (each node's
/// children come from a draw), the output is the edge list itself (the key that merges
/// identical graphs), and this runs for every query (about 0.5 µs per graph), so a petgraph
/// graph per draw would only add allocations.
fn expand(cm: &ClusterModel, model: &ServiceModel, rng: &mut ChaCha8Rng) -> Vec<GenEdge> {
    let mut edges = Vec::new();
    let mut expanded: FxHashSet<u32> = FxHashSet::default();
    // (node, depth, rpcid, siblings)
    let mut queue: VecDeque<(u32, u32, String, Vec<u32>)> = VecDeque::new();
    expanded.insert(cm.user);
    queue.push_back((cm.user, 1, String::new(), Vec::new()));
    while let Some((node, depth, rpcid, siblings)) = queue.pop_front() {
        let Some(dist) = model.nodes.get(&(node, depth)) else {
            continue;
        };
        let choice = dist.by_siblings.get(&siblings).unwrap_or(&dist.marginal);
        let total = choice.total();
        if total == 0 {
            continue;
        }
        let Some(set) = choice.pick(rng.random_range(0..total)) else {
            continue;
        };
        let set = &dist.sets[set as usize];
        let mut names: Vec<u32> = set.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        for (i, c) in set.iter().enumerate() {
            let id = if depth == 1 {
                if i == 0 {
                    "0".to_string()
                } else {
                    i.to_string()
                }
            } else {
                format!("{rpcid}.{}", i + 1)
            };
            edges.push(GenEdge {
                rpcid: id.clone(),
                um: node,
                dm: c.name,
                time: c.time,
                rpctype: c.rpctype,
            });
            if expanded.insert(c.name) {
                let sib: Vec<u32> = if names.len() > 1 {
                    names.iter().copied().filter(|&n| n != c.name).collect()
                } else {
                    Vec::new()
                };
                queue.push_back((c.name, depth + 1, id, sib));
            }
        }
    }
    edges
}

fn to_call_graph(cm: &ClusterModel, edges: &[GenEdge], num: u64) -> CallGraph {
    let mut nodes: Vec<Node> = Vec::new();
    let mut listed: FxHashSet<u32> = FxHashSet::default();
    let mut out = Vec::with_capacity(edges.len());
    for e in edges {
        for id in [e.um, e.dm] {
            if listed.insert(id) {
                let label = if id == cm.user {
                    Some(Label::Relay)
                } else {
                    cm.labels.get(&id).copied()
                };
                nodes.push(Node {
                    name: cm.names.name(id).to_string(),
                    label,
                });
            }
        }
        out.push(Edge {
            source: cm.names.name(e.um).to_string(),
            target: cm.names.name(e.dm).to_string(),
            weight: e.time,
            rpctype: cm.names.name(e.rpctype).to_string(),
            rpcid: Some(e.rpcid.clone()),
        });
    }
    CallGraph {
        nodes,
        edges: out,
        num,
    }
}

/// The union of `graphs` (edges keyed by source, target and call type, maximum weight), with
/// `num` the sum of theirs; nodes and edges sorted by name.
///
/// A `BTreeMap` keyed by (source, target, call type) rather than a petgraph graph: it is the
/// union, the maximum and the sorted output order at once, and it keeps parallel edges of
/// different call types apart (a `GraphMap` keys edges by their ends only and iterates in
/// insertion order, so it would need a map per edge and a sort afterwards).
pub fn dependency_graph(graphs: &[CallGraph]) -> CallGraph {
    let mut nodes: BTreeMap<&str, Option<Label>> = BTreeMap::new();
    let mut edges: BTreeMap<(&str, &str, &str), u32> = BTreeMap::new();
    for g in graphs {
        for n in &g.nodes {
            let slot = nodes.entry(n.name.as_str()).or_insert(None);
            if slot.is_none() {
                *slot = n.label;
            }
        }
        for e in &g.edges {
            let w = edges
                .entry((e.source.as_str(), e.target.as_str(), e.rpctype.as_str()))
                .or_insert(0);
            *w = (*w).max(e.weight);
        }
    }
    CallGraph {
        nodes: nodes
            .into_iter()
            .map(|(n, label)| Node {
                name: n.to_string(),
                label,
            })
            .collect(),
        edges: edges
            .into_iter()
            .map(|((s, t, r), weight)| Edge {
                source: s.to_string(),
                target: t.to_string(),
                weight,
                rpctype: r.to_string(),
                rpcid: None,
            })
            .collect(),
        num: graphs.iter().map(|g| g.num).sum(),
    }
}

/// Writes `out/type{K}/graph{N}.json` (generated format) and `out/type{K}/dependency_graph.json`
/// (real format) for every cluster.
pub fn write_output(out: &Path, clusters: &[GeneratedCluster]) -> Result<()> {
    for c in clusters {
        let dir = out.join(format!("type{}", c.cluster));
        for (i, g) in c.graphs.iter().enumerate() {
            json::write_file(
                &dir.join(format!("graph{}.json", i + 1)),
                &json::generated_json(g),
            )?;
        }
        json::write_file(
            &dir.join("dependency_graph.json"),
            &json::real_json(&dependency_graph(&c.graphs)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_adds_up() {
        let parts = split_by_weight(10, &[(0, 1), (1, 1), (2, 1)]);
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), 10);
        assert_eq!(parts, vec![(0, 4), (1, 3), (2, 3)]);
        assert_eq!(split_by_weight(5, &[(3, 0), (4, 9)]), vec![(3, 0), (4, 5)]);
    }
}
