//! Call graphs as the rest of the crate sees them: named nodes with role labels, weighted and
//! typed edges, and the number of traces (or generated queries) that had exactly this shape.

use std::collections::BTreeMap;

use crate::digraph::Topology;

/// The name of the virtual caller of every entry call.
pub const USER: &str = "USER";

/// Role of a microservice (the reference's five node labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// Always calls downstream when it is called (and `USER`).
    Relay,
    /// Sometimes calls downstream, sometimes answers alone.
    Normal,
    /// Never calls downstream.
    Blackhole,
    /// A cache, reached by `mc` calls.
    Memcached,
    /// A database, reached by `db` calls.
    Database,
}

impl Label {
    /// All labels, in a fixed order (used for distributions).
    pub const ALL: [Label; 5] = [
        Label::Relay,
        Label::Normal,
        Label::Blackhole,
        Label::Memcached,
        Label::Database,
    ];

    /// The reference's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Relay => "relay",
            Label::Normal => "normal",
            Label::Blackhole => "blackhole",
            Label::Memcached => "Memcached",
            Label::Database => "database",
        }
    }

    /// Parses the reference's spelling; anything else is `None`.
    pub fn parse(s: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Whether renamed nodes with this label carry their depth (`MS_normal+2.1`).
    pub fn has_depth(self) -> bool {
        matches!(self, Label::Relay | Label::Normal)
    }
}

/// A node of a call graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// Microservice name, with `_func<k>` when it was called on an interface.
    pub name: String,
    /// Role label; `None` when the file had `null`, an empty or an unknown label.
    pub label: Option<Label>,
}

/// A call edge (all calls of one caller to one callee with one call type in one trace).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// Caller.
    pub source: String,
    /// Callee.
    pub target: String,
    /// How many times this call happened in one trace (the reference's `weight` or `time`).
    pub weight: u32,
    /// Call type (`rpc`, `http`, `mc`, `db`, `mq`, …).
    pub rpctype: String,
    /// Hierarchical call id of generated graphs (`0`, `0.1`, …); `None` for real graphs.
    pub rpcid: Option<String>,
}

/// A call graph with its multiplicity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallGraph {
    /// Nodes, with labels.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Number of traces (or generated queries) with exactly this graph.
    pub num: u64,
}

impl CallGraph {
    /// Label of `name`, if the graph lists it.
    pub fn label_of(&self, name: &str) -> Option<Label> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.label)
    }

    /// Breadth-first depth of every node reachable from [`USER`] (`USER` has depth 1, the entry
    /// microservice depth 2), in a sorted map.
    pub fn depths(&self) -> BTreeMap<&str, u32> {
        let edges = self.edges.iter();
        let g = Topology::from_edges(edges.map(|e| (e.source.as_str(), e.target.as_str())));
        g.bfs_depths(USER).into_iter().collect()
    }
}

/// Splits a node name into the microservice and its interface suffix
/// (`MS_normal+2.1_func3` → (`MS_normal+2.1`, `Some("func3")`)).
pub fn split_func(name: &str) -> (&str, Option<&str>) {
    match name.rfind("_func") {
        Some(i) if name[i + 5..].bytes().all(|b| b.is_ascii_digit()) && name.len() > i + 5 => {
            (&name[..i], Some(&name[i + 1..]))
        }
        _ => (name, None),
    }
}

/// Indices of the graphs that the reference's "90 %" rule keeps, given their counts: the most
/// frequent graphs, in descending order of count (ties by index), until their cumulated count
/// reaches 90 % of the total. `strict` selects `>` (the data handler's rule) instead of `>=`
/// (the generator's rule).
pub fn top90(nums: &[u64], strict: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nums.len()).collect();
    order.sort_by(|&a, &b| nums[b].cmp(&nums[a]).then(a.cmp(&b)));
    let total: u128 = nums.iter().map(|&n| u128::from(n)).sum();
    // 0.9 * total compared exactly in integers: 10 * cum vs 9 * total.
    let target = 9 * total;
    let mut cum: u128 = 0;
    let mut kept = Vec::new();
    for i in order {
        cum += u128::from(nums[i]);
        kept.push(i);
        let reached = if strict {
            10 * cum > target
        } else {
            10 * cum >= target
        };
        if reached {
            break;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_func_only_takes_numeric_suffix() {
        assert_eq!(
            split_func("MS_normal+2.1_func3"),
            ("MS_normal+2.1", Some("func3"))
        );
        assert_eq!(split_func("MS_Memcached.1"), ("MS_Memcached.1", None));
        assert_eq!(split_func("a_funcx"), ("a_funcx", None));
        assert_eq!(split_func("a_func"), ("a_func", None));
    }

    #[test]
    fn top90_rules() {
        // 50 + 40 = 90 of 100: reaches 90 % with >=, needs one more with >.
        let nums = [40, 50, 10];
        assert_eq!(top90(&nums, false), vec![1, 0]);
        assert_eq!(top90(&nums, true), vec![1, 0, 2]);
        assert!(top90(&[], true).is_empty());
    }
}
