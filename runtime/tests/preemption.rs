//! Who gives way when pages run out while requests run (see `engine/batch.rs`): a request is
//! admitted only with blocks for its whole prompt, running requests take back what waiting ones
//! hold before anyone running is preempted, and the victim is the youngest running request by
//! arrival, never an older one admitted late.

mod common;

use common::{BLOCK, Hand, config, tokens};
use fastlibra_runtime::engine::PolicyKind;

const MS: u64 = 1_000_000;

/// The loop seen with slora on an 8 MiB HBM in the wall-clock runtime (`bench --backend cpu
/// --workload dgg`), scaled down: one long request decodes while two younger ones that
/// arrived together each need more blocks than are free beside it. Admitted on their first
/// chunk alone, they used to compute it, fail to grow for the next, preempt themselves and
/// let the other in, over and over, every step carrying a doomed prefill chunk: 44 preemptions
/// here before the fix, and the decoding request slowed to the pace of those chunks.
#[test]
fn a_prompt_that_cannot_fit_waits_instead_of_preempting_itself_in_a_loop() {
    // 128 pages, three adapters of 14. The long request holds 55 blocks and grows to 70;
    // each younger one needs 48 for its prompt, and at most 45 are free beside it (with its
    // own adapter and the long one's in HBM), though 16, a chunk, are.
    let mut hand = Hand::new(config(PolicyKind::Slora, 128, &[14, 14, 14]));
    hand.prefill_token_ns = 100_000;
    hand.arrive(1, 0, None, tokens(1, 55 * BLOCK), 60);
    hand.run_until(40 * MS);
    assert!(
        hand.outcomes.is_empty() && hand.engine.active_requests() == 1,
        "the long request is decoding"
    );
    hand.arrive(2, 1, None, tokens(2, 48 * BLOCK), 4);
    hand.arrive(3, 2, None, tokens(3, 48 * BLOCK), 4);
    hand.run_until(2_000 * MS);
    assert_eq!(hand.outcomes.len(), 3);
    assert!(hand.outcomes.iter().all(|o| o.failure.is_none()));
    assert_eq!(hand.engine.stats().preemptions, 0, "{:?}", hand.outcomes);
    // Its 60 decode steps take about a millisecond each when no doomed chunk rides along.
    let long = hand.outcome(1);
    assert!(
        long.finish_ns - long.arrival_ns < 120 * MS,
        "the long request took {} ms",
        (long.finish_ns - long.arrival_ns) / MS
    );
}

/// An older request admitted after a younger one (its adapter took longer to load) is not the
/// victim when the batch outgrows HBM: the younger one is.
#[test]
fn the_victim_is_the_youngest_by_arrival_not_by_admission() {
    // 64 pages, two adapters of 4: 56 pages of KV for three requests that grow to 22 blocks.
    let mut hand = Hand::new(config(PolicyKind::Slora, 64, &[4, 4]));
    hand.transfer_ns = 5 * MS;
    hand.arrive(1, 0, None, tokens(1, 2 * BLOCK), 20 * BLOCK);
    hand.run_until(6 * MS);
    hand.arrive(2, 1, None, tokens(2, 2 * BLOCK), 20 * BLOCK); // loads its adapter: 5 ms
    hand.run_until(hand.now + MS / 2);
    hand.arrive(3, 0, None, tokens(3, 2 * BLOCK), 20 * BLOCK); // its adapter is resident
    hand.run_until(10_000 * MS);
    assert_eq!(hand.outcomes.len(), 3);
    assert!(hand.outcomes.iter().all(|o| o.failure.is_none()));
    assert!(
        hand.engine.stats().preemptions > 0,
        "the scenario must force a preemption"
    );
    assert_eq!(hand.outcome(1).preemptions, 0, "the oldest");
    assert_eq!(
        hand.outcome(2).preemptions,
        0,
        "older than 3, admitted after it"
    );
    assert!(hand.outcome(3).preemptions > 0);
}
