//! What happened to every request sent over HTTP, and the run's totals.
//!
//! Each request ends as exactly one [`Ending`]: answered (`[DONE]`, or the stream closed after
//! a `finish_reason`), or one failure kind. [`Tally`] counts them so that
//! `sent = answered + Σ failures` always holds (checked by [`Tally::check_invariants`]); the
//! failures never disappear into an average. [`HttpFigures`] is the part of `report.json`
//! that only an HTTP run has.

use std::collections::BTreeMap;

use fastlibra_runtime::outcome::{FailureReason, RequestOutcome};
use serde::{Deserialize, Serialize};

use crate::report::LatencyStats;
use crate::report::latency::LatencyRecorder;

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The stream ended with `[DONE]` (or closed cleanly after a `finish_reason`).
    Answered,
    /// The server answered with this non-2xx status.
    Status(u16),
    /// No connection could be made, or the request could not be written.
    Connect(String),
    /// Nothing arrived for longer than the request timeout (headers or the next chunk).
    Timeout,
    /// The stream broke off (connection error, or the body ended before `[DONE]`).
    BrokenStream(String),
    /// A 2xx answer that is not a stream of server-sent JSON chunks.
    NotSse(String),
    /// The server reported an error inside the stream.
    StreamError(String),
    /// Still in flight when the drain deadline came.
    Unanswered,
}

impl Ending {
    /// The engine's failure reason closest to this ending (`report.json`'s fixed `failures`
    /// schema): 404 → unknown adapter, other statuses → rejected, the rest → unfinished. The
    /// exact kind is in [`HttpFigures::failures`].
    pub fn failure_reason(&self) -> Option<FailureReason> {
        match self {
            Ending::Answered => None,
            Ending::Status(404) => Some(FailureReason::UnknownAdapter),
            Ending::Status(_) => Some(FailureReason::Rejected),
            _ => Some(FailureReason::Unfinished),
        }
    }

    /// A short message, for the first failures the report quotes.
    pub fn describe(&self) -> String {
        match self {
            Ending::Answered => "answered".into(),
            Ending::Status(s) => format!("HTTP {s}"),
            Ending::Connect(m) => format!("connection failed: {m}"),
            Ending::Timeout => "timed out".into(),
            Ending::BrokenStream(m) => format!("broken stream: {m}"),
            Ending::NotSse(m) => format!("not a server-sent event stream: {m}"),
            Ending::StreamError(m) => format!("error in the stream: {m}"),
            Ending::Unanswered => "unanswered at the drain deadline".into(),
        }
    }
}

/// One request as the client saw it. Times are ns from the start of the run; latencies are
/// measured from `scheduled_ns`, not from when the request actually left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Request id (in send order).
    pub request: u64,
    /// Workload session.
    pub session: u32,
    /// Workload adapter index.
    pub adapter: u32,
    /// When the workload's schedule wanted it sent.
    pub scheduled_ns: u64,
    /// When it was actually sent (≥ `scheduled_ns`).
    pub sent_ns: u64,
    /// First chunk with generated text.
    pub first_token_ns: Option<u64>,
    /// When it ended (answered or failed).
    pub finish_ns: u64,
    /// Prompt tokens sent (exact for token ids; the measured length for text).
    pub prompt_tokens: u32,
    /// Output tokens: the server's `usage.completion_tokens` where given, else text chunks.
    pub output_tokens: u32,
    /// Gaps between consecutive text chunks, ns.
    pub gaps_ns: Vec<u64>,
    /// How it ended.
    pub ending: Ending,
}

impl Record {
    /// As the engine's outcome, so the report code summarizes it like any backend's. The
    /// TTFT breakdown (queue, cold starts, prefill) is not visible from outside the server
    /// and stays zero.
    pub fn outcome(&self) -> RequestOutcome {
        RequestOutcome {
            request: self.request,
            session: Some(u64::from(self.session)),
            adapter: self.adapter,
            arrival_ns: self.scheduled_ns,
            first_token_ns: self.first_token_ns,
            finish_ns: self.finish_ns.max(self.scheduled_ns),
            prompt_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
            failure: self.ending.failure_reason(),
            ..RequestOutcome::default()
        }
    }
}

/// Failures by kind. Every kind is always present, so the schema is fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpFailures {
    /// Non-2xx answers, by status code.
    pub http_status: BTreeMap<String, u64>,
    /// Connections refused or requests that could not be written.
    pub connect: u64,
    /// Nothing arrived within the request timeout.
    pub timeout: u64,
    /// Streams that broke off before `[DONE]`.
    pub broken_stream: u64,
    /// 2xx answers that were not server-sent JSON chunks.
    pub not_sse: u64,
    /// Errors the server reported inside the stream.
    pub stream_error: u64,
    /// Still in flight at the drain deadline.
    pub unanswered: u64,
}

impl HttpFailures {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.http_status.values().sum::<u64>()
            + self.connect
            + self.timeout
            + self.broken_stream
            + self.not_sse
            + self.stream_error
            + self.unanswered
    }
}

/// What an HTTP run adds to a policy's summary in `report.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpFigures {
    /// The server's base URL.
    pub url: String,
    /// The model ids its `/v1/models` listed, in order (empty when it did not answer).
    pub models: Vec<String>,
    /// `token ids` or how the text prompts were made.
    pub prompts: String,
    /// Requests sent.
    pub sent: u64,
    /// Requests answered (`[DONE]`).
    pub answered: u64,
    /// Failed requests by kind (`sent = answered + failures`).
    pub failures: HttpFailures,
    /// Turns due by the schedule but not sent before the deadline.
    pub not_sent: u64,
    /// Gaps between streamed chunks (inter-token latency), ms.
    pub itl_ms: LatencyStats,
    /// How late requests left relative to their scheduled time, ms (the sender's own lag;
    /// latencies are measured from the schedule either way).
    pub send_lag_ms: LatencyStats,
    /// Prompt tokens sent, all requests.
    pub prompt_tokens: u64,
    /// Output tokens received, all requests.
    pub output_tokens: u64,
    /// Wall-clock length of the run, s.
    pub wall_s: f64,
    /// The first few failures, quoted.
    pub first_failures: Vec<String>,
    /// What the server's `/metrics` said about the run; `None` when it has no `/metrics`.
    #[serde(default)]
    pub server: Option<super::server_metrics::ServerFigures>,
}

