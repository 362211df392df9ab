//! The front: replays the workload in wall-clock time, routes each new session, releases
//! follow-up turns when answers come back, reloads adapters, reports progress, and at the end
//! collects every shard's outcomes and report.

use std::sync::Arc;
use std::time::Duration;

use glommio::channels::shared_channel::ConnectedSender;
use rustc_hash::FxHashMap;

use super::inbox::{TaggedInbox, send};
use super::{FromShard, RunOptions, ToShard};
use crate::outcome::RequestOutcome;
use crate::real::adapters::SourceAdapter;
use crate::real::error::RealError;
use crate::real::replay::Replay;
use crate::real::router::Router;
use crate::real::shard::{Clock, ShardReport};
use crate::sim::SimProgress;
use crate::workload::Workload;

pub(crate) struct Front<'a> {
    pub(crate) workload: &'a Workload,
    pub(crate) router: Router,
    pub(crate) options: &'a RunOptions,
    pub(crate) clock: Clock,
    pub(crate) adapters: Vec<Arc<SourceAdapter>>,
    pub(crate) page_bytes: u64,
    /// When the workload's time zero fell on the run's clock (set once the shards are up).
    pub(crate) start_ns: std::cell::Cell<u64>,
}

pub(crate) type FrontInbox = TaggedInbox<FromShard>;

/// The longest the front waits without a message; it wakes sooner for what is due.
const IDLE_WAIT: Duration = Duration::from_millis(100);

type Served = Result<(Vec<RequestOutcome>, u64, FxHashMap<u64, u64>), RealError>;

type FrontResult = Result<(Vec<RequestOutcome>, Vec<(ShardReport, u64)>, u64), RealError>;

