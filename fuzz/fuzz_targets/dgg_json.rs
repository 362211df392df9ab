//! The DGG call-graph JSON reader (real and generated formats) on arbitrary bytes, then the
//! writers, depths, statistics and a small generation from what it read: errors are typed,
//! never a panic (see `fastlibra_dgg::fuzz_entry::json`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fastlibra_dgg::fuzz_entry::json(data);
});
