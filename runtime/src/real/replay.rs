//! Replays a [`Workload`] in wall-clock time: which turns are due, and which turns and
//! sessions an answer releases (a session's next turn `think_ns` after its answer; a call
//! graph's callee after its caller's turn). The same rules as the simulator's driver.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::engine::NewRequest;
use crate::outcome::RequestOutcome;
use crate::workload::{SessionStart, Workload};

/// The replay state. Pure: the caller supplies the time.
pub struct Replay<'a> {
    workload: &'a Workload,
    due: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    seq: u64,
    dependents: FxHashMap<(u32, u32), Vec<(u32, u64)>>,
    /// Request id → (session, turn, scheduled arrival).
    requests: FxHashMap<u64, (u32, u32, u64)>,
    next_id: u64,
    last_arrival_ns: u64,
}

impl<'a> Replay<'a> {
    /// Schedules every session that starts at a fixed time.
    pub fn new(workload: &'a Workload) -> Replay<'a> {
        let mut replay = Replay {
            workload,
            due: BinaryHeap::new(),
            seq: 0,
            dependents: FxHashMap::default(),
            requests: FxHashMap::default(),
            next_id: 0,
            last_arrival_ns: 0,
        };
        for (index, session) in workload.sessions.iter().enumerate() {
            match session.start {
                SessionStart::At(t) => {
                    replay.last_arrival_ns = replay.last_arrival_ns.max(t);
                    replay.push(t, index as u32, 0);
                }
                SessionStart::After {
                    session,
                    turn,
                    delay_ns,
                } => replay
                    .dependents
                    .entry((session, turn))
                    .or_default()
                    .push((index as u32, delay_ns)),
            }
        }
        replay
    }

    fn push(&mut self, t: u64, session: u32, turn: u32) {
        self.seq += 1;
        self.due.push(Reverse((t, self.seq, session, turn)));
    }

    /// The latest fixed start time.
    pub fn last_arrival_ns(&self) -> u64 {
        self.last_arrival_ns
    }

    /// When the next turn is due.
    pub fn next_due_ns(&self) -> Option<u64> {
        self.due.peek().map(|Reverse(e)| e.0)
    }

    /// The next turn due at or before `now_ns`, as a request, with its scheduled arrival.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<(NewRequest, u64)> {
        let &Reverse((t, _, session, turn)) = self.due.peek()?;
        if t > now_ns {
            return None;
        }
        self.due.pop();
        let spec = &self.workload.sessions[session as usize];
        let turn_spec = &spec.turns[turn as usize];
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(id, (session, turn, t));
        Some((
            NewRequest {
                id,
                adapter: spec.adapter,
                session: Some(u64::from(session)),
                tokens: turn_spec.tokens.clone(),
                max_new_tokens: turn_spec.max_new_tokens,
            },
            t,
        ))
    }

    /// When request `id` was scheduled to arrive.
    pub fn scheduled_ns(&self, id: u64) -> Option<u64> {
        self.requests.get(&id).map(|r| r.2)
    }

    /// A request ended at `now_ns`: schedules what it releases. Returns the session if it has
    /// no more turns (the caller tells its shard to forget the history).
    pub fn on_outcome(&mut self, now_ns: u64, outcome: &RequestOutcome) -> Option<u64> {
        let (session, turn, _) = self.requests.remove(&outcome.request)?;
        let spec = &self.workload.sessions[session as usize];
        let next = turn + 1;
        let ended = if outcome.failure.is_none() && (next as usize) < spec.turns.len() {
            self.push(now_ns + spec.turns[next as usize].think_ns, session, next);
            None
        } else {
            Some(u64::from(session))
        };
        if let Some(dependents) = self.dependents.remove(&(session, turn))
            && outcome.failure.is_none()
        {
            for (dependent, delay) in dependents {
                self.push(now_ns + delay, dependent, 0);
            }
        }
        ended
    }

    /// Nothing is due, nothing is out, nothing waits for an answer.
    pub fn is_done(&self) -> bool {
        self.due.is_empty() && self.requests.is_empty()
    }

    /// Requests handed out and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.requests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{AdapterSpec, SessionSpec, TurnSpec};

    fn turn(think_ns: u64) -> TurnSpec {
        TurnSpec {
            think_ns,
            tokens: vec![1, 2, 3],
            max_new_tokens: 2,
        }
    }

    fn done(request: u64, failed: bool) -> RequestOutcome {
        RequestOutcome {
            request,
            failure: failed.then_some(crate::outcome::FailureReason::Rejected),
            ..RequestOutcome::default()
        }
    }

    #[test]
    fn turns_follow_answers_and_callees_follow_callers() {
        let w = Workload {
            name: "t".into(),
            adapters: vec![AdapterSpec {
                name: "a".into(),
                rank: 8,
            }],
            sessions: vec![
                SessionSpec {
                    adapter: 0,
                    start: SessionStart::At(10),
                    turns: vec![turn(0), turn(5)],
                },
                SessionSpec {
                    adapter: 0,
                    start: SessionStart::After {
                        session: 0,
                        turn: 0,
                        delay_ns: 3,
                    },
                    turns: vec![turn(0)],
                },
            ],
        };
        let mut r = Replay::new(&w);
        assert!(r.pop_due(9).is_none());
        let (first, t) = r.pop_due(10).expect("due");
        assert_eq!((first.id, t), (0, 10));
        assert_eq!(r.on_outcome(20, &done(0, false)), None);
        assert_eq!(r.next_due_ns(), Some(23)); // the callee, 3 ns after the answer
        let (callee, _) = r.pop_due(23).expect("callee");
        assert_eq!(callee.session, Some(1));
        let (second, t) = r.pop_due(25).expect("second turn");
        assert_eq!((second.session, t), (Some(0), 25));
        assert_eq!(r.on_outcome(30, &done(second.id, false)), Some(0));
        assert_eq!(r.on_outcome(30, &done(callee.id, true)), Some(1));
        assert!(r.is_done());
    }
}
