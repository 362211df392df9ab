//! The PEFT adapter loader on arbitrary bytes: two little-endian length bytes, then
//! `adapter_config.json`, then `adapter_model.safetensors`, loaded through the same code path
//! as `load_peft` against a tiny model. Errors are typed, never a panic or an unbounded
//! allocation (see `fastlibra_kernels::peft::fuzz_entry`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fastlibra_kernels::peft::fuzz_entry::peft_adapter(data);
});
