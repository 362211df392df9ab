//! Overload runs: a workload with a burst on top, and how long TTFT takes to come back to
//! normal after it.
//!
//! ```text
//!  rate ▲        burst
//!       │      ┌───────┐
//!       │──────┘       └──────────────  base workload
//!       └──────┬───────┬──────┬──────▶ arrival time
//!          burst start  end   recovered (first window from which every window is normal)
//! ```
//!
//! Normal is the mean TTFT of the requests that arrived before the burst. A window of arrivals
//! is normal when none of its requests failed and its mean TTFT is at most
//! `max(2 × normal, normal + 100 ms)`.

use crate::outcome::RequestOutcome;
use crate::workload::{SessionStart, Workload};

/// Slack over the normal mean TTFT that still counts as normal, ns.
const SLACK_NS: f64 = 100_000_000.0;

/// `base` with the first turns of `burst`'s sessions added as one-turn sessions, their start
/// times shifted by `start_ns`: a burst of requests that is over when its arrivals are (later
/// turns would carry the burst's load on past it). Both must use the same adapters (generate
/// them with the same adapter count and ranks).
pub fn with_burst(base: &Workload, burst: &Workload, start_ns: u64) -> Workload {
    assert_eq!(
        base.adapters, burst.adapters,
        "a burst must use the base workload's adapters"
    );
    let offset = base.sessions.len() as u32;
    let mut out = base.clone();
    out.name = format!("{}+burst", base.name);
    out.sessions.extend(burst.sessions.iter().map(|s| {
        let mut s = s.clone();
        s.turns.truncate(1);
        s.start = match s.start {
            SessionStart::At(t) => SessionStart::At(t + start_ns),
            SessionStart::After {
                session,
                turn,
                delay_ns,
            } => SessionStart::After {
                session: session + offset,
                turn,
                delay_ns,
            },
        };
        s
    }));
    out
}

/// Mean TTFT of the requests that arrived in `from_ns..until_ns` and got a first token, ns,
/// with the number of requests that arrived there and the number that failed.
pub fn window_ttft(
    outcomes: &[RequestOutcome],
    from_ns: u64,
    until_ns: u64,
) -> (f64, usize, usize) {
    let (mut sum, mut with_ttft, mut arrived, mut failed) = (0.0, 0usize, 0usize, 0usize);
    for o in outcomes {
        if !(from_ns..until_ns).contains(&o.arrival_ns) {
            continue;
        }
        arrived += 1;
        failed += usize::from(o.failure.is_some());
        if let Some(t) = o.ttft_ns() {
            sum += t as f64;
            with_ttft += 1;
        }
    }
    let mean = if with_ttft == 0 {
        0.0
    } else {
        sum / with_ttft as f64
    };
    (mean, arrived, failed)
}

/// How long after `burst_end_ns` TTFT is back to normal for good: the start of the first
/// window of `window_ns` (counted from the burst's end) from which every window up to
/// `end_ns` is normal (see the module docs). `None` if the last window is not normal.
pub fn recovery_ns(
    outcomes: &[RequestOutcome],
    burst_start_ns: u64,
    burst_end_ns: u64,
    end_ns: u64,
    window_ns: u64,
) -> Option<u64> {
    let (normal, _, _) = window_ttft(outcomes, 0, burst_start_ns);
    let limit = (2.0 * normal).max(normal + SLACK_NS);
    let windows = end_ns
        .saturating_sub(burst_end_ns)
        .div_ceil(window_ns.max(1));
    let mut recovered = None;
    for w in (0..windows).rev() {
        let from = burst_end_ns + w * window_ns;
        let (mean, _, failed) = window_ttft(outcomes, from, (from + window_ns).min(end_ns));
        if failed > 0 || mean > limit {
            break;
        }
        recovered = Some(w * window_ns);
    }
    recovered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureReason;

    fn outcome(arrival_s: f64, ttft_ms: u64, failed: bool) -> RequestOutcome {
        let arrival_ns = (arrival_s * 1e9) as u64;
        RequestOutcome {
            arrival_ns,
            first_token_ns: (!failed).then_some(arrival_ns + ttft_ms * 1_000_000),
            finish_ns: arrival_ns + ttft_ms * 1_000_000,
            prompt_tokens: 1,
            output_tokens: 1,
            failure: failed.then_some(FailureReason::Rejected),
            ..RequestOutcome::default()
        }
    }

    #[test]
    fn recovery_is_the_first_window_after_which_all_are_normal() {
        const S: u64 = 1_000_000_000;
        // Normal 50 ms before the burst (0–10 s), burst 10–12 s, slow until 14.5 s, one
        // normal window at 13 s that does not count, then normal.
        let mut o: Vec<_> = (0..10).map(|s| outcome(f64::from(s), 50, false)).collect();
        o.push(outcome(10.5, 900, false));
        o.push(outcome(11.5, 0, true));
        o.push(outcome(12.5, 2_000, false));
        o.push(outcome(13.2, 60, false));
        o.push(outcome(14.2, 400, false));
        for s in 15..20 {
            o.push(outcome(f64::from(s) + 0.1, 70, false));
        }
        assert_eq!(recovery_ns(&o, 10 * S, 12 * S, 20 * S, S), Some(3 * S));
        // Still slow at the end: not recovered.
        o.push(outcome(19.5, 5_000, false));
        assert_eq!(recovery_ns(&o, 10 * S, 12 * S, 20 * S, S), None);
    }

    #[test]
    fn a_burst_shifts_its_sessions_and_their_dependencies() {
        use crate::workload::{AdapterSpec, SessionSpec, TurnSpec};
        let turn = TurnSpec {
            think_ns: 0,
            tokens: vec![1],
            max_new_tokens: 1,
        };
        let session = |start| SessionSpec {
            adapter: 0,
            start,
            turns: vec![turn.clone(), turn.clone()],
        };
        let adapters = vec![AdapterSpec {
            name: "a".into(),
            rank: 8,
        }];
        let base = Workload {
            name: "base".into(),
            adapters: adapters.clone(),
            sessions: vec![session(SessionStart::At(5))],
        };
        let burst = Workload {
            name: "burst".into(),
            adapters,
            sessions: vec![
                session(SessionStart::At(1)),
                session(SessionStart::After {
                    session: 0,
                    turn: 0,
                    delay_ns: 3,
                }),
            ],
        };
        let w = with_burst(&base, &burst, 100);
        assert_eq!(w.sessions.len(), 3);
        assert_eq!(w.sessions[0].turns.len(), 2, "the base keeps its turns");
        assert!(w.sessions[1..].iter().all(|s| s.turns.len() == 1));
        assert_eq!(w.sessions[1].start, SessionStart::At(101));
        assert_eq!(
            w.sessions[2].start,
            SessionStart::After {
                session: 1,
                turn: 0,
                delay_ns: 3
            }
        );
    }
}
