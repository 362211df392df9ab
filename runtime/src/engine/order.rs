//! The order in which the waiting line is served: who stages first and who is seated first.
//!
//! The line itself stays in arrival order (the progress rule of [`super::progress`] and the
//! preemption rule of [`super::batch`] read it so). What changes with the policy is the order
//! in which `seat_ready` offers seats and `retry_blocked` offers staging room:
//!
//! ```text
//!   waiting line (arrival order) ──▶  [ overdue: waited ≥ bound ][ fresh ]
//!   served (fresh_first)        ──▶  overdue oldest first, then fresh newest first
//!   served (arrival order)      ──▶  oldest first
//! ```
//!
//! **Why fresh first.** Past the knee a line served first come first served hands every
//! request the same, growing queueing delay. On the DGG workload at 30 queries/s (seed 1)
//! fastlibra's median TTFT was 1.1 s: 70 % of requests staged on arrival and then waited about
//! 0.9 s as ready requests for a seat behind everyone staged before them, the rest waited up
//! to 20 s for staging room. The vLLM baselines' median was 0.16–0.55 s only because their
//! adapter misses (43 % of requests) wait 25 s on average behind a full LoRA share and so keep
//! out of the compute queue, while their hits get through in about 40 ms. Serving the freshest
//! request first keeps most requests about as fast as below the knee and puts the backlog on
//! fewer of them: the same work is done, so the mean moves little, the median drops.
//!
//! **Why the bound.** Unbounded, newest first would starve an old request for as long as the
//! overload lasts. A request that has waited `EngineConfig::overdue_after_ns` is *overdue*:
//! overdue requests are served before any fresh one, in arrival order, and a fresh request may
//! not take staging room while an overdue one is short of it. So a request is overtaken only
//! while it is fresh; once overdue, only older requests go before it.
//!
//! **Choosing the bound.** In sustained overload the overdue requests pile up and, served
//! first, take every seat: the line turns first come first served again, with every wait at
//! least the bound. So the share of requests that end up overdue is about the mean wait over
//! the bound, and the bound is the price of a low median: with mild overload P99 comes to
//! about the bound (DGG, 30 queries/s: 40 s instead of 16 s, still below the baselines' 45–48 s);
//! too short a bound and most requests become overdue (DGG, 40 queries/s: a median of 20 s
//! with 20 s, 0.36 s with 30 s, 0.13 s with 40 s). 40 s is the default. 0 gives first come
//! first served: every waiting request is overdue at once. Tying the bound to a moving average
//! of the waits (three or four times it) was tried: the bound grew with the backlog and P99
//! passed 70 s at 40 queries/s.
//!
//! **Only when the line is backed up.** Newest first costs the tail wherever a queue forms,
//! overload or not: on translation at 224 requests/s (seed 2, 300 s; fastlibra near its own
//! knee, its longest wait 0.5 s first come first served) it raised fastlibra's P99 from 406
//! to 996 ms and its longest wait to 9.6 s. So fresh requests go first only while the oldest
//! request in the line has waited `EngineConfig::backlog_after_ns` (1 s by default); a line
//! that drains within that keeps arrival order.
//!
//! What is left as it was: the head of the line for the progress rule is still the oldest
//! request (when nothing runs, `make_way` seats in arrival order), running requests are seated
//! oldest first, and the youngest running request is still the preemption victim.

use super::Engine;
use super::request::Phase;

/// Which order `seat_ready` and `retry_blocked` walk the waiting line in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineOrder {
    /// Oldest first (the progress rule).
    Arrival,
    /// The policy's order: with `fresh_first`, overdue oldest first then fresh newest first.
    Service,
}

impl Engine {
    /// The waiting line's slots in `order`, lazily (a caller that takes a few reads a few).
    pub(crate) fn line_in(&self, order: LineOrder) -> impl Iterator<Item = u32> + '_ {
        let overdue = match order {
            LineOrder::Service if self.config.knobs.fresh_first && self.backed_up() => {
                self.overdue_len()
            }
            _ => self.waiting.len(),
        };
        let old = self.waiting.range(..overdue);
        old.chain(self.waiting.range(overdue..).rev()).copied()
    }

    /// Whether the line is backed up: its oldest request has waited `backlog_after_ns`.
    fn backed_up(&self) -> bool {
        self.waiting.front().is_some_and(|&s| {
            let waited = self
                .now_ns
                .saturating_sub(self.requests[s as usize].arrival_ns);
            waited >= self.config.backlog_after_ns
        })
    }

    /// How many requests at the front of the line are overdue. The line is in arrival order,
    /// so they are a prefix of it.
    fn overdue_len(&self) -> usize {
        match self.overdue_since() {
            Some(since) => self
                .waiting
                .partition_point(|&s| self.requests[s as usize].arrival_ns <= since),
            None => 0,
        }
    }

    /// Requests that arrived at or before this are overdue.
    fn overdue_since(&self) -> Option<u64> {
        self.now_ns.checked_sub(self.config.overdue_after_ns)
    }

    /// Once per scheduling pass: whether an overdue request waits for staging room it lacks.
    pub(crate) fn note_overdue_short(&mut self) {
        self.overdue_short = self.config.knobs.fresh_first
            && self.waiting.range(..self.overdue_len()).any(|&s| {
                let r = &self.requests[s as usize];
                r.phase == Phase::Waiting
                    && r.pin.is_none()
                    && r.waiting_on.is_none()
                    && r.short_of_room
            });
    }

    /// Whether `slot` is fresh while an overdue request waits for staging room: the fresh one
    /// must not take that room (see the module docs).
    pub(crate) fn yields_staging(&self, slot: u32) -> bool {
        self.overdue_short
            && self
                .overdue_since()
                .is_some_and(|since| self.requests[slot as usize].arrival_ns > since)
    }
}
