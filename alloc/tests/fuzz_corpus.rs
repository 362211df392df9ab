//! Replays the `alloc_ops` fuzz corpus (`fuzz/corpus/alloc_ops/`) on stable, so that every
//! seed and every past crash stays a regression test.

use std::path::Path;

#[test]
fn alloc_ops_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/alloc_ops");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the alloc_ops corpus is part of the repository")
        .map(|e| e.expect("readable corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus too small: {}", files.len());
    for file in files {
        let data = std::fs::read(&file).expect("readable corpus file");
        if let Err(failure) = fastlibra_alloc::model::run_case(&data) {
            panic!("{}: {failure}", file.display());
        }
    }
}
