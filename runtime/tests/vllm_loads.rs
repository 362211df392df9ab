//! How the vLLM baselines load adapters: `vllm` synchronously, in the step that needs them
//! (the whole step waits, as in vLLM's model runner), `vllm-async` overlapping compute; and
//! vLLM's CPU cache of `max_cpu_loras` adapters in front of the disk. Invariants are checked
//! after every input (among them: no step runs while a synchronous load is in flight).

mod common;

use common::{BLOCK, Hand, config};
use fastlibra_alloc::Tier;
use fastlibra_runtime::engine::PolicyKind;

const MS: u64 = 1_000_000;

/// Request 1 (adapter 0) decodes for a while; request 2 (adapter 1, not in HBM) arrives while
/// it does. Returns (request 1's finish, request 2's TTFT), ns.
fn decode_then_cold_adapter(policy: PolicyKind) -> (u64, u64) {
    // 100 pages of HBM; vLLM's LoRA share is 20 pages, room for both 8-page adapters.
    let mut hand = Hand::new(config(policy, 100, &[8, 8]));
    hand.transfer_ns = 50 * MS; // a slow adapter load
    hand.step_ns = MS;
    hand.arrive(1, 0, None, common::tokens(1, 2 * BLOCK), 200);
    hand.run_until(100 * MS);
    hand.arrive(2, 1, None, common::tokens(2, 2 * BLOCK), 2);
    hand.run_until(2_000 * MS);
    let first = hand.outcome(1).clone();
    let second = hand.outcome(2).clone();
    assert!(first.failure.is_none() && second.failure.is_none());
    (first.finish_ns, second.ttft_ns().expect("a first token"))
}

#[test]
fn vllm_makes_the_whole_step_wait_for_an_adapter_load() {
    let (sync_finish, sync_ttft) = decode_then_cold_adapter(PolicyKind::Vllm);
    let (async_finish, async_ttft) = decode_then_cold_adapter(PolicyKind::VllmAsync);
    // Asynchronous: request 1 decodes on while adapter 1 loads. Synchronous: it stalls for
    // the load, twice, as its own adapter also loads synchronously at first (each 50 ms).
    assert!(
        sync_finish >= async_finish + 50 * MS,
        "sync {sync_finish} vs async {async_finish}"
    );
    // Request 2 waits for the load either way (and under vllm also for the step in flight).
    assert!(
        async_ttft >= 50 * MS && sync_ttft >= async_ttft,
        "{sync_ttft} {async_ttft}"
    );
}

/// Adapters cached in host memory or HBM (vLLM's CPU cache; the rest are on disk).
fn cached(hand: &Hand, adapters: u32) -> usize {
    let tree = hand.engine.tree();
    (0..adapters)
        .filter(|&id| {
            let node = tree
                .current_adapter(id)
                .and_then(|a| tree.adapter_node(a))
                .expect("registered");
            tree.node(node).expect("live").tier() != Tier::Nvme
        })
        .count()
}

#[test]
fn vllm_reads_adapters_from_disk_beyond_max_cpu_loras() {
    for policy in [PolicyKind::Vllm, PolicyKind::VllmAsync] {
        let mut cfg = config(policy, 100, &[4, 4, 4, 4, 4]);
        cfg.max_cpu_loras = Some(2);
        let mut hand = Hand::new(cfg);
        assert_eq!(
            cached(&hand, 5),
            2,
            "{policy:?}: only two start in host memory"
        );
        for (i, adapter) in [4u32, 3, 0, 4].into_iter().enumerate() {
            let id = i as u64;
            hand.arrive(id, adapter, None, common::tokens(i as u32, 2 * BLOCK), 2);
            hand.run_until(hand.now + 500 * MS);
            assert!(hand.outcome(id).failure.is_none());
            assert!(cached(&hand, 5) <= 2, "{policy:?}: the CPU cache holds two");
        }
        let stats = hand.engine.stats();
        // Cached at first: 0 and 1. Adapter 4 pushes out 0 (least recently used), 3 pushes
        // out 1, 0 comes back from disk and pushes out 4, which comes back from disk: four
        // reads of 4 pages.
        assert_eq!(stats.bytes.nvme_read, (4 * 4) << 20, "{policy:?}");
    }
}

#[test]
fn the_other_policies_ignore_max_cpu_loras() {
    let mut cfg = config(PolicyKind::Fastlibra, 100, &[4, 4, 4]);
    cfg.max_cpu_loras = Some(1);
    let hand = Hand::new(cfg);
    assert_eq!(cached(&hand, 3), 3);
}
