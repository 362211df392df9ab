//! One trace: its rows, the reference's sanity checks, and its fine-grained call graph.
//!
//! Checks (the first that fails names the reason the trace is dropped): every row parsed; a
//! root row (`rpc_id` 0); no `UNKNOWN`, `UNAVAILABLE` or empty endpoint; no duplicated rpc id;
//! every row's parent (`rpc_id` without its last component) present.
//!
//! Graph: an rpc call's target is the microservice *with the interface it was called on*
//! (`dm` + `interface`); other calls' targets are the bare `dm`. The caller of a row is the
//! target of its parent row (`USER` for the root). All calls with the same caller, target and
//! call type in one trace form one edge whose weight counts them.

use super::intern::{Interner, NONE};

/// A node: microservice id and interface id ([`NONE`] for non-rpc targets and `USER`).
pub type NodeKey = (u32, u32);

/// One parsed row of a trace.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Offset of the rpc id in the trace's arena.
    pub rpc_start: u32,
    /// Length of the rpc id.
    pub rpc_len: u32,
    /// Caller microservice (`um`).
    pub um: u32,
    /// Callee microservice (`dm`).
    pub dm: u32,
    /// Call type.
    pub rpctype: u32,
    /// Interface.
    pub iface: u32,
    /// Service ([`NONE`] when the file has no `service` column).
    pub service: u32,
}

/// A trace being collected.
#[derive(Debug, Default)]
pub struct PendingTrace {
    /// Rpc id bytes of all rows.
    pub arena: Vec<u8>,
    /// The rows.
    pub rows: Vec<Row>,
    /// A row of this trace could not be parsed.
    pub poisoned: bool,
}

impl PendingTrace {
    fn rpc(&self, r: &Row) -> &[u8] {
        &self.arena[r.rpc_start as usize..(r.rpc_start + r.rpc_len) as usize]
    }
}

/// Why a trace was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// A row of the trace was malformed.
    MalformedRow,
    /// No row with rpc id 0.
    NoRoot,
    /// An `UNKNOWN`, `UNAVAILABLE` or empty `um`/`dm`.
    UnknownEndpoint,
    /// Two rows with the same rpc id.
    DuplicateRpcId,
    /// A row whose parent rpc id is absent.
    MissingParent,
    /// The root row has an empty service.
    NoService,
}

impl DropReason {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MalformedRow => "malformed_row",
            DropReason::NoRoot => "no_root",
            DropReason::UnknownEndpoint => "unknown_endpoint",
            DropReason::DuplicateRpcId => "duplicate_rpc_id",
            DropReason::MissingParent => "missing_parent",
            DropReason::NoService => "no_service",
        }
    }
}

/// An edge of a raw (not yet renamed) call graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawEdge {
    /// Caller.
    pub source: NodeKey,
    /// Callee.
    pub target: NodeKey,
    /// Call type id.
    pub rpctype: u32,
    /// Number of calls.
    pub weight: u32,
}

/// Ids the checks need.
#[derive(Clone, Copy, Debug)]
pub struct Known {
    /// `USER`.
    pub user: u32,
    /// `rpc`.
    pub rpc: u32,
    /// `UNKNOWN`, `UNAVAILABLE` and the empty string.
    pub unknown: [u32; 3],
    /// The empty string (an empty service).
    pub empty: u32,
}

impl Known {
    /// Interns the ids.
    pub fn new(strings: &mut Interner) -> Known {
        let empty = strings.intern(b"");
        Known {
            user: strings.intern(b"USER"),
            rpc: strings.intern(b"rpc"),
            unknown: [
                strings.intern(b"UNKNOWN"),
                strings.intern(b"UNAVAILABLE"),
                empty,
            ],
            empty,
        }
    }
}

/// Checks a trace and builds its call graph: `(service, sorted edges)`.
pub fn build(trace: &mut PendingTrace, known: &Known) -> Result<(u32, Vec<RawEdge>), DropReason> {
    if trace.poisoned {
        return Err(DropReason::MalformedRow);
    }
    let mut rows = std::mem::take(&mut trace.rows);
    let result = build_sorted(trace, &mut rows, known);
    trace.rows = rows;
    result
}

fn build_sorted(
    t: &PendingTrace,
    rows: &mut [Row],
    known: &Known,
) -> Result<(u32, Vec<RawEdge>), DropReason> {
    // The rpc ids form a tree; sorting them makes the duplicate check a scan and the parent
    // lookup a binary search. This runs for every trace (millions per file), so it stays on
    // the rows rather than building a petgraph tree per trace.
    rows.sort_unstable_by(|a, b| t.rpc(a).cmp(t.rpc(b)));
    let root = rows
        .iter()
        .position(|r| t.rpc(r) == b"0")
        .ok_or(DropReason::NoRoot)?;
    if rows
        .iter()
        .any(|r| known.unknown.contains(&r.um) || known.unknown.contains(&r.dm))
    {
        return Err(DropReason::UnknownEndpoint);
    }
    if rows.windows(2).any(|w| t.rpc(&w[0]) == t.rpc(&w[1])) {
        return Err(DropReason::DuplicateRpcId);
    }
    let target = |r: &Row| {
        (
            r.dm,
            if r.rpctype == known.rpc {
                r.iface
            } else {
                NONE
            },
        )
    };
    let mut edges: Vec<RawEdge> = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        let id = t.rpc(r);
        let source = if id == b"0" {
            (known.user, NONE)
        } else {
            let cut = id
                .iter()
                .rposition(|&b| b == b'.')
                .ok_or(DropReason::MissingParent)?;
            let parent = &id[..cut];
            let p = rows
                .binary_search_by(|x| t.rpc(x).cmp(parent))
                .map_err(|_| DropReason::MissingParent)?;
            target(&rows[p])
        };
        edges.push(RawEdge {
            source,
            target: target(r),
            rpctype: r.rpctype,
            weight: 1,
        });
    }
    // Without a `service` column (v2021 traces) the entry microservice names the service.
    let service = if rows[root].service == NONE {
        rows[root].dm
    } else {
        rows[root].service
    };
    if service == known.empty {
        return Err(DropReason::NoService);
    }
    edges.sort_unstable();
    let mut merged: Vec<RawEdge> = Vec::with_capacity(edges.len());
    for e in edges {
        match merged.last_mut() {
            Some(m) if (m.source, m.target, m.rpctype) == (e.source, e.target, e.rpctype) => {
                m.weight += 1
            }
            _ => merged.push(e),
        }
    }
    Ok((service, merged))
}
