//! Replays the kernels' fuzz corpora (`fuzz/corpus/peft_adapter/`, `fuzz/corpus/hardware_toml/`)
//! on stable, so that every seed and every past crash stays a regression test. Files named
//! `valid*` must also be accepted.

use std::path::{Path, PathBuf};

use fastlibra_kernels::peft::{LoraPair, fuzz_entry};

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
fn peft_adapter_corpus_replays_clean() {
    for file in corpus("peft_adapter") {
        let data = std::fs::read(&file).expect("readable corpus file");
        let result = fuzz_entry::peft_adapter(&data);
        if is_valid_seed(&file) {
            let adapter = result.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut weights = (0..adapter.layer_count())
                .flat_map(|l| adapter.layer(l))
                .flat_map(|p: &LoraPair| p.a().iter().chain(p.b()));
            assert!(weights.any(|&w| w != 0.0), "{}", file.display());
        }
    }
}

#[test]
fn peft_adapter_seed_format_round_trips() {
    let packed = fuzz_entry::pack(b"{}", b"weights").expect("short config");
    assert_eq!(fuzz_entry::split(&packed), (&b"{}"[..], &b"weights"[..]));
    // A length beyond the input is clamped; fewer than two bytes is all empty.
    assert_eq!(fuzz_entry::split(&[9, 0, b'x']), (&b"x"[..], &b""[..]));
    assert_eq!(fuzz_entry::split(&[1]), (&b""[..], &b""[..]));
}

#[test]
fn hardware_toml_corpus_replays_clean() {
    for file in corpus("hardware_toml") {
        let data = std::fs::read(&file).expect("readable corpus file");
        let validated = fastlibra_kernels::config_fuzz::hardware_toml(&data);
        assert!(
            validated || !is_valid_seed(&file),
            "{}: rejected",
            file.display()
        );
    }
}
