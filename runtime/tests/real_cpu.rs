//! The real runtime on the CPU backend, in wall-clock time: every policy serves a small
//! multi-turn workload on two shards with tiers small enough that pages travel through host
//! memory and the NVMe page file, with `verify` on (cached KV gives the same logits as a
//! recompute from scratch) and invariants checked after every pump.

use fastlibra_runtime::real::{NvmeFaults, run_real};

mod real_common;

use real_common::{MS, assert_sound, options, workload};

#[test]
fn every_policy_serves_real_bytes_and_verifies() {
    let w = workload(6, 12);
    for policy in ["fastlibra", "vllm", "slora"] {
        let run = run_real(&w, policy, &options()).expect("run");
        assert_sound(&run, &w);
        let stats = &run.result.stats;
        assert!(
            stats.bytes.h2d > 0,
            "{policy}: adapters were loaded: {stats:?}"
        );
        if policy == "fastlibra" {
            assert!(stats.bytes.d2h > 0, "fastlibra swaps KV out: {stats:?}");
        }
        assert!(
            run.per_shard_requests.iter().all(|&n| n > 0),
            "both shards serve"
        );
    }
    // fastlibra keeps history on the host and NVMe: pages go through the page file.
    let run = run_real(&w, "fastlibra", &options()).expect("run");
    assert!(
        run.io.pages_written > 0 && run.io.pages_read > 0,
        "{:?}",
        run.io
    );
}

#[test]
fn reloaded_adapters_never_reuse_old_kv() {
    let w = workload(3, 12);
    let mut o = options();
    o.reload_every_ns = Some(60 * MS);
    let run = run_real(&w, "fastlibra", &o).expect("run");
    assert_sound(&run, &w);
    assert!(run.reloads >= 3, "reloads: {}", run.reloads);
    assert!(run.result.stats.adapters_reloaded >= 2 * run.reloads);
}

#[test]
fn nvme_faults_are_never_served_and_nothing_is_lost() {
    let w = workload(8, 24);
    let mut o = options();
    o.faults = Some(NvmeFaults::all(0.15, 7));
    let run = run_real(&w, "fastlibra", &o).expect("run");
    assert_sound(&run, &w);
    let i = run.injected;
    assert!(i.write_eio + i.write_enospc + i.read_eio + i.short_read + i.flipped_bits > 0);
    let io = run.io;
    assert_eq!(io.read_errors, i.read_eio + i.short_read);
    assert!(
        io.checksum_failures >= 1.min(i.flipped_bits),
        "{io:?} {i:?}"
    );
    assert!(
        run.result.stats.nodes_lost > 0,
        "lost pages were dropped and recomputed"
    );
}

/// A shard that cannot start (here: a queue depth the page file refuses; on a GPU, a pool
/// that does not fit in device memory) stops the run with its reason, and the other shards
/// are wound down: no hang.
#[test]
fn a_shard_failing_at_start_up_is_an_error_not_a_hang() {
    let w = workload(2, 4);
    let o = fastlibra_runtime::real::RunOptions {
        queue_depth: 1,
        ..options()
    };
    let err = run_real(&w, "fastlibra", &o).map(|r| r.device).unwrap_err();
    assert!(err.to_string().contains("queue depth"), "{err}");
}
