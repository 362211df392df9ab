//! Entry points of the fuzz targets (`fuzz/fuzz_targets/dgg_*.rs`), also replayed on stable by
//! `dgg/tests/fuzz_corpus.rs`: each takes arbitrary bytes, runs a parser and what consumes its
//! output, and checks what must hold whatever the input.
//!
//! Bad input is never a panic: it is a typed [`DggError`](crate::DggError), or rows and traces counted in the
//! handler's report. A panic from these functions is a bug, either in the code under test or
//! in an invariant checked here.

use std::path::Path;

use crate::compare;
use crate::dataset::{self, Dataset, Service, ServiceInfo};
use crate::error::Result;
use crate::generator::{self, Generator};
use crate::graph::CallGraph;
use crate::handler::{self, HandleOptions, HandleReport};
use crate::json;

/// The streaming trace reader and the whole handler on `bytes` as one trace CSV file, in
/// memory: rows → traces (a window of 8 rows, so traces are finished while reading) → checks
/// → labels, top 90 %, clusters, renaming. Returns the report, or the error for an unusable
/// file or when no trace passed the checks.
///
/// Checks: every row is counted once, as read or as bad; kept and dropped traces add up; the
/// renamed graphs name only listed nodes and read back from their JSON unchanged.
pub fn trace_csv(bytes: &[u8]) -> Result<HandleReport> {
    let name = Path::new("fuzz.csv");
    let opts = HandleOptions {
        window_rows: 8,
        clusters: None,
        seed: 1,
    };
    let (corpus, report) = handler::read_trace_bytes(name, bytes, &opts)?;
    let dropped: u64 = report.dropped.values().sum();
    assert_eq!(report.kept_traces + dropped, report.traces, "traces lost");
    let bad: u64 = report.bad_rows.values().sum();
    assert!(bad <= report.rows, "more bad rows than rows");
    let (services, report) = handler::build_output(&corpus, report, name, &opts)?;
    assert_eq!(report.services, services.len());
    for svc in &services {
        assert_eq!(svc.info.top90_cg_num as usize, svc.graphs.len());
        for g in &svc.graphs {
            check_round_trip(g);
        }
    }
    Ok(report)
}

/// The call-graph JSON reader (both formats) on `bytes`, then what consumes a graph: both
/// writers (the graph must read back unchanged), depths, fidelity statistics, the dependency
/// graph, and a generator built from the graph alone drawing a few graphs.
pub fn json(bytes: &[u8]) -> Result<CallGraph> {
    let g = json::parse_graph(Path::new("fuzz.json"), bytes)?;
    check_round_trip(&g);
    let depths = g.depths();
    assert_eq!(depths.get(crate::graph::USER), Some(&1));
    let _ = compare::stats(std::slice::from_ref(&g));
    let dep = generator::dependency_graph(std::slice::from_ref(&g));
    assert!(dep.edges.len() <= g.edges.len());
    let ds = Dataset {
        services: vec![Service {
            info: ServiceInfo {
                service: "fuzz".into(),
                top90_trace_num: g.num,
                top90_cg_num: 1,
                ms_num: g.nodes.len() as u64,
                label: 0,
            },
            graphs: vec![g.clone()],
        }],
        warnings: Vec::new(),
    };
    let generated = Generator::from_dataset(&ds).generate(4, 1)?;
    for c in &generated {
        for h in &c.graphs {
            check_round_trip(h);
        }
    }
    Ok(g)
}

/// `g` written in either format reads back as itself (real format: without rpc ids;
/// generated format: a missing rpc id as an empty one).
fn check_round_trip(g: &CallGraph) {
    let p = Path::new("round-trip.json");
    let mut real = g.clone();
    real.edges.iter_mut().for_each(|e| e.rpcid = None);
    let mut gen_ = g.clone();
    gen_.edges
        .iter_mut()
        .for_each(|e| e.rpcid = Some(e.rpcid.take().unwrap_or_default()));
    let back = |bytes: Vec<u8>| match json::parse_graph(p, &bytes) {
        Ok(h) => h,
        Err(e) => panic!("written graph does not read back: {e}"),
    };
    assert_eq!(back(json::real_json(g)), real, "real format round trip");
    assert_eq!(
        back(json::generated_json(g)),
        gen_,
        "generated format round trip"
    );
}

/// The `service_info.csv` reader on `bytes`: bad rows are skipped with a warning each, a bad
/// header is a typed error. Checks: every row kept has a service name; rows kept plus rows
/// skipped never exceed the records in the file; the kept rows, written back with the
/// handler's writer, read back unchanged and without warnings.
pub fn service_info(bytes: &[u8]) -> Result<Vec<ServiceInfo>> {
    let name = Path::new("service_info.csv");
    let mut warnings = Vec::new();
    let rows = dataset::read_service_info_from(name, bytes, &mut warnings)?;
    assert!(
        rows.iter().all(|r| !r.service.is_empty()),
        "empty service kept"
    );
    let records = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
    assert!(
        rows.len() + warnings.len() <= records,
        "{} rows and {} warnings from {records} lines",
        rows.len(),
        warnings.len()
    );
    let text = dataset::service_info_text(&rows);
    let mut again_warnings = Vec::new();
    let again = dataset::read_service_info_from(name, text.as_bytes(), &mut again_warnings)
        .unwrap_or_else(|e| panic!("written service_info.csv does not read back: {e}"));
    assert_eq!(again, rows, "service_info.csv round trip");
    assert!(again_warnings.is_empty(), "{again_warnings:?}");
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `fuzz/corpus/dgg_service_info/` (files named `valid*` must be read with rows).
    #[test]
    fn dgg_service_info_corpus_replays_clean() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dgg_service_info");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the fuzz corpus is part of the repository")
            .map(|e| e.expect("readable corpus entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 5, "corpus too small: {}", files.len());
        for file in files {
            let data = std::fs::read(&file).expect("readable corpus file");
            let result = service_info(&data);
            let valid = file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("valid"));
            if valid {
                let rows = result.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert!(!rows.is_empty(), "{}", file.display());
            }
        }
    }
}
