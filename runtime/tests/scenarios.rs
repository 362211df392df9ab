//! Small scripted scenarios that show each policy behaving as described (DESIGN §5), driven
//! by hand through the sans-IO interface with invariants checked after every input.

mod common;

use common::{BLOCK, Hand, config, tokens};
use fastlibra_alloc::Tier;
use fastlibra_runtime::engine::PolicyKind;

const S: u64 = 1_000_000_000;

/// The paper's Fig. 3 situation: LoRA A's history KV is cached, then LoRA B needs room.
/// Under vLLM the LoRA slot is recycled (LRU) while A's KV stays in HBM: invalid KV. Under
/// FASTLIBRA, A's KV can only leave before A does, so HBM never holds invalid KV.
fn fig3(policy: PolicyKind) -> (u32, Hand) {
    // HBM: 40 pages. Adapters of 8 pages each. vLLM's LoRA share at 0.2 is 8 pages: one slot.
    let mut hand = Hand::new(config(policy, 40, &[8, 8]));
    hand.arrive(1, 0, Some(1), tokens(1, 4 * BLOCK), 4);
    hand.run_until(2 * S);
    assert!(hand.outcome(1).failure.is_none());
    // Now B arrives; A's KV (5 blocks) is cached and A is resident.
    hand.arrive(2, 1, Some(2), tokens(2, 4 * BLOCK), 4);
    let mut worst = 0;
    for _ in 0..40 {
        hand.run_until(hand.now + S / 10);
        worst = worst.max(hand.engine.tree().invalid_kv_pages());
    }
    assert!(hand.outcome(2).failure.is_none());
    (worst, hand)
}

#[test]
fn fig3_vllm_leaves_invalid_kv_in_hbm() {
    let (worst, _) = fig3(PolicyKind::Vllm);
    assert!(
        worst > 0,
        "vLLM should strand A's KV in HBM when A's slot is recycled"
    );
}

#[test]
fn fig3_fastlibra_never_has_invalid_kv() {
    let (worst, hand) = fig3(PolicyKind::Fastlibra);
    assert_eq!(worst, 0);
    // A's history survived somewhere (host), so a follow-up turn of session 1 reuses it.
    let mut hand = hand;
    hand.arrive(3, 0, Some(1), tokens(3, BLOCK), 2);
    hand.run_until(hand.now + 2 * S);
    let o = hand.outcome(3);
    assert!(o.failure.is_none());
    assert!(o.kv_reusable_blocks >= 4);
}

#[test]
fn slora_keeps_no_history_kv() {
    let mut hand = Hand::new(config(PolicyKind::Slora, 64, &[4]));
    hand.arrive(1, 0, Some(7), tokens(1, 8 * BLOCK), 2);
    hand.run_until(S);
    assert_eq!(
        hand.engine.tree().usage(Tier::Hbm).kv,
        0,
        "KV freed at the end"
    );
    hand.arrive(2, 0, Some(7), tokens(2, BLOCK), 2);
    hand.run_until(2 * S);
    let o = hand.outcome(2);
    assert_eq!(o.kv_hit_blocks, 0);
    assert!(o.kv_reusable_blocks >= 8, "the history was there to reuse");
}

#[test]
fn fastlibra_reuses_session_history() {
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 64, &[4]));
    hand.arrive(1, 0, Some(7), tokens(1, 8 * BLOCK), 2);
    hand.run_until(S);
    hand.arrive(2, 0, Some(7), tokens(2, BLOCK), 2);
    hand.run_until(2 * S);
    let o = hand.outcome(2);
    assert!(o.lora_hit);
    assert_eq!(
        o.kv_hit_blocks, 8,
        "the whole first turn's prompt is cached in HBM"
    );
}

#[test]
fn vllm_keeps_lora_pages_within_its_share() {
    // check_invariants (on in these configs) asserts the share after every input.
    let mut hand = Hand::new(config(PolicyKind::Vllm, 50, &[10, 10, 10]));
    for i in 0..6u64 {
        hand.arrive(i, (i % 3) as u32, None, tokens(i as u32, 2 * BLOCK), 2);
        hand.run_until(hand.now + S / 2);
    }
    hand.run_until(10 * S);
    assert_eq!(hand.outcomes.len(), 6);
    assert!(hand.outcomes.iter().all(|o| o.failure.is_none()));
}

#[test]
fn preemption_is_the_last_resort_and_loses_nothing() {
    // 24 pages: one adapter of 4 and two long requests that cannot both grow to full length.
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 24, &[4]));
    hand.arrive(1, 0, None, tokens(1, 6 * BLOCK), 8 * BLOCK);
    hand.arrive(2, 0, None, tokens(2, 6 * BLOCK), 8 * BLOCK);
    hand.run_until(60 * S);
    assert_eq!(hand.outcomes.len(), 2);
    assert!(hand.outcomes.iter().all(|o| o.failure.is_none()));
    assert!(
        hand.engine.stats().preemptions > 0,
        "the scenario must force a preemption"
    );
}

#[test]
fn unknown_adapter_and_oversized_requests_fail_with_a_reason() {
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 24, &[4]));
    hand.arrive(1, 9, None, tokens(1, BLOCK), 2);
    hand.arrive(2, 0, None, tokens(2, 200 * BLOCK), 2);
    hand.run_until(S);
    use fastlibra_runtime::outcome::FailureReason;
    assert_eq!(hand.outcome(1).failure, Some(FailureReason::UnknownAdapter));
    assert_eq!(hand.outcome(2).failure, Some(FailureReason::TooLong));
}

#[test]
fn finish_fails_what_is_left_instead_of_losing_it() {
    let mut hand = Hand::new(config(PolicyKind::Fastlibra, 64, &[4]));
    hand.arrive(1, 0, None, tokens(1, 4 * BLOCK), 100);
    hand.run_until(S / 100);
    hand.engine.finish(hand.now);
    while let Some(o) = hand.engine.poll_outcome() {
        hand.outcomes.push(o);
    }
    use fastlibra_runtime::outcome::FailureReason;
    assert_eq!(hand.outcome(1).failure, Some(FailureReason::Unfinished));
    assert_eq!(hand.engine.active_requests(), 0);
    assert_eq!(hand.engine.tree().pinned_count(), 0);
}
