//! Replays the `engine_events` fuzz corpus (`fuzz/corpus/engine_events/`) on stable, so that
//! every seed and every past crash stays a regression test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fastlibra_runtime::engine::fuzz::run_case;

#[test]
fn engine_events_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/engine_events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the engine_events corpus is part of the repository")
        .map(|e| e.expect("readable corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus too small: {}", files.len());
    for file in files {
        let data = std::fs::read(&file).expect("readable corpus file");
        // The engine's invariant checks panic; name the input that made them.
        match catch_unwind(AssertUnwindSafe(|| run_case(&data))) {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => panic!("{}: {failure}", file.display()),
            Err(_) => panic!("{}: the engine panicked (message above)", file.display()),
        }
    }
}
