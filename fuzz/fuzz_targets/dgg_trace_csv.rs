//! The DGG handler's streaming trace CSV reader, and the handler behind it, on arbitrary bytes:
//! bad input must come back as a typed error or as counted rows and traces, never a panic
//! (see `fastlibra_dgg::fuzz_entry::trace_csv`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fastlibra_dgg::fuzz_entry::trace_csv(data);
});
