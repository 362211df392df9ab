//! Recovery scenarios: data lost in transit (a page that failed its checksum) and adapters
//! reloaded under the same id. Invariants are checked after every input (see `common`).

mod common;

use common::{BLOCK, Hand, config, tokens};
use fastlibra_runtime::engine::{AdapterInfo, Lost, PolicyKind};

const S: u64 = 1_000_000_000;

#[test]
fn reloaded_adapter_never_reuses_old_kv() {
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 64, &[4]));
    let prompt = tokens(1, 8 * BLOCK);
    hand.arrive(1, 0, None, prompt.clone(), 2);
    hand.run_until(S);
    hand.arrive(2, 0, None, prompt.clone(), 2);
    hand.run_until(2 * S);
    assert_eq!(
        hand.outcome(2).kv_hit_blocks,
        7,
        "same version: all but the last block reused"
    );

    let (registered, _) = hand
        .engine
        .reload_adapter(hand.now, 0, AdapterInfo { rank: 8, pages: 5 })
        .expect("known adapter");
    assert_eq!(registered.adapter.version, 1);
    assert!(registered.retired.is_some());
    hand.arrive(3, 0, None, prompt.clone(), 2);
    hand.run_until(3 * S);
    let o = hand.outcome(3);
    assert!(o.failure.is_none());
    assert_eq!(
        o.kv_hit_blocks, 0,
        "KV of the old weights must not be reused"
    );
    assert!(!o.lora_hit, "the new weights had to be loaded");
    assert_eq!(hand.engine.doomed_nodes(), 0, "the old version is gone");

    hand.arrive(4, 0, None, prompt, 2);
    hand.run_until(4 * S);
    assert_eq!(
        hand.outcome(4).kv_hit_blocks,
        7,
        "the new version's KV is reused"
    );
    assert_eq!(hand.engine.stats().adapters_reloaded, 1);
}

#[test]
fn reload_while_a_request_waits_switches_it_to_the_new_version() {
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 64, &[4]));
    hand.arrive(1, 0, None, tokens(1, 4 * BLOCK), 2);
    // The adapter's swap-in is in flight; the request waits on it.
    hand.engine
        .reload_adapter(hand.now, 0, AdapterInfo { rank: 8, pages: 4 })
        .expect("known adapter");
    hand.run_until(5 * S);
    let o = hand.outcome(1);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(hand.engine.doomed_nodes(), 0);
    assert!(
        hand.engine
            .reload_adapter(hand.now, 7, AdapterInfo { rank: 8, pages: 4 })
            .is_err()
    );
}

#[test]
fn lost_transfers_are_recomputed_or_reloaded_and_nothing_is_lost() {
    // A and its history must leave HBM (to the host) when B needs the room.
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 24, &[8, 8]));
    hand.arrive(1, 0, Some(1), tokens(1, 4 * BLOCK), 4);
    hand.run_until(2 * S);
    hand.arrive(2, 1, Some(2), tokens(2, 4 * BLOCK), 4);
    hand.run_until(6 * S);
    assert!(hand.outcome(2).failure.is_none());
    // The follow-up needs A and its history back: the next three copies arrive corrupt.
    hand.lose_transfers = 3;
    hand.arrive(3, 0, Some(1), tokens(3, BLOCK), 2);
    hand.run_until(20 * S);
    let o = hand.outcome(3);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(hand.lost.len(), 3, "{:?}", hand.lost);
    assert!(
        hand.lost.iter().all(|l| *l == Lost::Kv { dropped: true }),
        "history blocks were lost and dropped: {:?}",
        hand.lost
    );
    let stats = hand.engine.stats();
    // A lost copy loses every block it carries (a path's missing blocks travel together).
    assert!(stats.nodes_lost >= 3, "{}", stats.nodes_lost);
    assert_eq!(stats.pages_lost, stats.nodes_lost, "one page per block");
    assert_eq!(stats.transfer_failures, 0);
    assert_eq!(hand.engine.doomed_nodes(), 0);
    assert_eq!(hand.outcomes.len(), 3);
}

#[test]
fn a_lost_adapter_is_registered_again_and_its_request_completes() {
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 64, &[4]));
    // The first copy is the adapter's host → HBM load.
    hand.lose_transfers = 1;
    hand.arrive(1, 0, None, tokens(1, 4 * BLOCK), 2);
    hand.run_until(5 * S);
    assert!(hand.outcome(1).failure.is_none());
    match hand.lost.as_slice() {
        [Lost::AdapterReloaded { registered, .. }] => {
            assert_eq!(registered.adapter.version, 1);
        }
        other => panic!("expected one adapter reload, got {other:?}"),
    }
    let stats = hand.engine.stats();
    assert_eq!((stats.nodes_lost, stats.adapters_reloaded), (1, 1));
    assert_eq!(hand.engine.doomed_nodes(), 0);
}
