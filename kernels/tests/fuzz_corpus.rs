//! Replays the kernels' fuzz corpora (`fuzz/corpus/peft_adapter/`, `fuzz/corpus/hardware_toml/`)
//! on stable, so that every seed and every past crash stays a regression test. Files named
//! `valid*` must also be accepted.

use std::path::{Path, PathBuf};

use fastlibra_kernels::peft::{LoraPair, fuzz_entry};
use fastlibra_kernels::{AdapterLoad, HardwareConfig, Link};

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

/// The checks of `fuzz/fuzz_targets/hardware_toml.rs`, on one input: `true` when the
/// configuration validated.
fn hardware_toml(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let base = HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("presets");
    let Ok(config) = base.with_toml(&text) else {
        return false;
    };
    let cost = config.cost_model().expect("a validated configuration");
    let overhead = config.cost.step_overhead_ns;
    assert_eq!(cost.prefill_ns(0, 0), 0);
    assert_eq!(cost.decode_step_ns(0, u64::MAX), 0);
    let mut last = 0;
    for (n, c) in [
        (1, 0),
        (1, 4096),
        (1000, 4096),
        (32_768, 1 << 20),
        (u32::MAX, u32::MAX),
    ] {
        let t = cost.prefill_ns(n, c);
        assert!(
            t >= overhead && t >= last,
            "prefill {n} after {c}: {t} < {last}"
        );
        last = t;
    }
    let mut last = 0;
    for (batch, context) in [(1, 0), (1, 4096), (64, 1 << 18), (u32::MAX, u64::MAX)] {
        let t = cost.decode_step_ns(batch, context);
        assert!(
            t >= overhead && t >= last,
            "decode {batch}, {context}: {t} < {last}"
        );
        last = t;
    }
    let small = [AdapterLoad {
        rank: 16,
        tokens: 100,
    }];
    let huge = [AdapterLoad {
        rank: u32::MAX,
        tokens: u32::MAX,
    }; 3];
    assert!(cost.lora_ns(&huge) >= cost.lora_ns(&small));
    for link in [Link::H2D, Link::D2H, Link::NvmeRead, Link::NvmeWrite] {
        assert_eq!(cost.transfer_ns(link, 0), 0);
        let mut last = cost.link_latency_ns(link);
        for bytes in [1, 4096, 1 << 30, u64::MAX] {
            let t = cost.transfer_ns(link, bytes);
            assert!(t >= last, "{link:?} {bytes} bytes: {t} < {last}");
            last = t;
        }
    }
    true
}

#[test]
fn hardware_toml_corpus_replays_clean() {
    for file in corpus("hardware_toml") {
        let data = std::fs::read(&file).expect("readable corpus file");
        let validated = hardware_toml(&data);
        assert!(
            validated || !is_valid_seed(&file),
            "{}: rejected",
            file.display()
        );
    }
}
