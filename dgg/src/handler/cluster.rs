//! Clusters of services: a Weisfeiler–Lehman subtree kernel over labelled dependency graphs,
//! then k-means on the kernel's normalized feature vectors, with `k` chosen by the silhouette.
//!
//! The reference uses grakel's NSPDK kernel and scikit-learn's k-means on rows of the kernel
//! matrix. WL is used here instead: it also compares labelled neighbourhoods (node labels, call
//! types on edges, both directions) and its feature vectors are explicit and sparse, so k-means
//! and the silhouette work on them directly in O(services × features). Feature vectors are
//! L2-normalized, which is the kernel's `normalize=True`.

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::graph::DiGraph;
use petgraph::visit::EdgeRef;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

/// A labelled directed graph for the kernel: a node's weight is its label, an edge's weight its
/// label (the call type). Node indices fix the order in which new WL labels are numbered.
pub type KernelGraph = DiGraph<u32, u32>;

/// A sparse unit vector: sorted `(feature, value)`.
pub type Sparse = Vec<(u32, f64)>;

/// A WL signature: a node's label and its sorted (direction, edge label, neighbour label)s.
type Signature = (u32, Vec<(u8, u32, u32)>);

/// WL feature vectors of `graphs` after `iterations` refinements, L2-normalized.
pub fn wl_features(graphs: &[KernelGraph], iterations: usize) -> Vec<Sparse> {
    let mut dict: FxHashMap<Signature, u32> = FxHashMap::default();
    let mut counts: Vec<FxHashMap<u32, f64>> = vec![FxHashMap::default(); graphs.len()];
    let mut current: Vec<Vec<u32>> = Vec::with_capacity(graphs.len());
    for (g, c) in graphs.iter().zip(counts.iter_mut()) {
        let labels: Vec<u32> = g
            .node_weights()
            .map(|&l| {
                let n = dict.len() as u32;
                *dict.entry((l, Vec::new())).or_insert(n)
            })
            .collect();
        for &l in &labels {
            *c.entry(l).or_default() += 1.0;
        }
        current.push(labels);
    }
    for _ in 0..iterations {
        for ((g, labels), c) in graphs.iter().zip(current.iter_mut()).zip(counts.iter_mut()) {
            // A node's neighbourhood: out-edges then in-edges (a self-loop is both), sorted.
            let next: Vec<u32> = g
                .node_indices()
                .map(|n| {
                    let out = g
                        .edges_directed(n, Outgoing)
                        .map(|e| (0u8, *e.weight(), labels[e.target().index()]));
                    let inc = g
                        .edges_directed(n, Incoming)
                        .map(|e| (1u8, *e.weight(), labels[e.source().index()]));
                    let mut sig: Vec<(u8, u32, u32)> = out.chain(inc).collect();
                    sig.sort_unstable();
                    let id = dict.len() as u32;
                    *dict.entry((labels[n.index()], sig)).or_insert(id)
                })
                .collect();
            for &l in &next {
                *c.entry(l).or_default() += 1.0;
            }
            *labels = next;
        }
    }
    counts
        .into_iter()
        .map(|c| {
            let mut v: Sparse = c.into_iter().collect();
            v.sort_unstable_by_key(|x| x.0);
            let norm = v.iter().map(|x| x.1 * x.1).sum::<f64>().sqrt();
            if norm > 0.0 {
                for x in &mut v {
                    x.1 /= norm;
                }
            }
            v
        })
        .collect()
}

fn dot(a: &Sparse, b: &Sparse) -> f64 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

fn sq_dist_to(x: &Sparse, c: &[f64], c_norm2: f64) -> f64 {
    let x2: f64 = x.iter().map(|v| v.1 * v.1).sum();
    let xc: f64 = x.iter().map(|&(f, v)| v * c[f as usize]).sum();
    (x2 - 2.0 * xc + c_norm2).max(0.0)
}

