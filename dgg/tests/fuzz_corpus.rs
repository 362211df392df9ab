//! Replays the DGG fuzz corpora (`fuzz/corpus/dgg_trace_csv/`, `fuzz/corpus/dgg_json/`) on
//! stable through the fuzz targets' entry points, so that every seed and every past crash
//! stays a regression test. Files named `valid*` must also be accepted.

use std::path::{Path, PathBuf};

use fastlibra_dgg::fuzz_entry;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the fuzz corpus is part of the repository")
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{target}: corpus too small: {}",
        files.len()
    );
    files
}

fn is_valid_seed(file: &Path) -> bool {
    file.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("valid"))
}

#[test]
fn dgg_trace_csv_corpus_replays_clean() {
    for file in corpus("dgg_trace_csv") {
        let data = std::fs::read(&file).expect("readable corpus file");
        let result = fuzz_entry::trace_csv(&data);
        if is_valid_seed(&file) {
            let report = result.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(report.kept_traces > 0, "{}", file.display());
        }
    }
}

#[test]
fn dgg_json_corpus_replays_clean() {
    for file in corpus("dgg_json") {
        let data = std::fs::read(&file).expect("readable corpus file");
        let result = fuzz_entry::json(&data);
        if is_valid_seed(&file) {
            let g = result.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(!g.edges.is_empty(), "{}", file.display());
        }
    }
}
