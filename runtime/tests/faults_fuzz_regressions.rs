//! Engine bugs found by the `engine_events` fuzz target, each a named test over its minimized
//! input in `fuzz/corpus/engine_events/` (the corpus replay runs them too). An open bug's
//! input sits in `fuzz/regressions/engine_events/` with its test ignored until it is fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fastlibra_runtime::engine::PolicyKind;
use fastlibra_runtime::engine::fuzz::run_case_stats;
use fastlibra_runtime::outcome::EngineStats;

fn replay(name: &str) -> EngineStats {
    replay_from("corpus", name)
}

fn replay_from(folder: &str, name: &str) -> EngineStats {
    run(name, read(folder, name))
}

/// Replays `name` under `policy`, whatever policy its first byte picks: the input's byte
/// indexes [`PolicyKind::ALL`], which grows as policies are added.
fn replay_as(name: &str, policy: PolicyKind) -> EngineStats {
    let mut data = read("corpus", name);
    let index = PolicyKind::ALL.iter().position(|&p| p == policy);
    data[0] = u8::try_from(index.expect("a listed policy")).expect("a few policies");
    run(name, data)
}

fn read(folder: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(folder)
        .join("engine_events")
        .join(name);
    std::fs::read(&path).expect("the regression input is in the repository")
}

fn run(name: &str, data: Vec<u8>) -> EngineStats {
    match catch_unwind(AssertUnwindSafe(|| run_case_stats(&data))) {
        Ok(Ok(Some(stats))) => stats,
        Ok(Ok(None)) => panic!("{name}: the configuration no longer builds an engine"),
        Ok(Err(failure)) => panic!("{name}: {failure}"),
        Err(_) => panic!("{name}: the engine panicked (message above)"),
    }
}

/// slora, host and NVMe full: the host → HBM load of a 4-page adapter is reported lost and no
/// tier has 4 free pages for a new version. `handle_transfer_lost` used to fail with `Alloc`
/// after counting the loss, leaving the lost version current (a later request would have
/// loaded data reported lost); now the lost copy's own pages make the room.
#[test]
fn lost_adapter_with_no_room_for_a_new_version() {
    let stats = replay("lost-adapter-with-no-room-for-a-new-version");
    assert_eq!((stats.nodes_lost, stats.adapters_reloaded), (1, 1));
}

/// vllm, an 8-page adapter loading into HBM (allowed past the 4-page LoRA region because it
/// is the largest adapter), then `reload_adapter` shrinks it to 1 page. The region bound used
/// to drop to 4 pages while the retired 8-page version still landed in HBM, and the engine's
/// invariant check panicked with "LoRA region overrun"; the bound is now the largest adapter
/// the engine has served.
#[test]
fn vllm_reload_to_a_smaller_adapter_overruns_the_lora_region() {
    let stats = replay("vllm-reload-to-a-smaller-adapter-overruns-the-lora-region");
    assert_eq!(stats.adapters_reloaded, 1);
}

/// vllm, adapters of 4, 4, 6 and 1 pages: the 1- and 4-page adapters sit in HBM (5 pages, past
/// the 4-page LoRA region but within the largest adapter's 6), then the 6-page adapter, never
/// loaded, is reloaded with 1 page. The bound used to shrink to 4 pages under the 5 already
/// resident; it is now the largest adapter the engine has served, which never shrinks.
#[test]
fn vllm_reload_shrinks_the_largest_adapter_below_what_is_resident() {
    let stats = replay("vllm-reload-shrinks-the-largest-adapter-below-what-is-resident");
    assert_eq!(stats.adapters_reloaded, 1);
}

/// vllm-async (the input's policy byte picked `vllm` when its loads overlapped compute): a
/// 3-page adapter's host → HBM load is in flight when a reload replaces it with an 8-page
/// version, then the load of the old version is reported lost. It used to register yet
/// another version (and fail for room); a retired version whose copy is lost now just goes.
/// The synchronous `vllm` starts that load only as a step forms, after the reload.
#[test]
fn lost_copy_of_an_adapter_version_already_replaced() {
    let stats = replay_as(
        "lost-copy-of-an-adapter-version-already-replaced",
        PolicyKind::VllmAsync,
    );
    assert_eq!((stats.nodes_lost, stats.adapters_reloaded), (1, 1));
}

/// fastlibra-wos, host and NVMe full of adapters: the NVMe copy of a 5-page adapter is reported
/// lost while KV under it is still moving, so the lost copy cannot give its pages and no room
/// can be made. `handle_transfer_lost` used to return `Alloc` for an issued transfer; now it
/// answers `Lost::AdapterPending`: the lost copy is never loaded again, its requests wait, and
/// the engine registers the adapter again at a tick when there is room. (The input was found
/// again by mutating the first one after the progress rule of `engine/progress.rs` changed
/// which transfers an engine with nothing to run issues: the first no longer reached the path.)
#[test]
fn lost_adapter_with_no_room_while_its_kv_moves() {
    let stats = replay("lost-adapter-with-no-room-while-its-kv-moves");
    assert!(stats.nodes_lost >= 1, "{stats:?}");
}
