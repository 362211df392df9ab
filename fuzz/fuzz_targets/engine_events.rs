//! Arbitrary driver events on the engine core (see `fastlibra_runtime::engine::fuzz`): the
//! engine checks the tree's invariants and its policy's promises after every input, the driver
//! checks outcomes, refusals of bogus reports, and that nothing is held after `finish`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = fastlibra_runtime::engine::fuzz::run_case(data) {
        panic!("{failure}");
    }
});
