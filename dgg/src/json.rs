//! The reference's JSON call-graph formats, read and written.
//!
//! Real graphs (`real_call_graph_renamed/type{K}/{service}/graph{N}.json`):
//! `{"nodes": [{"node", "label"}], "edges": [{"source", "target", "weight", "rpctype"}], "num"}`.
//! Generated graphs (`type{K}/graph{N}.json`):
//! `{"nodes": [{"node", "label"}], "edges": [{"rpcid", "um", "dm", "time", "compara"}], "num"}`.
//! Both are read by one function (the edge fields say which); both are written with a
//! four-space indent like Python's `json.dump(…, indent=4)`.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DggError, Result};
use crate::graph::{CallGraph, Edge, Label, Node};

#[derive(Deserialize)]
struct FileIn {
    nodes: Option<Vec<NodeIn>>,
    edges: Option<Vec<EdgeIn>>,
    num: Option<u64>,
}

#[derive(Deserialize)]
struct NodeIn {
    node: Option<String>,
    label: Option<String>,
}

#[derive(Deserialize)]
struct EdgeIn {
    source: Option<String>,
    target: Option<String>,
    weight: Option<u32>,
    rpctype: Option<String>,
    rpcid: Option<String>,
    um: Option<String>,
    dm: Option<String>,
    time: Option<u32>,
    compara: Option<String>,
}

/// Reads a call-graph file in either format.
pub fn read_graph(path: &Path) -> Result<CallGraph> {
    let bytes = fs::read(path).map_err(|e| DggError::io(path, e))?;
    parse_graph(path, &bytes)
}

/// Parses call-graph JSON in either format; `path` only names the source in errors.
pub fn parse_graph(path: &Path, bytes: &[u8]) -> Result<CallGraph> {
    let file: FileIn = serde_json::from_slice(bytes).map_err(|e| DggError::json(path, &e))?;
    let nodes_in = file
        .nodes
        .ok_or_else(|| DggError::field(path, "nodes", "missing"))?;
    let edges_in = file
        .edges
        .ok_or_else(|| DggError::field(path, "edges", "missing"))?;
    let num = file
        .num
        .ok_or_else(|| DggError::field(path, "num", "missing"))?;
    let mut nodes = Vec::with_capacity(nodes_in.len());
    for (i, n) in nodes_in.into_iter().enumerate() {
        let name = n
            .node
            .ok_or_else(|| DggError::field(path, format!("nodes[{i}].node"), "missing"))?;
        let label = n.label.as_deref().and_then(Label::parse);
        nodes.push(Node { name, label });
    }
    let mut edges = Vec::with_capacity(edges_in.len());
    for (i, e) in edges_in.into_iter().enumerate() {
        edges.push(convert_edge(path, i, e)?);
    }
    let names: rustc_hash::FxHashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    for (i, e) in edges.iter().enumerate() {
        for (end, name) in [("source", &e.source), ("target", &e.target)] {
            if !names.contains(name.as_str()) {
                let msg = format!("{name:?} is not listed in nodes");
                return Err(DggError::field(path, format!("edges[{i}].{end}"), msg));
            }
        }
    }
    Ok(CallGraph { nodes, edges, num })
}

fn convert_edge(path: &Path, i: usize, e: EdgeIn) -> Result<Edge> {
    let missing = |f: &str| DggError::field(path, format!("edges[{i}].{f}"), "missing");
    if e.source.is_some() || e.target.is_some() {
        Ok(Edge {
            source: e.source.ok_or_else(|| missing("source"))?,
            target: e.target.ok_or_else(|| missing("target"))?,
            weight: e.weight.ok_or_else(|| missing("weight"))?,
            rpctype: e.rpctype.ok_or_else(|| missing("rpctype"))?,
            rpcid: None,
        })
    } else if e.um.is_some() || e.dm.is_some() {
        Ok(Edge {
            source: e.um.ok_or_else(|| missing("um"))?,
            target: e.dm.ok_or_else(|| missing("dm"))?,
            weight: e.time.ok_or_else(|| missing("time"))?,
            rpctype: e.compara.ok_or_else(|| missing("compara"))?,
            rpcid: Some(e.rpcid.ok_or_else(|| missing("rpcid"))?),
        })
    } else {
        Err(DggError::field(
            path,
            format!("edges[{i}]"),
            "needs source/target or um/dm",
        ))
    }
}

