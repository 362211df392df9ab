//! The order the waiting line is served in (see [`super::order`]): fresh requests newest
//! first, overdue ones before them in arrival order. Invariants are checked after every input
//! (`EngineConfig::check_invariants`).

use fastlibra_alloc::Tier;

use super::test_config::{BLOCK, checked_config};
use super::{Engine, NewRequest, PolicyKind, StepCmd};
const MS: u64 = 1_000_000;

/// One seat per step, the adapter already in HBM: every step seats exactly one request.
fn engine(policy: PolicyKind, overdue_after_ns: u64) -> Engine {
    let mut config = checked_config(policy, [256, 64, 64]);
    config.max_batch = 1;
    config.overdue_after_ns = overdue_after_ns;
    config.backlog_after_ns = 0;
    let mut e = Engine::new(config).expect("valid config");
    let adapter = e.tree.current_adapter(0).expect("registered");
    let lora = e.tree.adapter_node(adapter).expect("registered");
    if e.tree.node(lora).expect("registered").tier() != Tier::Hbm {
        e.tree.begin_transfer(lora, Tier::Hbm).expect("room");
        e.tree.complete_transfer(lora).expect("begun");
    }
    e
}

/// A one-token answer to a one-block prompt of its own (no prefix shared with the others).
fn arrive(e: &mut Engine, now_ns: u64, id: u64) {
    let tokens = (0..=BLOCK).map(|i| 1000 * id as u32 + i).collect();
    e.handle_arrival(
        now_ns,
        NewRequest {
            id,
            adapter: 0,
            session: None,
            tokens,
            max_new_tokens: 1,
        },
    );
}

/// The requests the step seats.
fn seated(step: &StepCmd) -> Vec<u64> {
    step.prefill.iter().map(|p| p.request).collect()
}

fn finish(e: &mut Engine, now_ns: u64, step: &StepCmd) {
    let tokens = vec![1; step.samples.len()];
    e.handle_step_done(now_ns, step.id, &tokens)
        .expect("issued");
}

/// Request 1 runs while 2 and 3 arrive; which of them does the next step seat?
fn next_after_two_arrivals(policy: PolicyKind, overdue_after_ns: u64, done_ns: u64) -> Vec<u64> {
    let mut e = engine(policy, overdue_after_ns);
    arrive(&mut e, MS, 1);
    let first = e.poll_step().expect("1 runs at once");
    assert_eq!(seated(&first), [1]);
    arrive(&mut e, 2 * MS, 2);
    arrive(&mut e, 3 * MS, 3);
    finish(&mut e, done_ns, &first);
    seated(&e.poll_step().expect("a ready request is seated"))
}

#[test]
fn fastlibra_seats_the_freshest_request_first() {
    assert_eq!(
        next_after_two_arrivals(PolicyKind::Fastlibra, 1_000 * MS, 4 * MS),
        [3],
        "the request that arrived last overtakes the one before it"
    );
}

#[test]
fn a_line_that_is_not_backed_up_keeps_arrival_order() {
    let mut e = engine(PolicyKind::Fastlibra, 1_000 * MS);
    e.config.backlog_after_ns = 10 * MS;
    arrive(&mut e, MS, 1);
    let first = e.poll_step().expect("1 runs at once");
    arrive(&mut e, 2 * MS, 2);
    arrive(&mut e, 3 * MS, 3);
    // At 4 ms the oldest waiting request (2) has waited 2 ms, under the 10 ms bound.
    finish(&mut e, 4 * MS, &first);
    assert_eq!(seated(&e.poll_step().expect("seated")), [2]);
}

#[test]
fn the_baselines_keep_first_come_first_served() {
    for policy in [PolicyKind::Vllm, PolicyKind::VllmAsync, PolicyKind::Slora] {
        assert_eq!(
            next_after_two_arrivals(policy, 1_000 * MS, 4 * MS),
            [2],
            "{policy:?}"
        );
    }
}

#[test]
fn an_overdue_request_is_not_overtaken() {
    // At 12.5 ms with a 10 ms bound, 2 (arrived at 2 ms) is overdue and 3 (at 3 ms) is not.
    assert_eq!(
        next_after_two_arrivals(PolicyKind::Fastlibra, 10 * MS, 12 * MS + MS / 2),
        [2]
    );
}

/// Twice as many arrivals as the engine serves, for a while: every request that overtook an
/// older one did so while the older one was still fresh (unbounded newest first fails this),
/// and every request is served.
#[test]
fn overtaking_stops_at_the_bound_under_overload() {
    let bound_ns = 20 * MS;
    let mut e = engine(PolicyKind::Fastlibra, bound_ns);
    let arrivals: u64 = 200;
    let mut seated_ns: Vec<Option<u64>> = vec![None; arrivals as usize + 1];
    let mut running: Option<(StepCmd, u64)> = None;
    let mut now_ns = 0;
    let mut next_id = 1;
    while seated_ns[1..].iter().any(Option::is_none) {
        assert!(now_ns < 10_000 * MS, "every request is served");
        now_ns += MS;
        if next_id <= arrivals {
            arrive(&mut e, now_ns, next_id);
            next_id += 1;
        }
        if let Some((step, done_ns)) = running.take_if(|(_, done)| *done <= now_ns) {
            finish(&mut e, done_ns, &step);
        }
        if running.is_none()
            && let Some(step) = e.poll_step()
        {
            for id in seated(&step) {
                seated_ns[id as usize].get_or_insert(now_ns);
            }
            running = Some((step, now_ns + 2 * MS));
        }
    }
    let arrival_ns = |id: u64| id * MS;
    let mut overtaken = 0;
    for old in 1..=arrivals {
        for young in old + 1..=arrivals {
            let (old_at, young_at) = (seated_ns[old as usize], seated_ns[young as usize]);
            if young_at < old_at {
                overtaken += 1;
                let young_at = young_at.expect("served");
                assert!(
                    young_at < arrival_ns(old) + bound_ns,
                    "{young} was seated at {young_at} ns, after {old} became overdue"
                );
            }
        }
    }
    assert!(overtaken > 0, "fresh requests did overtake older ones");
}
