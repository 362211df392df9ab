//! The empirical random graph model of one service, keyed by (node, depth).
//!
//! For every node of every real call graph the model records the node's whole child set (each
//! child with its label, repeat count and call type; the empty set when the node made no call),
//! weighted by the graph's trace count `num`, both overall and conditioned on the node's
//! siblings (the other callees of its parent). Drawing is a binary search in cumulated weights.

use rustc_hash::FxHashMap;

use crate::graph::{CallGraph, Label};

/// Interned node names of one cluster.
#[derive(Debug, Default)]
pub struct Names {
    ids: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    /// The id of `name`, interning it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        id
    }

    /// The name of `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// One callee in a child set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Child {
    /// Callee name id.
    pub name: u32,
    /// Callee label.
    pub label: Option<Label>,
    /// Repeat count (the edge weight).
    pub time: u32,
    /// Call type id (see [`Names`]; call types share the name table).
    pub rpctype: u32,
}

/// Cumulated weights over child-set indices.
#[derive(Debug, Default)]
pub struct Choice {
    sets: Vec<u32>,
    cum: Vec<u64>,
}

impl Choice {
    fn add(&mut self, set: u32, weight: u64) {
        // Entries are merged later; keep raw pairs until `finish`.
        self.sets.push(set);
        self.cum.push(weight);
    }

    fn finish(&mut self) {
        let mut merged: Vec<(u32, u64)> = Vec::with_capacity(self.sets.len());
        let mut pairs: Vec<(u32, u64)> = self
            .sets
            .iter()
            .copied()
            .zip(self.cum.iter().copied())
            .collect();
        pairs.sort_by_key(|&(s, _)| s);
        for (s, w) in pairs {
            match merged.last_mut() {
                Some((ls, lw)) if *ls == s => *lw += w,
                _ => merged.push((s, w)),
            }
        }
        self.sets = merged.iter().map(|&(s, _)| s).collect();
        let mut total = 0;
        self.cum = merged
            .iter()
            .map(|&(_, w)| {
                total += w;
                total
            })
            .collect();
    }

    /// Total weight.
    pub fn total(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// The set whose cumulated interval holds `x` (`x < total()`).
    pub fn pick(&self, x: u64) -> Option<u32> {
        let i = self.cum.partition_point(|&c| c <= x);
        self.sets.get(i).copied()
    }
}

/// What a (node, depth) calls.
#[derive(Debug, Default)]
pub struct NodeDist {
    /// Distinct child sets (children sorted by name).
    pub sets: Vec<Vec<Child>>,
    set_ids: FxHashMap<Vec<Child>, u32>,
    /// Over all occurrences.
    pub marginal: Choice,
    /// Conditioned on the sorted sibling name ids.
    pub by_siblings: FxHashMap<Vec<u32>, Choice>,
}

/// The model of one service.
#[derive(Debug, Default)]
pub struct ServiceModel {
    /// (node name id, depth) → distribution of child sets.
    pub nodes: FxHashMap<(u32, u32), NodeDist>,
}

impl ServiceModel {
    /// Builds the model of a service from its real call graphs.
    pub fn build(graphs: &[CallGraph], names: &mut Names) -> ServiceModel {
        let mut model = ServiceModel::default();
        for g in graphs {
            model.add_graph(g, names);
        }
        for dist in model.nodes.values_mut() {
            dist.marginal.finish();
            for c in dist.by_siblings.values_mut() {
                c.finish();
            }
            dist.set_ids = FxHashMap::default();
        }
        model
    }

    fn add_graph(&mut self, g: &CallGraph, names: &mut Names) {
        let depths = g.depths();
        let labels: FxHashMap<&str, Option<Label>> =
            g.nodes.iter().map(|n| (n.name.as_str(), n.label)).collect();
        let mut out: FxHashMap<&str, Vec<(&str, Child)>> = FxHashMap::default();
        let mut parent: FxHashMap<&str, &str> = FxHashMap::default();
        for e in &g.edges {
            let child = Child {
                name: names.intern(&e.target),
                label: labels.get(e.target.as_str()).copied().flatten(),
                time: e.weight,
                rpctype: names.intern(&e.rpctype),
            };
            out.entry(e.source.as_str())
                .or_default()
                .push((e.target.as_str(), child));
            // The sibling context is the parent that discovered the node breadth-first.
            let (ds, dt) = (depths.get(e.source.as_str()), depths.get(e.target.as_str()));
            if ds.zip(dt).is_some_and(|(a, b)| a + 1 == *b) {
                parent.entry(e.target.as_str()).or_insert(e.source.as_str());
            }
        }
        let mut kids: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        for (src, children) in out.iter_mut() {
            children.sort_by(|a, b| a.0.cmp(b.0).then(a.1.rpctype.cmp(&b.1.rpctype)));
            let mut ids: Vec<u32> = children.iter().map(|(_, c)| c.name).collect();
            ids.sort_unstable();
            ids.dedup();
            kids.insert(src, ids);
        }
        for (&node, &depth) in &depths {
            let set: Vec<Child> = out
                .remove(node)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, c)| c)
                .collect();
            let id = names.intern(node);
            let siblings: Vec<u32> = match parent.get(node).and_then(|p| kids.get(p)) {
                Some(ids) => ids.iter().copied().filter(|&k| k != id).collect(),
                None => Vec::new(),
            };
            let dist = self.nodes.entry((id, depth)).or_default();
            let n = dist.sets.len() as u32;
            let set_id = *dist.set_ids.entry(set.clone()).or_insert(n);
            if set_id == n {
                dist.sets.push(set);
            }
            dist.marginal.add(set_id, g.num);
            if !siblings.is_empty() {
                dist.by_siblings
                    .entry(siblings)
                    .or_default()
                    .add(set_id, g.num);
            }
        }
    }
}