impl Front<'_> {
    pub(crate) async fn run(
        &self,
        txs: &[ConnectedSender<ToShard>],
        inbox: &FrontInbox,
    ) -> FrontResult {
        let result = self.serve(txs, inbox).await;
        // Whatever happened, every shard is told to finish and drained.
        for tx in txs {
            let _ = tx.send(ToShard::Finish).await;
        }
        let mut outcomes = Vec::new();
        let mut reports = Vec::new();
        let mut failure = None;
        let mut open = vec![true; txs.len()];
        while open.iter().any(|&o| o) {
            let Some((s, msg)) = inbox.pop() else {
                inbox.wait(IDLE_WAIT).await;
                continue;
            };
            if !open[s] {
                continue; // the channel closing after the shard's report
            }
            match msg {
                Some(FromShard::Outcome(o)) => outcomes.push(o),
                Some(FromShard::Done(r)) => {
                    let served = r.served;
                    reports.push((*r, served));
                    open[s] = false;
                }
                Some(FromShard::Failed(e)) => {
                    failure.get_or_insert(RealError::Runtime(e));
                    open[s] = false;
                }
                Some(FromShard::Ready) => {}
                None => {
                    failure.get_or_insert(RealError::Runtime(format!("shard {s} stopped")));
                    open[s] = false;
                }
            }
        }
        let (mut served_outcomes, reloads, scheduled) = result?;
        if let Some(e) = failure {
            return Err(e);
        }
        for mut o in outcomes {
            fix_arrival(&mut o, &scheduled);
            served_outcomes.push(o);
        }
        Ok((served_outcomes, reports, reloads))
    }

    /// Serves the workload; returns the outcomes so far, the reloads sent, and each request's
    /// scheduled arrival (for the outcomes that come back after it returns).
    async fn serve(&self, txs: &[ConnectedSender<ToShard>], inbox: &FrontInbox) -> Served {
        let mut ready = 0;
        while ready < txs.len() {
            let Some((_, msg)) = inbox.pop() else {
                inbox.wait(IDLE_WAIT).await;
                continue;
            };
            match msg {
                Some(FromShard::Ready) => ready += 1,
                Some(FromShard::Failed(e)) => return Err(RealError::Runtime(e)),
                _ => return Err(RealError::Runtime("a shard stopped during start-up".into())),
            }
        }
        let start_ns = self.clock.now_ns();
        self.start_ns.set(start_ns);
        let mut replay = Replay::new(self.workload);
        let horizon = replay.last_arrival_ns() + self.options.drain_ns;
        let mut loads = vec![0u32; txs.len()];
        let mut session_shard: FxHashMap<u64, u32> = FxHashMap::default();
        let mut scheduled: FxHashMap<u64, u64> = FxHashMap::default();
        let mut outcomes = Vec::new();
        let mut reloads = 0u64;
        let mut next_reload = self.options.reload_every_ns;
        let mut next_progress = 0;
        let mut reload_seed = self.options.seed.wrapping_mul(31);
        loop {
            let now = self.clock.now_ns() - start_ns;
            while let Some((request, at)) = replay.pop_due(now) {
                let session = request.session.unwrap_or(u64::MAX - request.id);
                let shard = *session_shard
                    .entry(session)
                    .or_insert_with(|| self.router.route(request.adapter, &loads));
                loads[shard as usize] += 1;
                scheduled.insert(request.id, start_ns + at);
                send(&txs[shard as usize], ToShard::Arrive(request)).await?;
            }
            if let Some(t) = next_reload
                && now >= t
                && !self.adapters.is_empty()
            {
                reload_seed = reload_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let adapter = (reload_seed >> 33) as usize % self.adapters.len();
                let old = &self.adapters[adapter];
                let source = Arc::new(SourceAdapter::random(
                    &self.options.model,
                    &old.name,
                    old.paged.layout.shape.rank,
                    reload_seed,
                    self.page_bytes,
                )?);
                for tx in txs {
                    send(tx, ToShard::Reload(adapter as u32, source.clone())).await?;
                }
                reloads += 1;
                next_reload = Some(t + self.options.reload_every_ns.unwrap_or(u64::MAX));
            }
            while let Some((s, msg)) = inbox.pop() {
                match msg {
                    Some(FromShard::Outcome(mut o)) => {
                        loads[s] = loads[s].saturating_sub(1);
                        fix_arrival(&mut o, &scheduled);
                        if let Some(ended) = replay.on_outcome(now, &o) {
                            session_shard.remove(&ended);
                            send(&txs[s], ToShard::EndSession(ended)).await?;
                        }
                        outcomes.push(o);
                    }
                    Some(FromShard::Failed(e)) => return Err(RealError::Runtime(e)),
                    Some(_) => {}
                    None => return Err(RealError::Runtime(format!("shard {s} stopped"))),
                }
            }
            if now >= next_progress {
                next_progress = now + 500_000_000;
                if let Some(p) = &self.options.progress {
                    (p.0)(SimProgress {
                        simulated_ns: now,
                        last_arrival_ns: replay.last_arrival_ns(),
                        requests_done: outcomes.len() as u64,
                    });
                }
            }
            if replay.is_done() || now > horizon {
                break;
            }
            // Wait for an answer, or until the next arrival, reload or progress line is due.
            let mut until = next_progress.min(horizon);
            if let Some(t) = replay.next_due_ns() {
                until = until.min(t);
            }
            if let Some(t) = next_reload {
                until = until.min(t);
            }
            let now = self.clock.now_ns() - start_ns;
            if until > now {
                inbox
                    .wait(Duration::from_nanos(until - now).min(IDLE_WAIT))
                    .await;
            }
        }
        Ok((outcomes, reloads, scheduled))
    }
}

/// Times are measured from the scheduled arrival, not from when the shard got the request:
/// time spent in the front or the channel counts as queueing.
fn fix_arrival(o: &mut RequestOutcome, scheduled: &FxHashMap<u64, u64>) {
    if let Some(&at) = scheduled.get(&o.request)
        && at < o.arrival_ns
    {
        o.queue_ns += o.arrival_ns - at;
        o.arrival_ns = at;
    }
}
