//! Replays the `serve_request` fuzz corpus (`fuzz/corpus/serve_request/`) on stable, so
//! `cargo test` covers it, and checks that its valid seeds are accepted.

use std::path::PathBuf;

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/serve_request");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the fuzz corpus is part of the repository")
        .map(|e| e.expect("readable corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus too small: {}", files.len());
    files
}

#[test]
fn serve_request_corpus_replays_clean() {
    for file in corpus() {
        let data = std::fs::read(&file).expect("readable corpus file");
        fastlibra_serve::fuzz_entry::request(&data);
    }
}

#[test]
fn the_valid_seeds_pass_validation() {
    use fastlibra_serve::{fuzz_entry, parse, validate};
    let info = fuzz_entry::model_info();
    let adapters = [fastlibra_runtime::online::AdapterListing {
        name: fuzz_entry::ADAPTER.to_string(),
        path: PathBuf::from("x"),
        version: 1,
        rank: 8,
        created_unix_s: 0,
    }];
    for file in corpus() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("valid-") {
            continue;
        }
        let data = std::fs::read(&file).unwrap();
        let result = match data[0] {
            0 => parse::completion(&data[1..])
                .and_then(|r| validate::completion(r, &info, &adapters)),
            _ => parse::chat(&data[1..]).and_then(|r| validate::chat(r, &info, &adapters)),
        };
        assert!(result.is_ok(), "{name}: {:?}", result.err());
    }
}