/// Most failures quoted in the report.
const QUOTED_FAILURES: usize = 5;

/// Running totals, filled record by record.
#[derive(Default)]
pub struct Tally {
    figures: HttpFigures,
    itl: LatencyRecorder,
    lag: LatencyRecorder,
}

impl Tally {
    /// Counts one finished request.
    pub fn record(&mut self, r: &Record) {
        let f = &mut self.figures;
        f.sent += 1;
        f.prompt_tokens += u64::from(r.prompt_tokens);
        f.output_tokens += u64::from(r.output_tokens);
        self.lag.record_ns(r.sent_ns.saturating_sub(r.scheduled_ns));
        for &gap in &r.gaps_ns {
            self.itl.record_ns(gap);
        }
        let fails = &mut f.failures;
        match &r.ending {
            Ending::Answered => f.answered += 1,
            Ending::Status(s) => *fails.http_status.entry(s.to_string()).or_default() += 1,
            Ending::Connect(_) => fails.connect += 1,
            Ending::Timeout => fails.timeout += 1,
            Ending::BrokenStream(_) => fails.broken_stream += 1,
            Ending::NotSse(_) => fails.not_sse += 1,
            Ending::StreamError(_) => fails.stream_error += 1,
            Ending::Unanswered => fails.unanswered += 1,
        }
        if r.ending != Ending::Answered && f.first_failures.len() < QUOTED_FAILURES {
            f.first_failures
                .push(format!("request {}: {}", r.request, r.ending.describe()));
        }
    }

    /// Counts a turn that was due but never sent.
    pub fn not_sent(&mut self, turns: u64) {
        self.figures.not_sent += turns;
    }

    /// Sent, answered and failed so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let f = &self.figures;
        (f.sent, f.answered, f.failures.total())
    }

    /// Checks `sent = answered + Σ failures`.
    pub fn check_invariants(&self) {
        let f = &self.figures;
        assert_eq!(f.sent, f.answered + f.failures.total(), "{f:?}");
    }

    /// The figures, with the latency summaries filled in.
    pub fn finish(mut self) -> HttpFigures {
        self.check_invariants();
        self.figures.itl_ms = self.itl.stats();
        self.figures.send_lag_ms = self.lag.stats();
        self.figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(request: u64, ending: Ending) -> Record {
        Record {
            request,
            session: 0,
            adapter: 1,
            scheduled_ns: 1_000,
            sent_ns: 3_000,
            first_token_ns: (ending == Ending::Answered).then_some(5_000_000),
            finish_ns: 9_000_000,
            prompt_tokens: 10,
            output_tokens: 3,
            gaps_ns: vec![2_000_000, 2_000_000],
            ending,
        }
    }

    #[test]
    fn every_request_is_answered_or_failed_once() {
        let mut t = Tally::default();
        let endings = [
            Ending::Answered,
            Ending::Answered,
            Ending::Status(503),
            Ending::Status(503),
            Ending::Status(404),
            Ending::Connect("refused".into()),
            Ending::Timeout,
            Ending::BrokenStream("eof".into()),
            Ending::NotSse("text/html".into()),
            Ending::StreamError("boom".into()),
            Ending::Unanswered,
        ];
        for (i, e) in endings.into_iter().enumerate() {
            t.record(&rec(i as u64, e));
            t.check_invariants();
        }
        t.not_sent(2);
        assert_eq!(t.counts(), (11, 2, 9));
        let f = t.finish();
        assert_eq!(f.failures.http_status.get("503"), Some(&2));
        assert_eq!(f.failures.http_status.get("404"), Some(&1));
        let one_each = [
            f.failures.connect,
            f.failures.timeout,
            f.failures.broken_stream,
            f.failures.not_sse,
            f.failures.stream_error,
            f.failures.unanswered,
        ];
        assert_eq!(one_each, [1; 6]);
        assert_eq!(f.not_sent, 2);
        assert_eq!(f.first_failures.len(), QUOTED_FAILURES);
        assert_eq!(f.first_failures[0], "request 2: HTTP 503");
        assert_eq!(f.itl_ms.count, 22);
        assert!((f.itl_ms.mean - 2.0).abs() < 1e-9);
        assert!((f.send_lag_ms.mean - 0.002).abs() < 1e-9);
        assert_eq!((f.prompt_tokens, f.output_tokens), (110, 33));
    }

    #[test]
    fn outcomes_are_measured_from_the_schedule_and_map_failures() {
        let o = rec(4, Ending::Answered).outcome();
        assert_eq!(o.ttft_ns(), Some(5_000_000 - 1_000));
        assert_eq!(o.e2e_ns(), Some(9_000_000 - 1_000));
        assert_eq!(o.failure, None);
        let reason = |e: Ending| rec(0, e).outcome().failure;
        assert_eq!(
            reason(Ending::Status(404)),
            Some(FailureReason::UnknownAdapter)
        );
        assert_eq!(reason(Ending::Status(429)), Some(FailureReason::Rejected));
        assert_eq!(reason(Ending::Timeout), Some(FailureReason::Unfinished));
        assert_eq!(reason(Ending::Unanswered), Some(FailureReason::Unfinished));
    }
}
