//! The progress guarantee: when no step can form, the head of the line gets the memory.
//!
//! Requests not yet running stage their paths (pin their adapter and history, load what is
//! missing) and, once ready, grow their chains, each as far as HBM allows. On a small HBM these
//! partial holdings can add up to all of it with no request complete: ready requests holding
//! half-grown chains, waiting ones holding adapters, each needing what another holds. Nothing
//! runs, so nothing is ever freed, and loads for the waiting requests may go on cycling through
//! the tiers, so the engine is not idle either: a livelock. The rule that breaks it:
//!
//! - **When.** Nothing runs, no step formed, and the *head* (the first request in the waiting
//!   line with something to compute; the line is in arrival order, a preempted request back
//!   at its place) is short of room: ready but its chain cannot grow, or waiting for room for
//!   the next node of its path. The line is then *wedged*.
//! - **What.** The other waiting requests give back what they hold, youngest first (one holding
//!   a half-grown chain before the others), and the head is retried after each, until it
//!   moves: it is seated, or its next node is on its way. Nothing is taken from the head, and
//!   nothing while copies out of HBM are pending (they free room by themselves).
//! - **Meanwhile.** While wedged, only the head stages, so the others can neither take back
//!   what was freed for it nor push what it has brought up to the host back down. The state
//!   lasts until a step forms (or the head waits for something other than memory).
//!
//! Why a step forms: while wedged, no one but the head stages, so memory held outside the head
//! only shrinks, and the head moves a node or a block further after each release until it is
//! seated or nothing is left to give back; then what it lacks is held by itself or by copies
//! in flight, which settle. Its path and chain are finite and fit in HBM alone (`fits_alone`),
//! so it is seated. Ending the wedge as soon as the head's next copy started was tried: the
//! others staged again at once and demoted the head's adapter from the host before it could
//! go up, over and over. A head that waits for a transfer is not short of room, and nothing is
//! released for it: releasing everyone while the head's history came back over a slow link
//! only made them all load again, over and over. The head keeps its half-grown chain, its
//! reservation: giving back every half-grown chain whenever nothing ran made requests regrow
//! and evict the same blocks in turn.
//!
//! While something runs, the running requests' rule applies instead (see `batch`): a running
//! request short of a page takes back the half-grown chains of waiting ones, then preempts the
//! youngest running one, so the oldest running request is never preempted by another.

use super::Engine;
use super::order::LineOrder;
use super::request::Phase;

impl Engine {
    /// No step formed and nothing runs: if the head of the line is short of room, the line
    /// is wedged and the other waiting requests give way (see the module docs). Seats the
    /// head (and whoever fits after it) into `entries` once it fits.
    pub(crate) fn make_way(
        &mut self,
        entries: &mut Vec<(u32, u64, u32, bool)>,
        budget: &mut u32,
        seats: &mut u32,
    ) {
        loop {
            let Some(head) = self.head() else {
                self.set_wedged(false);
                return;
            };
            if !self.short_of_room(head) {
                // Loading: the line stays as it is (wedged or not) while its copy comes.
                // Held by something else (its adapter to be registered again): no wedge.
                if self.requests[head as usize].waiting_on.is_none() {
                    self.set_wedged(false);
                }
                return;
            }
            self.set_wedged(true);
            // Retried first: as the head of a wedged line it may stage past the share.
            if self.requests[head as usize].phase == Phase::Waiting {
                self.evaluate(head); // may fail it (an adapter gone): the loop looks again
            }
            if self.requests.get(head as usize).map(|r| r.phase) == Some(Phase::Ready) {
                self.seat_ready(LineOrder::Arrival, entries, budget, seats);
            }
            if !entries.is_empty() {
                self.set_wedged(false);
                return;
            }
            if self.head() == Some(head)
                && self.short_of_room(head)
                && (self.pending_out_pages > 0 || !self.release_youngest_but(head))
            {
                return; // wedged until copies out of HBM or the head's own transfers settle
            }
        }
    }

    /// Enters or leaves the wedged state; on leaving, the requests it held back are retried.
    pub(crate) fn set_wedged(&mut self, wedged: bool) {
        if self.wedged && !wedged {
            self.note_memory_change();
        }
        self.wedged = wedged;
    }

    /// Whether `slot`, not running, waits for memory rather than for a transfer. A ready
    /// request seat_ready passed over with the budget and seats untouched could not grow.
    fn short_of_room(&self, slot: u32) -> bool {
        let r = &self.requests[slot as usize];
        match r.phase {
            Phase::Ready => true,
            Phase::Waiting => r.waiting_on.is_none() && r.short_of_room,
            Phase::Prefill | Phase::Decode => false,
        }
    }

    /// The head of the line: the first waiting request with something to compute (one with
    /// an empty prompt can never run, so it holds up no one).
    pub(crate) fn head(&self) -> Option<u32> {
        self.waiting
            .iter()
            .copied()
            .find(|&s| self.requests[s as usize].tokens_to_compute() > 0)
    }

    /// Sends the youngest waiting request other than `head` that holds anything back to
    /// waiting, with its pins and private blocks released; one with a half-grown chain goes
    /// first. False if none holds anything.
    fn release_youngest_but(&mut self, head: u32) -> bool {
        let others = || self.waiting.iter().filter(|&&s| s != head);
        let Some(&slot) = others()
            .rfind(|&&s| !self.requests[s as usize].private.is_empty())
            .or_else(|| others().rfind(|&&s| self.requests[s as usize].pin.is_some()))
        else {
            return false;
        };
        self.send_back(slot);
        true
    }

    /// A waiting request gives back its pins and private blocks and waits again from the
    /// start of its path.
    pub(crate) fn send_back(&mut self, slot: u32) {
        self.unhold(slot);
        let r = &mut self.requests[slot as usize];
        r.phase = Phase::Waiting;
        r.waiting_on = None;
        self.note_memory_change();
    }
}
