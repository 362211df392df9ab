//! Node labels, per microservice (interfaces ignored), over the distinct call graphs of all
//! services.
//!
//! The reference's rules: a microservice reached by an `mc` call is `Memcached`, by a `db` call
//! `database`; one reached by any other call is `blackhole` if it never calls anything and
//! `normal` otherwise, and that overrides `Memcached`/`database` (the reference writes those
//! labels first and lets later ones win). `USER` is `relay`. The reference's public code does
//! not show how other `relay` nodes are found; its data is consistent with "calls downstream
//! in every call graph in which it is called", which is the rule used here (the rest of the
//! callers are `normal`, the microservices that sometimes answer alone).

use rustc_hash::FxHashMap;

use super::corpus::Corpus;
use crate::graph::Label;

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    mc: bool,
    db: bool,
    other: bool,
    source: bool,
    /// Graphs where it is an other-call target.
    called_in: u64,
    /// …and also calls.
    calls_in: u64,
}

/// Microservice id → label.
pub fn label_microservices(corpus: &Corpus) -> FxHashMap<u32, Label> {
    let (mc, db) = (corpus.strings.get(b"mc"), corpus.strings.get(b"db"));
    let user = corpus.strings.get(b"USER");
    let mut seen: FxHashMap<u32, Seen> = FxHashMap::default();
    let mut in_graph: FxHashMap<u32, (bool, bool)> = FxHashMap::default();
    for graphs in corpus.services.values() {
        for g in graphs.keys() {
            in_graph.clear();
            for e in g {
                let (s, t) = (e.source.0, e.target.0);
                seen.entry(s).or_default().source = true;
                in_graph.entry(s).or_default().1 = true;
                let st = seen.entry(t).or_default();
                if Some(e.rpctype) == mc {
                    st.mc = true;
                } else if Some(e.rpctype) == db {
                    st.db = true;
                } else {
                    st.other = true;
                    in_graph.entry(t).or_default().0 = true;
                }
            }
            for (&ms, &(called, calls)) in &in_graph {
                if called {
                    let s = seen.entry(ms).or_default();
                    s.called_in += 1;
                    s.calls_in += u64::from(calls);
                }
            }
        }
    }
    seen.into_iter()
        .map(|(ms, s)| {
            let label = if Some(ms) == user {
                Label::Relay
            } else if s.other {
                if !s.source {
                    Label::Blackhole
                } else if s.calls_in == s.called_in {
                    Label::Relay
                } else {
                    Label::Normal
                }
            } else if s.mc {
                Label::Memcached
            } else if s.db {
                Label::Database
            } else {
                Label::Relay
            };
            (ms, label)
        })
        .collect()
}