#[derive(Serialize)]
struct NodeOut<'a> {
    node: &'a str,
    label: Option<&'static str>,
}

#[derive(Serialize)]
struct RealEdgeOut<'a> {
    source: &'a str,
    target: &'a str,
    weight: u32,
    rpctype: &'a str,
}

#[derive(Serialize)]
struct GenEdgeOut<'a> {
    rpcid: &'a str,
    um: &'a str,
    dm: &'a str,
    time: u32,
    compara: &'a str,
}

#[derive(Serialize)]
struct FileOut<'a, E> {
    nodes: Vec<NodeOut<'a>>,
    edges: Vec<E>,
    num: u64,
}

fn nodes_out(g: &CallGraph) -> Vec<NodeOut<'_>> {
    g.nodes
        .iter()
        .map(|n| NodeOut {
            node: &n.name,
            label: n.label.map(Label::as_str),
        })
        .collect()
}

fn to_pretty<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serializing these plain structs into a Vec cannot fail.
    if value.serialize(&mut ser).is_err() {
        out.clear();
    }
    out
}

/// The real-graph format (`source, target, weight, rpctype`) of `g`.
pub fn real_json(g: &CallGraph) -> Vec<u8> {
    let edges = g
        .edges
        .iter()
        .map(|e| RealEdgeOut {
            source: &e.source,
            target: &e.target,
            weight: e.weight,
            rpctype: &e.rpctype,
        })
        .collect();
    to_pretty(&FileOut {
        nodes: nodes_out(g),
        edges,
        num: g.num,
    })
}

/// The generated-graph format (`rpcid, um, dm, time, compara`) of `g`; edges without an rpcid
/// are written with an empty one.
pub fn generated_json(g: &CallGraph) -> Vec<u8> {
    let edges = g
        .edges
        .iter()
        .map(|e| GenEdgeOut {
            rpcid: e.rpcid.as_deref().unwrap_or(""),
            um: &e.source,
            dm: &e.target,
            time: e.weight,
            compara: &e.rpctype,
        })
        .collect();
    to_pretty(&FileOut {
        nodes: nodes_out(g),
        edges,
        num: g.num,
    })
}

/// Writes `bytes` to `path`, creating parent folders.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| DggError::io(parent, e))?;
    }
    fs::write(path, bytes).map_err(|e| DggError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_read_back() {
        let g = CallGraph {
            nodes: vec![
                Node {
                    name: "USER".into(),
                    label: Some(Label::Relay),
                },
                Node {
                    name: "MS_normal+2.1".into(),
                    label: Some(Label::Normal),
                },
            ],
            edges: vec![Edge {
                source: "USER".into(),
                target: "MS_normal+2.1".into(),
                weight: 2,
                rpctype: "http".into(),
                rpcid: Some("0".into()),
            }],
            num: 7,
        };
        let p = Path::new("x.json");
        assert_eq!(parse_graph(p, &generated_json(&g)).ok(), Some(g.clone()));
        let mut real = g.clone();
        real.edges[0].rpcid = None;
        assert_eq!(parse_graph(p, &real_json(&g)).ok(), Some(real));
    }

    #[test]
    fn errors_name_file_and_field() {
        let p = Path::new("bad.json");
        let truncated = br#"{"nodes": [{"node": "USER", "label": "relay"}], "edges": ["#;
        let err = parse_graph(p, truncated)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("bad.json:1:"), "{err}");
        let no_target = br#"{"nodes": [], "edges": [{"source": "USER", "weight": 1, "rpctype": "rpc"}], "num": 1}"#;
        let err = parse_graph(p, no_target)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "bad.json: edges[0].target: missing");
        let dangling = br#"{"nodes": [], "edges": [{"source": "USER", "target": "A", "weight": 1, "rpctype": "rpc"}], "num": 1}"#;
        let err = parse_graph(p, dangling)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("edges[0].source"), "{err}");
    }
}
