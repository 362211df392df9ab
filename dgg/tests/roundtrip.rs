//! Round trip: call graphs → synthetic trace rows → handler → the same graphs, with the same
//! trace counts, for random graphs (trees with repeated calls and extra DAG edges).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use fastlibra_dgg::graph::USER;
use fastlibra_dgg::handler::{HandleOptions, read_traces};
use fastlibra_dgg::synth::{HEADER, trace_rows};
use fastlibra_dgg::{CallGraph, Edge, Node};
use proptest::prelude::*;

const TYPES: [&str; 5] = ["rpc", "http", "mc", "db", "mq"];

/// A random graph: node 0 is the entry; node i > 0 hangs under a node j < i; `extra` adds
/// edges from a node to a later one.
fn graph_strategy() -> impl Strategy<Value = CallGraph> {
    let nodes = prop::collection::vec((any::<prop::sample::Index>(), 0..5usize, 1..4u32), 0..7);
    let extra = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            1..3u32,
        ),
        0..3,
    );
    (0..2usize, nodes, extra).prop_map(|(entry_type, nodes, extra)| {
        let name = |i: usize, ty: &str| {
            if ty == "rpc" {
                format!("MS_{i}_if{}", i % 3)
            } else {
                format!("MS_{i}")
            }
        };
        let entry_ty = TYPES[entry_type];
        let mut types = vec![entry_ty];
        let mut names = vec![name(0, entry_ty)];
        let mut edges: BTreeMap<(String, String, String), u32> = BTreeMap::new();
        edges.insert(
            (USER.to_string(), names[0].clone(), entry_ty.to_string()),
            1,
        );
        for (i, (parent, ty, w)) in nodes.into_iter().enumerate() {
            let i = i + 1;
            let p = parent.index(i);
            let ty = TYPES[ty];
            types.push(ty);
            names.push(name(i, ty));
            edges.insert((names[p].clone(), names[i].clone(), ty.to_string()), w);
        }
        let n = names.len();
        for (a, b, w) in extra {
            let (a, b) = (a.index(n), b.index(n));
            if a < b {
                edges
                    .entry((names[a].clone(), names[b].clone(), types[b].to_string()))
                    .or_insert(w);
            }
        }
        let mut all: Vec<String> = names;
        all.push(USER.to_string());
        all.sort();
        CallGraph {
            nodes: all
                .into_iter()
                .map(|name| Node { name, label: None })
                .collect(),
            edges: edges
                .into_iter()
                .map(|((source, target, rpctype), weight)| Edge {
                    source,
                    target,
                    weight,
                    rpctype,
                    rpcid: None,
                })
                .collect(),
            num: 0,
        }
    })
}

fn canonical(mut gs: Vec<CallGraph>) -> Vec<CallGraph> {
    for g in &mut gs {
        g.edges.sort();
        g.nodes.sort();
    }
    gs.sort_by(|a, b| a.edges.cmp(&b.edges).then(a.num.cmp(&b.num)));
    gs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn graphs_survive_rows_and_handler(
        services in prop::collection::vec(prop::collection::vec((graph_strategy(), 1..4u64), 1..4), 1..4),
    ) {
        let dir = common::TempDir::new("roundtrip");
        let path = dir.path().join("trace.csv");
        let mut csv = format!("{HEADER}\n");
        let mut expected: BTreeMap<String, Vec<CallGraph>> = BTreeMap::new();
        let mut trace = 0u64;
        for (s, graphs) in services.iter().enumerate() {
            let service = format!("S_{s}");
            let mut merged: BTreeMap<Vec<Edge>, (CallGraph, u64)> = BTreeMap::new();
            for (g, count) in graphs {
                merged.entry(g.edges.clone()).or_insert((g.clone(), 0)).1 += count;
                // Traces of one graph, rows of each pair of traces interleaved.
                let rows = trace_rows(g);
                for _ in 0..*count {
                    let (a, b) = (trace, trace + 1);
                    trace += 2;
                    for r in &rows {
                        for id in [a, b] {
                            writeln!(csv, "0,T{id},{service},{},{},x,{},{},y,{},1", r.rpc_id, r.um, r.rpctype, r.dm, r.interface).unwrap();
                        }
                    }
                }
            }
            let gs = merged.into_values().map(|(mut g, n)| { g.num = 2 * n; g }).collect();
            expected.insert(service, canonical(gs));
        }
        std::fs::write(&path, csv).unwrap();
        let (corpus, report) = read_traces(&[path], &HandleOptions::default()).unwrap();
        prop_assert_eq!(report.kept_traces, trace);
        prop_assert!(report.dropped.is_empty(), "{:?}", report.dropped);
        let actual: BTreeMap<String, Vec<CallGraph>> =
            corpus.raw_graphs().into_iter().map(|(s, gs)| (s, canonical(gs))).collect();
        prop_assert_eq!(actual, expected);
    }
}
