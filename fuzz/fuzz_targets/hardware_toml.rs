//! Hardware configuration TOML on arbitrary bytes over the `llama3-8b` / `h100-80g` presets;
//! the properties checked are in `fastlibra_kernels::config_fuzz::hardware_toml`, which
//! `kernels/tests/fuzz_corpus.rs` also runs on the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fastlibra_kernels::config_fuzz::hardware_toml(data);
});
