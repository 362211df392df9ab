//! A few compound LLM applications written for this project, as call graphs: the default
//! workload when no call-graph folder is given. They follow the reference's naming
//! (`MS_<label>[+<depth>].<rank>[_func<k>]`) but are not taken from any trace.

use crate::graph::{CallGraph, Edge, Label, Node, USER, split_func};

/// A built-in service and its call graphs.
#[derive(Clone, Debug)]
pub struct BuiltinService {
    /// Service name.
    pub name: &'static str,
    /// Call graphs, with `num` as relative frequencies.
    pub graphs: Vec<CallGraph>,
}

/// The label encoded in a reference-style name (`MS_normal+2.1_func1` → normal); `USER` is a
/// relay.
pub fn label_from_name(name: &str) -> Option<Label> {
    if name == USER {
        return Some(Label::Relay);
    }
    let base = split_func(name).0.strip_prefix("MS_")?;
    let end = base.find(['+', '.']).unwrap_or(base.len());
    Label::parse(&base[..end])
}

/// Builds a call graph from `(source, target, weight, rpctype)` edges, labels from the names.
pub fn graph(edges: &[(&str, &str, u32, &str)], num: u64) -> CallGraph {
    let mut nodes: Vec<Node> = Vec::new();
    for &(s, t, _, _) in edges {
        for name in [s, t] {
            if !nodes.iter().any(|n| n.name == name) {
                nodes.push(Node {
                    name: name.to_string(),
                    label: label_from_name(name),
                });
            }
        }
    }
    let edges = edges
        .iter()
        .map(|&(s, t, w, r)| Edge {
            source: s.to_string(),
            target: t.to_string(),
            weight: w,
            rpctype: r.to_string(),
            rpcid: None,
        })
        .collect();
    CallGraph { nodes, edges, num }
}

/// The built-in services.
pub fn services() -> Vec<BuiltinService> {
    vec![
        BuiltinService {
            // Retrieval-augmented chat: a gateway, a retriever with a cache and a vector store,
            // and an answer model. Cache hits skip the database.
            name: "rag_chat",
            graphs: vec![
                graph(
                    &[
                        (USER, "MS_relay+2.1", 1, "http"),
                        ("MS_relay+2.1", "MS_normal+3.1_func1", 1, "rpc"),
                        ("MS_normal+3.1_func1", "MS_Memcached.1", 1, "mc"),
                        ("MS_normal+3.1_func1", "MS_database.1", 1, "db"),
                        ("MS_relay+2.1", "MS_blackhole.1_func1", 1, "rpc"),
                    ],
                    60,
                ),
                graph(
                    &[
                        (USER, "MS_relay+2.1", 1, "http"),
                        ("MS_relay+2.1", "MS_normal+3.1_func1", 1, "rpc"),
                        ("MS_normal+3.1_func1", "MS_Memcached.1", 1, "mc"),
                        ("MS_relay+2.1", "MS_blackhole.1_func1", 1, "rpc"),
                    ],
                    40,
                ),
            ],
        },
        BuiltinService {
            // Coding agent: a planner calls a coder several times in one conversation, then a
            // reviewer; the coder runs tests through a tool model.
            name: "code_agent",
            graphs: vec![
                graph(
                    &[
                        (USER, "MS_normal+2.1_func1", 1, "http"),
                        ("MS_normal+2.1_func1", "MS_normal+3.1_func1", 3, "rpc"),
                        ("MS_normal+3.1_func1", "MS_blackhole.1_func1", 2, "rpc"),
                        ("MS_normal+2.1_func1", "MS_blackhole.2_func1", 1, "rpc"),
                    ],
                    50,
                ),
                graph(
                    &[
                        (USER, "MS_normal+2.1_func1", 1, "http"),
                        ("MS_normal+2.1_func1", "MS_normal+3.1_func2", 1, "rpc"),
                        ("MS_normal+2.1_func1", "MS_Memcached.1", 2, "mc"),
                    ],
                    30,
                ),
                graph(&[(USER, "MS_normal+2.1_func2", 1, "http")], 20),
            ],
        },
        BuiltinService {
            // Support triage: a classifier routes a ticket to an FAQ answerer or to an
            // escalation model that reads the customer's history from a database.
            name: "support_triage",
            graphs: vec![
                graph(
                    &[
                        (USER, "MS_relay+2.1", 1, "http"),
                        ("MS_relay+2.1", "MS_normal+3.1_func1", 1, "rpc"),
                        ("MS_normal+3.1_func1", "MS_blackhole.1_func1", 1, "rpc"),
                    ],
                    70,
                ),
                graph(
                    &[
                        (USER, "MS_relay+2.1", 1, "http"),
                        ("MS_relay+2.1", "MS_normal+3.1_func1", 1, "rpc"),
                        ("MS_normal+3.1_func1", "MS_normal+4.1_func1", 1, "rpc"),
                        ("MS_normal+4.1_func1", "MS_database.1", 2, "db"),
                        ("MS_normal+4.1_func1", "MS_blackhole.2", 1, "mq"),
                    ],
                    30,
                ),
            ],
        },
        BuiltinService {
            // Travel planner: fans out to a flight and a hotel model, each with its own cache,
            // and asks a summarizer twice (draft, then final).
            name: "travel_planner",
            graphs: vec![graph(
                &[
                    (USER, "MS_relay+2.1", 1, "http"),
                    ("MS_relay+2.1", "MS_normal+3.1_func1", 1, "rpc"),
                    ("MS_normal+3.1_func1", "MS_Memcached.1", 1, "mc"),
                    ("MS_relay+2.1", "MS_normal+3.2_func1", 1, "rpc"),
                    ("MS_normal+3.2_func1", "MS_Memcached.2", 1, "mc"),
                    ("MS_relay+2.1", "MS_blackhole.1_func1", 2, "rpc"),
                ],
                100,
            )],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_names() {
        assert_eq!(label_from_name("MS_normal+2.1_func3"), Some(Label::Normal));
        assert_eq!(label_from_name("MS_Memcached.4"), Some(Label::Memcached));
        assert_eq!(label_from_name("USER"), Some(Label::Relay));
        assert_eq!(label_from_name("other"), None);
        for s in services() {
            for g in &s.graphs {
                assert!(g.nodes.iter().all(|n| n.label.is_some()), "{}", s.name);
            }
        }
    }
}
