//! Engine bugs found by the `engine_events` fuzz target, each a named test over its minimized
//! input in `fuzz/regressions/engine_events/`. They are open: each test is ignored with what
//! goes wrong, and fails when run (`cargo test -p fastlibra-runtime --test
//! faults_fuzz_regressions -- --ignored`). Once fixed, drop the `ignore` and move the input
//! into `fuzz/corpus/engine_events/` so the corpus replay keeps it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fastlibra_runtime::engine::fuzz::run_case;

fn replay(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/engine_events")
        .join(name);
    let data = std::fs::read(&path).expect("the regression input is in the repository");
    match catch_unwind(AssertUnwindSafe(|| run_case(&data))) {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => panic!("{name}: {failure}"),
        Err(_) => panic!("{name}: the engine panicked (message above)"),
    }
}

/// slora, host and NVMe full: the host → HBM load of a 4-page adapter is reported lost;
/// `handle_transfer_lost` aborts the transfer and counts the loss, then fails to register a
/// new version (no tier has 4 free pages) and returns `Alloc`, leaving the lost version
/// current, so a later request would load the data that was reported lost.
#[test]
#[ignore = "open engine bug: a lost adapter with no room for a new version stays current"]
fn lost_adapter_with_no_room_for_a_new_version() {
    replay("lost-adapter-with-no-room-for-a-new-version");
}

/// vllm, an 8-page adapter loading into HBM (allowed past the 4-page LoRA region because it
/// is the largest adapter), then `reload_adapter` shrinks it to 1 page: the bound of the LoRA
/// region check drops to 4 pages while the retired 8-page version still lands in HBM, and
/// `check_engine_invariants` panics with "LoRA region overrun".
#[test]
#[ignore = "open engine bug: the LoRA region bound ignores a retired, larger version"]
fn vllm_reload_to_a_smaller_adapter_overruns_the_lora_region() {
    replay("vllm-reload-to-a-smaller-adapter-overruns-the-lora-region");
}
