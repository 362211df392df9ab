//! The open-loop sender: the workload's schedule in wall-clock time, one task per request.
//!
//! ```text
//!   Replay (the runtime's: turns due, callers before callees, think times after answers)
//!     │ pop_due(now) ──► build prompt (whole conversation) ──► spawn task: Client::stream
//!     │                                                              │ first token, Done
//!     ◄──────────── on_outcome(now): next turn, callees ◄────────────┘
//!   until: nothing due and nothing in flight, or the deadline (duration + drain)
//!   at the deadline: in flight → Ending::Unanswered, due but unsent → not_sent
//! ```
//!
//! Open loop: a request is sent when the schedule says, whatever is still in flight, and its
//! latencies are measured from its scheduled time, so a slow server cannot slow the sender
//! down and hide its own queueing (no coordinated omission).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastlibra_kernels::tokenizer::Tokenizer;
use fastlibra_runtime::real::replay::Replay;
use fastlibra_runtime::workload::Workload;
use tokio::sync::mpsc;

use super::accounting::{Ending, Record, Tally};
use super::client::{Client, Streamed};
use super::openai::completion_body;
use super::prompt::{Conversation, PromptMode, Turn, answer_ids};

/// Where completions are posted.
pub const COMPLETIONS_PATH: &str = "/v1/completions";

/// What one run needs besides the workload and the client.
#[derive(Clone)]
pub struct SendPlan {
    /// Served model name per workload adapter.
    pub models: Vec<String>,
    /// How prompts are sent.
    pub mode: PromptMode,
    /// With token ids: the tokenizer that turns answers into ids when the server sends none.
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// When the run stops, measured from its start: duration + drain.
    pub deadline: Duration,
    /// How often `on_progress` is called.
    pub progress_every: Duration,
}

/// A progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressLine {
    /// Seconds since the start.
    pub elapsed_s: u64,
    /// Requests sent.
    pub sent: u64,
    /// Answered.
    pub done: u64,
    /// Failed.
    pub failed: u64,
    /// In flight.
    pub in_flight: u64,
}

/// Everything a run saw.
pub struct SendResult {
    /// Every request, in send order.
    pub records: Vec<Record>,
    /// The totals (not yet finished).
    pub tally: Tally,
    /// Wall-clock length, ns.
    pub wall_ns: u64,
    /// Answers resent as filler ids (token ids, no ids from the server, no tokenizer).
    pub filled_answers: u64,
    /// Answers that joined a conversation as the ids the server sent (`token_ids`).
    pub answers_as_server_ids: u64,
    /// Answers that joined a conversation as ids re-encoded from their text.
    pub answers_reencoded: u64,
}

enum Msg {
    First(u64, u64),
    Done(u64, Streamed),
}

/// A request in flight.
struct Flight {
    session: u32,
    adapter: u32,
    scheduled_ns: u64,
    sent_ns: u64,
    first_token_ns: Option<u64>,
    turn: Turn,
}

