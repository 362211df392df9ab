//! Fidelity: how close generated call graphs are to real ones, cluster by cluster.
//!
//! Every statistic weighs a graph by its `num` (traces for real graphs, queries for generated
//! ones), so each side describes the distribution of queries, not of distinct shapes.
//!
//! - Means per graph: edges, calls (edges times their repeat counts), nodes; the mean
//!   out-degree of callers (edges over nodes that call) and the share of repeated edges
//!   (weight > 1), both pooled over all graphs. Distance: relative error `|gen − real| / real`.
//! - Distributions: node depth (breadth-first from `USER`, `USER` excluded), node labels and
//!   call types. Distance: total variation `½ Σ |p − q|`.
//! - Sizes: edges, calls and nodes per graph. Distance: two-sample Kolmogorov–Smirnov statistic
//!   of the weighted empirical distributions.
//!
//! A cluster's `score` is the mean of all its distances (0 is a perfect match).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::graph::{CallGraph, USER};

/// Statistics of one set of call graphs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Distinct graphs.
    pub graphs: usize,
    /// Sum of `num`.
    pub weight: u64,
    /// Mean edges per graph.
    pub mean_edges: f64,
    /// Mean calls per graph (edges times repeat counts).
    pub mean_calls: f64,
    /// Mean nodes per graph.
    pub mean_nodes: f64,
    /// Mean out-degree of nodes that call.
    pub mean_out_degree: f64,
    /// Share of edges with weight > 1.
    pub repeated_edge_share: f64,
    /// Node depth → share of nodes.
    pub depth: BTreeMap<u32, f64>,
    /// Node label → share of nodes.
    pub labels: BTreeMap<String, f64>,
    /// Call type → share of edges.
    pub call_types: BTreeMap<String, f64>,
    #[serde(skip)]
    sizes: [Vec<(f64, f64)>; 3],
}

/// Real and generated statistics of one cluster and their distances.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterComparison {
    /// Cluster number.
    pub cluster: u32,
    /// Real graphs.
    pub real: Stats,
    /// Generated graphs.
    pub generated: Stats,
    /// Metric name → distance.
    pub distances: BTreeMap<String, f64>,
    /// Mean of the distances.
    pub score: f64,
}