/// One k-means run (k-means++ seeding, Lloyd iterations): assignments and inertia.
fn kmeans_once(x: &[Sparse], dim: usize, k: usize, rng: &mut ChaCha8Rng) -> (Vec<usize>, f64) {
    let n = x.len();
    let mut centers: Vec<Vec<f64>> = Vec::with_capacity(k);
    let dense = |s: &Sparse| {
        let mut v = vec![0.0; dim];
        for &(f, val) in s {
            v[f as usize] = val;
        }
        v
    };
    centers.push(dense(&x[rng.random_range(0..n)]));
    let mut d2: Vec<f64> = vec![f64::INFINITY; n];
    while centers.len() < k {
        let last = centers
            .last()
            .map(|c| (c, c.iter().map(|v| v * v).sum::<f64>()));
        if let Some((c, c2)) = last {
            for (d, xi) in d2.iter_mut().zip(x) {
                *d = d.min(sq_dist_to(xi, c, c2));
            }
        }
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f64>() * total;
            d2.iter()
                .position(|&d| {
                    r -= d;
                    r < 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.random_range(0..n)
        };
        centers.push(dense(&x[pick]));
    }
    let mut assign = vec![usize::MAX; n];
    let mut inertia = 0.0;
    for _ in 0..100 {
        let norms: Vec<f64> = centers
            .iter()
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect();
        let mut changed = false;
        inertia = 0.0;
        for (i, xi) in x.iter().enumerate() {
            let (best, d) = (0..k)
                .map(|j| (j, sq_dist_to(xi, &centers[j], norms[j])))
                .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
            inertia += d;
            if assign[i] != best {
                assign[i] = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = vec![vec![0.0; dim]; k];
        let mut sizes = vec![0usize; k];
        for (xi, &a) in x.iter().zip(&assign) {
            sizes[a] += 1;
            for &(f, v) in xi {
                sums[a][f as usize] += v;
            }
        }
        for j in 0..k {
            if sizes[j] > 0 {
                centers[j] = sums[j].iter().map(|s| s / sizes[j] as f64).collect();
            } else {
                // An empty cluster takes the point farthest from its center.
                let far = (0..n)
                    .map(|i| (i, sq_dist_to(&x[i], &centers[assign[i]], norms[assign[i]])))
                    .fold((0, -1.0), |a, b| if b.1 > a.1 { b } else { a })
                    .0;
                centers[j] = dense(&x[far]);
            }
        }
    }
    (assign, inertia)
}

/// The best of `runs` k-means runs.
pub fn kmeans(x: &[Sparse], k: usize, runs: usize, seed: u64) -> Vec<usize> {
    let dim = x
        .iter()
        .flat_map(|v| v.iter().map(|f| f.0 as usize + 1))
        .max()
        .unwrap_or(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut best: Option<(Vec<usize>, f64)> = None;
    for _ in 0..runs.max(1) {
        let (a, inertia) = kmeans_once(x, dim, k.min(x.len()).max(1), &mut rng);
        if best.as_ref().is_none_or(|b| inertia < b.1 - 1e-12) {
            best = Some((a, inertia));
        }
    }
    best.map(|b| b.0).unwrap_or_default()
}

/// Mean silhouette of an assignment, from a distance matrix (row-major, `n × n`).
pub fn silhouette(dist: &[f32], n: usize, assign: &[usize], k: usize) -> f64 {
    let mut total = 0.0;
    let mut sizes = vec![0usize; k];
    for &a in assign {
        sizes[a] += 1;
    }
    for i in 0..n {
        let mut sums = vec![0.0f64; k];
        for j in 0..n {
            sums[assign[j]] += f64::from(dist[i * n + j]);
        }
        let own = assign[i];
        if sizes[own] <= 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            let m = a.max(b);
            if m > 0.0 {
                total += (b - a) / m;
            }
        }
    }
    total / n as f64
}

/// The outcome of clustering.
#[derive(Clone, Debug)]
pub struct Clustering {
    /// Cluster of each input graph.
    pub assign: Vec<usize>,
    /// Number of clusters.
    pub k: usize,
    /// Mean silhouette of the chosen `k` (0 when `k` was given or there are too few services).
    pub silhouette: f64,
}

/// Clusters `graphs`: `k` given, or the `k` in `2..=20` (at most `n − 1`) with the best
/// silhouette.
pub fn cluster(graphs: &[KernelGraph], k: Option<usize>, seed: u64) -> Clustering {
    let n = graphs.len();
    let x = wl_features(graphs, 3);
    if let Some(k) = k {
        let k = k.clamp(1, n.max(1));
        return Clustering {
            assign: kmeans(&x, k, 10, seed),
            k,
            silhouette: 0.0,
        };
    }
    if n < 3 {
        return Clustering {
            assign: vec![0; n],
            k: 1,
            silhouette: 0.0,
        };
    }
    let mut dist = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d = (2.0 - 2.0 * dot(&x[i], &x[j])).max(0.0).sqrt() as f32;
            dist[i * n + j] = d;
            dist[j * n + i] = d;
        }
    }
    let mut best = Clustering {
        assign: vec![0; n],
        k: 1,
        silhouette: f64::NEG_INFINITY,
    };
    for k in 2..=20usize.min(n - 1) {
        let assign = kmeans(&x, k, 4, seed);
        let s = silhouette(&dist, n, &assign, k);
        if s > best.silhouette + 1e-12 {
            best = Clustering {
                assign,
                k,
                silhouette: s,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(len: u32, label: u32) -> KernelGraph {
        let mut g = KernelGraph::default();
        for _ in 0..len {
            g.add_node(label);
        }
        g.extend_with_edges((1..len).map(|i| (i - 1, i, 0)));
        g
    }

    #[test]
    fn separates_obvious_groups() {
        let mut gs = Vec::new();
        for _ in 0..5 {
            gs.push(chain(2, 0));
        }
        for _ in 0..5 {
            gs.push(chain(6, 1));
        }
        let c = cluster(&gs, None, 1);
        assert_eq!(c.k, 2);
        assert!(c.assign[..5].iter().all(|&a| a == c.assign[0]));
        assert!(c.assign[5..].iter().all(|&a| a == c.assign[5]));
        assert_ne!(c.assign[0], c.assign[5]);
    }
}
