//! The DGG `service_info.csv` reader on arbitrary bytes: bad rows are skipped with a warning,
//! a bad header is a typed error, and the rows kept read back unchanged after the writer
//! (see `fastlibra_dgg::fuzz_entry::service_info`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fastlibra_dgg::fuzz_entry::service_info(data);
});
