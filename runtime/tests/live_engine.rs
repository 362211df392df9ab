//! The engine's live-serving inputs, driven op by op with invariants checked after each:
//! cancelling a request wherever it is releases its pins at once and emits nothing; a
//! request ended early by the driver completes before the next step forms; adapters added at
//! run time serve, and removed ones go once nothing holds them.

mod common;

use common::{config, tokens};
use fastlibra_runtime::engine::{AdapterInfo, Engine, NewRequest, PolicyKind, StepCmd};
use fastlibra_runtime::outcome::FailureReason;

fn request(id: u64, adapter: u32, len: u32, max_new: u32) -> NewRequest {
    NewRequest {
        id,
        adapter,
        session: None,
        tokens: tokens(id as u32, len),
        max_new_tokens: max_new,
    }
}

/// Completes every transfer at once until a step forms (or nothing more happens).
fn next_step(e: &mut Engine, now: u64) -> Option<StepCmd> {
    loop {
        let mut moved = false;
        while let Some(t) = e.poll_transfer() {
            e.handle_transfer_done(now, t.id, true).unwrap();
            moved = true;
        }
        if let Some(step) = e.poll_step() {
            return Some(step);
        }
        if !moved {
            return None;
        }
    }
}

fn assert_clean(e: &Engine) {
    e.tree().check_invariants().unwrap();
    assert_eq!(e.pinned_nodes(), 0, "pins left");
    assert_eq!(e.active_requests(), 0);
}

#[test]
fn cancelling_releases_pins_wherever_the_request_is() {
    let mut e = Engine::new(config(PolicyKind::Fastlibra, 64, &[2, 2])).unwrap();
    // Waiting (its adapter still on its way up).
    e.handle_arrival(0, request(1, 0, 20, 8));
    assert!(e.cancel_request(1, 1));
    assert!(!e.cancel_request(1, 1), "gone already");
    assert_clean(&e);
    // Running: one step done, the next formed and not yet computed.
    e.handle_arrival(2, request(2, 1, 20, 8));
    let step = next_step(&mut e, 3).expect("prefill");
    e.handle_step_done(4, step.id, &[7]).unwrap();
    let pending = e.poll_step().expect("a decode step formed");
    assert!(e.cancel_request(5, 2));
    assert_clean(&e);
    // The step formed before the cancel is reported done; its token goes nowhere.
    e.handle_step_done(6, pending.id, &[9]).unwrap();
    assert!(e.poll_outcome().is_none(), "a cancel emits no outcome");
    assert_clean(&e);
}

#[test]
fn a_request_ended_early_completes_before_the_next_step_forms() {
    let mut e = Engine::new(config(PolicyKind::Fastlibra, 64, &[2])).unwrap();
    e.handle_arrival(0, request(1, 0, 20, 50));
    let step = next_step(&mut e, 1).expect("prefill");
    e.handle_step_done_ending(2, step.id, &[7], &[1]).unwrap();
    assert!(e.poll_step().is_none(), "nothing left to step");
    let o = e.poll_outcome().expect("completed");
    assert_eq!((o.request, o.output_tokens, o.failure), (1, 1, None));
    assert_clean(&e);
    // Its blocks stay cached: the same prompt reuses them.
    e.handle_arrival(3, request(1, 0, 20, 2));
    let step = next_step(&mut e, 4).expect("prefill");
    assert!(step.prefill[0].context_before >= 16, "{step:?}");
}

#[test]
fn adapters_added_at_run_time_serve_and_removed_ones_go_once_unheld() {
    let mut e = Engine::new(config(PolicyKind::Fastlibra, 64, &[2])).unwrap();
    let (id, _, _) = e.add_adapter(0, AdapterInfo { rank: 4, pages: 3 }).unwrap();
    assert_eq!(id, 1);
    e.handle_arrival(1, request(1, id, 20, 1));
    let step = next_step(&mut e, 2).expect("prefill");
    assert!(!e.remove_adapter(2, id), "a request holds it");
    e.handle_step_done(3, step.id, &[5]).unwrap();
    assert_eq!(e.poll_outcome().unwrap().failure, None);
    assert!(e.remove_adapter(4, id));
    e.tree().check_invariants().unwrap();
    assert_eq!(
        e.tree().usage(fastlibra_alloc::Tier::Hbm).kv,
        0,
        "its KV went with it"
    );
    e.handle_arrival(5, request(2, id, 20, 1));
    assert_eq!(
        e.poll_outcome().unwrap().failure,
        Some(FailureReason::UnknownAdapter)
    );
    // Ids are never reused.
    let (next, _, _) = e.add_adapter(6, AdapterInfo { rank: 4, pages: 3 }).unwrap();
    assert_eq!(next, 2);
    assert_clean(&e);
}
