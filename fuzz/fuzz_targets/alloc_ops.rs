//! Random operation sequences on the tree and on its reference model, compared after every
//! operation together with `check_invariants()` (see `fastlibra_alloc::model`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = fastlibra_alloc::model::run_case(data) {
        panic!("{failure}");
    }
});