/// Computes the statistics of `graphs`.
pub fn stats(graphs: &[CallGraph]) -> Stats {
    let mut s = Stats {
        graphs: graphs.len(),
        ..Stats::default()
    };
    let (mut w_sum, mut edges, mut calls, mut nodes, mut callers, mut repeated) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut depth: BTreeMap<u32, f64> = BTreeMap::new();
    let mut labels: BTreeMap<String, f64> = BTreeMap::new();
    let mut types: BTreeMap<String, f64> = BTreeMap::new();
    for g in graphs {
        let w = g.num as f64;
        s.weight += g.num;
        w_sum += w;
        let e = g.edges.len() as f64;
        let c: f64 = g.edges.iter().map(|e| f64::from(e.weight)).sum();
        let n = g.nodes.len() as f64;
        edges += w * e;
        calls += w * c;
        nodes += w * n;
        let mut sources: Vec<&str> = g.edges.iter().map(|e| e.source.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        callers += w * sources.len() as f64;
        repeated += w * g.edges.iter().filter(|e| e.weight > 1).count() as f64;
        for (name, d) in g.depths() {
            if name != USER {
                *depth.entry(d).or_default() += w;
            }
        }
        for node in g.nodes.iter().filter(|n| n.name != USER) {
            let l = node.label.map(|l| l.as_str()).unwrap_or("none");
            *labels.entry(l.to_string()).or_default() += w;
        }
        for edge in &g.edges {
            *types.entry(edge.rpctype.clone()).or_default() += w;
        }
        s.sizes[0].push((e, w));
        s.sizes[1].push((c, w));
        s.sizes[2].push((n, w));
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    s.mean_edges = div(edges, w_sum);
    s.mean_calls = div(calls, w_sum);
    s.mean_nodes = div(nodes, w_sum);
    s.mean_out_degree = div(edges, callers);
    s.repeated_edge_share = div(repeated, edges);
    s.depth = normalize(depth);
    s.labels = normalize(labels);
    s.call_types = normalize(types);
    s
}

fn normalize<K: Ord>(m: BTreeMap<K, f64>) -> BTreeMap<K, f64> {
    let total: f64 = m.values().sum();
    m.into_iter()
        .map(|(k, v)| (k, if total > 0.0 { v / total } else { 0.0 }))
        .collect()
}

/// Relative error `|g − r| / r` (`|g|` when `r` is 0).
pub fn relative_error(real: f64, generated: f64) -> f64 {
    if real == 0.0 {
        generated.abs()
    } else {
        (generated - real).abs() / real.abs()
    }
}

/// Total variation distance of two distributions over the same keys.
pub fn total_variation<K: Ord + Clone>(p: &BTreeMap<K, f64>, q: &BTreeMap<K, f64>) -> f64 {
    let mut keys: Vec<&K> = p.keys().chain(q.keys()).collect();
    keys.sort();
    keys.dedup();
    0.5 * keys
        .iter()
        .map(|k| (p.get(*k).unwrap_or(&0.0) - q.get(*k).unwrap_or(&0.0)).abs())
        .sum::<f64>()
}

/// Two-sample Kolmogorov–Smirnov statistic of weighted samples `(value, weight)`.
pub fn ks_statistic(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let cdf = |s: &[(f64, f64)]| {
        let mut v = s.to_vec();
        v.sort_by(|x, y| x.0.total_cmp(&y.0));
        let total: f64 = v.iter().map(|x| x.1).sum();
        (v, total)
    };
    let ((va, ta), (vb, tb)) = (cdf(a), cdf(b));
    if ta <= 0.0 || tb <= 0.0 {
        return if ta <= 0.0 && tb <= 0.0 { 0.0 } else { 1.0 };
    }
    let (mut i, mut j, mut fa, mut fb, mut d) = (0, 0, 0.0, 0.0, 0.0f64);
    while i < va.len() || j < vb.len() {
        let x = match (va.get(i), vb.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        while i < va.len() && va[i].0 <= x {
            fa += va[i].1;
            i += 1;
        }
        while j < vb.len() && vb[j].0 <= x {
            fb += vb[j].1;
            j += 1;
        }
        d = d.max((fa / ta - fb / tb).abs());
    }
    d
}

/// Compares real and generated graphs of one cluster.
pub fn compare_cluster(
    cluster: u32,
    real: &[CallGraph],
    generated: &[CallGraph],
) -> ClusterComparison {
    let (r, g) = (stats(real), stats(generated));
    let mut d = BTreeMap::new();
    d.insert(
        "mean_edges".to_string(),
        relative_error(r.mean_edges, g.mean_edges),
    );
    d.insert(
        "mean_calls".to_string(),
        relative_error(r.mean_calls, g.mean_calls),
    );
    d.insert(
        "mean_nodes".to_string(),
        relative_error(r.mean_nodes, g.mean_nodes),
    );
    d.insert(
        "mean_out_degree".to_string(),
        relative_error(r.mean_out_degree, g.mean_out_degree),
    );
    d.insert(
        "repeated_edge_share".to_string(),
        relative_error(r.repeated_edge_share, g.repeated_edge_share),
    );
    d.insert("depth_tv".to_string(), total_variation(&r.depth, &g.depth));
    d.insert(
        "labels_tv".to_string(),
        total_variation(&r.labels, &g.labels),
    );
    d.insert(
        "call_types_tv".to_string(),
        total_variation(&r.call_types, &g.call_types),
    );
    d.insert(
        "edges_ks".to_string(),
        ks_statistic(&r.sizes[0], &g.sizes[0]),
    );
    d.insert(
        "calls_ks".to_string(),
        ks_statistic(&r.sizes[1], &g.sizes[1]),
    );
    d.insert(
        "nodes_ks".to_string(),
        ks_statistic(&r.sizes[2], &g.sizes[2]),
    );
    let score = d.values().sum::<f64>() / d.len() as f64;
    ClusterComparison {
        cluster,
        real: r,
        generated: g,
        distances: d,
        score,
    }
}

/// Compares every cluster present on both sides.
pub fn compare_all(
    real: &BTreeMap<u32, Vec<CallGraph>>,
    generated: &BTreeMap<u32, Vec<CallGraph>>,
) -> Vec<ClusterComparison> {
    real.iter()
        .filter_map(|(k, r)| generated.get(k).map(|g| compare_cluster(*k, r, g)))
        .collect()
}

/// A plain-text table of comparisons (one block per cluster).
pub fn render_table(cmp: &[ClusterComparison]) -> String {
    let mut out = String::new();
    for c in cmp {
        out.push_str(&format!(
            "type{}  real: {} graphs ({} traces)  generated: {} graphs ({} queries)  score {:.4}\n",
            c.cluster,
            c.real.graphs,
            c.real.weight,
            c.generated.graphs,
            c.generated.weight,
            c.score
        ));
        let rows = [
            ("mean_edges", c.real.mean_edges, c.generated.mean_edges),
            ("mean_calls", c.real.mean_calls, c.generated.mean_calls),
            ("mean_nodes", c.real.mean_nodes, c.generated.mean_nodes),
            (
                "mean_out_degree",
                c.real.mean_out_degree,
                c.generated.mean_out_degree,
            ),
            (
                "repeated_edge_share",
                c.real.repeated_edge_share,
                c.generated.repeated_edge_share,
            ),
        ];
        for (name, r, g) in rows {
            let d = c.distances.get(name).copied().unwrap_or(0.0);
            out.push_str(&format!(
                "  {name:<20} real {r:>9.4}  gen {g:>9.4}  rel.err {d:.4}\n"
            ));
        }
        for name in [
            "depth_tv",
            "labels_tv",
            "call_types_tv",
            "edges_ks",
            "calls_ks",
            "nodes_ks",
        ] {
            let d = c.distances.get(name).copied().unwrap_or(0.0);
            out.push_str(&format!("  {name:<20} {d:.4}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_of_identical_sets_are_zero() {
        let g = crate::builtin::services().remove(0).graphs;
        let c = compare_cluster(0, &g, &g);
        assert!(c.distances.values().all(|&d| d == 0.0), "{:?}", c.distances);
    }

    #[test]
    fn ks_and_tv() {
        assert_eq!(ks_statistic(&[(1.0, 1.0)], &[(2.0, 1.0)]), 1.0);
        assert_eq!(ks_statistic(&[(1.0, 1.0), (2.0, 1.0)], &[(2.0, 1.0)]), 0.5);
        let p = BTreeMap::from([(1, 0.5), (2, 0.5)]);
        let q = BTreeMap::from([(1, 1.0)]);
        assert_eq!(total_variation(&p, &q), 0.5);
    }
}
