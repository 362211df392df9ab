//! Properties every synthetic generator must have.

use fastlibra_runtime::workload::{SessionStart, Workload};

use super::{SYNTHETIC_WORKLOADS, WorkloadError, WorkloadParams, by_name};

fn params(rate: f64, seed: u64) -> WorkloadParams {
    WorkloadParams {
        rate_per_s: rate,
        duration_s: 100.0,
        seed,
        ..WorkloadParams::default()
    }
}

fn starts(w: &Workload) -> Vec<u64> {
    w.sessions
        .iter()
        .map(|s| match s.start {
            SessionStart::At(t) => t,
            SessionStart::After { .. } => panic!("synthetic sessions start at a time"),
        })
        .collect()
}

#[test]
fn same_seed_same_workload_other_seed_other_workload() {
    for name in SYNTHETIC_WORKLOADS {
        let a = by_name(name, &params(1.0, 11)).expect("valid");
        let b = by_name(name, &params(1.0, 11)).expect("valid");
        let c = by_name(name, &params(1.0, 12)).expect("valid");
        assert_eq!(a, b, "{name}");
        assert_ne!(a, c, "{name}");
        assert_eq!(a.name, name);
    }
}

#[test]
fn sessions_are_ordered_by_start_within_the_window_and_well_formed() {
    for name in SYNTHETIC_WORKLOADS {
        let w = by_name(name, &params(2.0, 3)).expect("valid");
        let t = starts(&w);
        assert!(t.windows(2).all(|p| p[0] <= p[1]), "{name}");
        assert!(t.iter().all(|&s| s < 100_000_000_000), "{name}");
        for s in &w.sessions {
            assert!((s.adapter as usize) < w.adapters.len());
            assert!(!s.turns.is_empty());
            assert!(
                s.turns
                    .iter()
                    .all(|t| !t.tokens.is_empty() && t.max_new_tokens > 0)
            );
            assert!(s.turns.iter().flat_map(|t| &t.tokens).all(|&x| x < 32_000));
        }
    }
}

#[test]
fn doubling_the_rate_about_doubles_the_sessions() {
    for name in SYNTHETIC_WORKLOADS {
        let one = by_name(name, &params(4.0, 5))
            .expect("valid")
            .sessions
            .len() as f64;
        let two = by_name(name, &params(8.0, 5))
            .expect("valid")
            .sessions
            .len() as f64;
        let ratio = two / one;
        assert!((1.7..2.3).contains(&ratio), "{name}: {one} → {two}");
    }
}

#[test]
fn system_prompts_do_not_depend_on_the_rate() {
    let slow = super::tokens::SystemPrompts::new(5, 100, 32, 128);
    for rate in [1.0, 3.0] {
        let w = by_name("chatbot", &params(rate, 5)).expect("valid");
        for s in &w.sessions {
            assert!(s.turns[0].tokens.starts_with(slow.get(s.adapter)));
        }
    }
}

#[test]
fn bad_requests_are_typed_errors() {
    match by_name("dgg", &params(1.0, 0)) {
        Err(WorkloadError::UnknownWorkload { name, valid }) => {
            assert_eq!(name, "dgg");
            assert_eq!(valid, "chatbot, translation, agents");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        by_name("chatbot", &params(0.0, 0)),
        Err(WorkloadError::InvalidParam {
            field: "rate_per_s",
            ..
        })
    ));
    let too_short = WorkloadParams {
        rate_per_s: 0.001,
        duration_s: 0.001,
        ..WorkloadParams::default()
    };
    for name in SYNTHETIC_WORKLOADS {
        assert!(matches!(
            by_name(name, &too_short),
            Err(WorkloadError::Empty { .. })
        ));
    }
    let msg = by_name("chat", &params(1.0, 0))
        .expect_err("unknown")
        .to_string();
    assert!(msg.contains("chatbot") && msg.contains("agents"), "{msg}");
}

#[test]
fn generate_never_panics_on_nonsense() {
    let nonsense = WorkloadParams {
        lora_count: 0,
        ranks: vec![],
        rate_per_s: f64::NAN,
        duration_s: -1.0,
        seed: 1,
    };
    assert!(super::chatbot::generate(&nonsense).sessions.is_empty());
    assert!(super::translation::generate(&nonsense).sessions.is_empty());
    assert!(super::agents::generate(&nonsense).sessions.is_empty());
}
