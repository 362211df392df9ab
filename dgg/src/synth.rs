//! Call graphs back into trace rows: the inverse of the handler's graph construction, for
//! round-trip tests and for synthetic traces of any length (benchmarks).
//!
//! A graph's `USER` must make exactly one call (the root row, rpc id `0`). An edge of weight
//! *w* becomes *w* rows under its caller; a callee's own calls hang under its first call only,
//! which is what the handler folds back into one node. The callee of an `rpc` edge is split at
//! its last `_` into the microservice (`dm`) and the interface (`interface`); other callees are
//! the `dm` as a whole.

use std::collections::BTreeMap;
use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::graph::{CallGraph, USER};

/// The v2022 header the synthetic files use.
pub const HEADER: &str =
    "timestamp,traceid,service,rpc_id,um,uminstanceid,rpctype,dm,dminstanceid,interface,rt";

/// One trace row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Hierarchical call id.
    pub rpc_id: String,
    /// Caller microservice.
    pub um: String,
    /// Call type.
    pub rpctype: String,
    /// Callee microservice.
    pub dm: String,
    /// Interface called.
    pub interface: String,
}

fn split_rpc_target(name: &str) -> (&str, &str) {
    match name.rfind('_') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    }
}

fn microservice<'a>(name: &'a str, by_rpc: &BTreeMap<&str, bool>) -> &'a str {
    if by_rpc.get(name).copied().unwrap_or(false) {
        split_rpc_target(name).0
    } else {
        name
    }
}

/// The rows of one trace with graph `g`.
pub fn trace_rows(g: &CallGraph) -> Vec<Row> {
    let mut out: BTreeMap<&str, Vec<(&str, u32, &str)>> = BTreeMap::new();
    let mut by_rpc: BTreeMap<&str, bool> = BTreeMap::new();
    for e in &g.edges {
        out.entry(e.source.as_str()).or_default().push((
            e.target.as_str(),
            e.weight,
            e.rpctype.as_str(),
        ));
        by_rpc.insert(e.target.as_str(), e.rpctype == "rpc");
    }
    let mut rows = Vec::new();
    let mut done: BTreeMap<&str, ()> = BTreeMap::new();
    let Some(entry) = out.get(USER).and_then(|v| v.first()).copied() else {
        return rows;
    };
    done.insert(USER, ());
    push_row(&mut rows, "0", USER, entry, &by_rpc);
    emit(entry.0, "0", &out, &by_rpc, &mut done, &mut rows);
    rows
}

fn push_row(
    rows: &mut Vec<Row>,
    rpc: &str,
    caller: &str,
    (target, _, rpctype): (&str, u32, &str),
    by_rpc: &BTreeMap<&str, bool>,
) {
    let (dm, interface) = if rpctype == "rpc" {
        split_rpc_target(target)
    } else {
        (target, "")
    };
    rows.push(Row {
        rpc_id: rpc.to_string(),
        um: microservice(caller, by_rpc).to_string(),
        rpctype: rpctype.to_string(),
        dm: dm.to_string(),
        interface: interface.to_string(),
    });
}

fn emit<'a>(
    node: &'a str,
    rpc: &str,
    out: &BTreeMap<&'a str, Vec<(&'a str, u32, &'a str)>>,
    by_rpc: &BTreeMap<&str, bool>,
    done: &mut BTreeMap<&'a str, ()>,
    rows: &mut Vec<Row>,
) {
    if done.insert(node, ()).is_some() {
        return;
    }
    let mut i = 0;
    for &call in out.get(node).map(Vec::as_slice).unwrap_or(&[]) {
        for rep in 0..call.1 {
            i += 1;
            let id = format!("{rpc}.{i}");
            push_row(rows, &id, node, call, by_rpc);
            if rep == 0 {
                emit(call.0, &id, out, by_rpc, done, rows);
            }
        }
    }
}

/// Writes a synthetic trace file of at least `rows` data rows: traces drawn from `services`
/// (`(name, graphs)`, graphs weighted by `num`), two traces at a time with their rows
/// interleaved. Returns the number of rows written.
pub fn write_trace_csv(
    w: &mut impl Write,
    services: &[(String, Vec<CallGraph>)],
    rows: u64,
    seed: u64,
) -> std::io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pool: Vec<(&str, Vec<Row>, u64)> = services
        .iter()
        .flat_map(|(s, gs)| {
            gs.iter()
                .map(move |g| (s.as_str(), trace_rows(g), g.num.max(1)))
        })
        .filter(|p| !p.1.is_empty())
        .collect();
    let mut cum = Vec::with_capacity(pool.len());
    let mut total = 0;
    for p in &pool {
        total += p.2;
        cum.push(total);
    }
    writeln!(w, "{HEADER}")?;
    if pool.is_empty() {
        return Ok(0);
    }
    let (mut written, mut trace, mut ts) = (0u64, 0u64, 0u64);
    while written < rows {
        let mut pair = Vec::with_capacity(2);
        for _ in 0..2 {
            let x = rng.random_range(0..total);
            pair.push((trace, &pool[cum.partition_point(|&c| c <= x)]));
            trace += 1;
        }
        let longest = pair.iter().map(|p| p.1.1.len()).max().unwrap_or(0);
        for i in 0..longest {
            for (id, (service, trace_rows, _)) in &pair {
                if let Some(r) = trace_rows.get(i) {
                    ts += 1;
                    writeln!(
                        w,
                        "{ts},T{id:x},{service},{},{},-,{},{},-,{},{}",
                        r.rpc_id,
                        r.um,
                        r.rpctype,
                        r.dm,
                        r.interface,
                        ts % 97
                    )?;
                    written += 1;
                }
            }
        }
    }
    Ok(written)
}