/// Runs the workload against the server; must be called inside a `LocalSet`.
pub async fn send_all(
    workload: &Workload,
    client: Rc<Client>,
    plan: &SendPlan,
    mut on_progress: impl FnMut(ProgressLine),
) -> SendResult {
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as u64;
    let deadline_ns = plan.deadline.as_nanos() as u64;
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut replay = Replay::new(workload);
    let mut convs: BTreeMap<u32, Conversation> = BTreeMap::new();
    let mut flights: BTreeMap<u64, Flight> = BTreeMap::new();
    let mut out = SendResult {
        records: Vec::new(),
        tally: Tally::default(),
        wall_ns: 0,
        filled_answers: 0,
        answers_as_server_ids: 0,
        answers_reencoded: 0,
    };
    let mut next_progress = plan.progress_every;
    loop {
        let now = now_ns();
        if now >= deadline_ns {
            break;
        }
        while let Some((req, scheduled_ns)) = replay.pop_due(now) {
            let session = req.session.unwrap_or(0) as u32;
            let conv = convs.entry(session).or_default();
            let turn = conv.turn(&plan.mode, &req.tokens);
            let model = &plan.models[req.adapter as usize % plan.models.len()];
            let body = completion_body(model, &turn.body, req.max_new_tokens);
            let (id, tx, client) = (req.id, tx.clone(), client.clone());
            tokio::task::spawn_local(async move {
                let first_tx = tx.clone();
                let s = client
                    .stream(COMPLETIONS_PATH, &body, start, |t| {
                        let _ = first_tx.send(Msg::First(id, t));
                    })
                    .await;
                let _ = tx.send(Msg::Done(id, s));
            });
            flights.insert(
                req.id,
                Flight {
                    session,
                    adapter: req.adapter,
                    scheduled_ns,
                    sent_ns: now_ns(),
                    first_token_ns: None,
                    turn,
                },
            );
        }
        if start.elapsed() >= next_progress {
            on_progress(progress(&out.tally, flights.len(), start));
            next_progress += plan.progress_every;
        }
        if replay.is_done() && flights.is_empty() {
            break;
        }
        let wake_ns = replay
            .next_due_ns()
            .unwrap_or(u64::MAX)
            .min(deadline_ns)
            .min(next_progress.as_nanos() as u64);
        let wake = start + Duration::from_nanos(wake_ns);
        tokio::select! {
            msg = rx.recv() => if let Some(msg) = msg {
                let done = handle(msg, &mut flights, &mut convs, &mut replay, plan, &mut out);
                if let Some(c) = done.and_then(|session| convs.remove(&session)) {
                    out.filled_answers += u64::from(c.filled_answers);
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    finish(&mut out, &mut replay, flights, deadline_ns.min(now_ns()));
    out.filled_answers += convs
        .values()
        .map(|c| u64::from(c.filled_answers))
        .sum::<u64>();
    out.wall_ns = now_ns();
    on_progress(progress(&out.tally, 0, start));
    out
}

fn progress(tally: &Tally, in_flight: usize, start: Instant) -> ProgressLine {
    let (sent, done, failed) = tally.counts();
    ProgressLine {
        elapsed_s: start.elapsed().as_secs(),
        sent: sent + in_flight as u64,
        done,
        failed,
        in_flight: in_flight as u64,
    }
}

/// Takes one message from a task; returns a session that has ended.
fn handle(
    msg: Msg,
    flights: &mut BTreeMap<u64, Flight>,
    convs: &mut BTreeMap<u32, Conversation>,
    replay: &mut Replay<'_>,
    plan: &SendPlan,
    out: &mut SendResult,
) -> Option<u32> {
    let (id, s) = match msg {
        Msg::First(id, t) => {
            if let Some(f) = flights.get_mut(&id) {
                f.first_token_ns = Some(t);
            }
            return None;
        }
        Msg::Done(id, s) => (id, s),
    };
    let f = flights.remove(&id)?;
    let ending = s.ending.clone().unwrap_or(Ending::Unanswered);
    let output_tokens = s.completion_tokens.unwrap_or(s.chunks);
    let record = Record {
        request: id,
        session: f.session,
        adapter: f.adapter,
        scheduled_ns: f.scheduled_ns,
        sent_ns: f.sent_ns,
        first_token_ns: s.first_token_ns,
        finish_ns: s.finish_ns,
        prompt_tokens: f.turn.tokens,
        output_tokens,
        gaps_ns: s.gaps_ns.clone(),
        ending: ending.clone(),
    };
    out.tally.record(&record);
    let ended = replay.on_outcome(s.finish_ns, &record.outcome());
    out.records.push(record);
    if ending == Ending::Answered
        && let Some(conv) = convs.get_mut(&f.session)
    {
        let ids = answer_ids(&s.token_ids, &s.text, plan.tokenizer.as_deref());
        if matches!(plan.mode, PromptMode::Ids) {
            if !s.token_ids.is_empty() {
                out.answers_as_server_ids += 1;
            } else if !ids.is_empty() {
                out.answers_reencoded += 1;
            }
        }
        conv.answered(&plan.mode, f.turn, &s.text, &ids, output_tokens);
    }
    ended.map(|s| s as u32)
}

/// The deadline came: what is in flight is unanswered; what is due is counted as not sent.
fn finish(
    out: &mut SendResult,
    replay: &mut Replay<'_>,
    flights: BTreeMap<u64, Flight>,
    end_ns: u64,
) {
    for (id, f) in flights {
        let record = Record {
            request: id,
            session: f.session,
            adapter: f.adapter,
            scheduled_ns: f.scheduled_ns,
            sent_ns: f.sent_ns,
            first_token_ns: f.first_token_ns,
            finish_ns: end_ns,
            prompt_tokens: f.turn.tokens,
            output_tokens: 0,
            gaps_ns: Vec::new(),
            ending: Ending::Unanswered,
        };
        out.tally.record(&record);
        out.records.push(record);
    }
    let mut due = 0;
    while replay.pop_due(u64::MAX).is_some() {
        due += 1;
    }
    out.tally.not_sent(due);
    out.records.sort_by_key(|r| r.request);
}
