//! `<policy>.requests.csv` (`bench --requests-csv`): one row per request, for analysis the
//! histograms cannot give, such as pairing the same request across policies or finding which
//! requests form a tail.
//!
//! Columns, in this order (times in ms, `ttft_ms`, `tpot_ms` and `e2e_ms` empty where a
//! request has none):
//!
//! | column | meaning |
//! |---|---|
//! | `request`, `session`, `adapter` | ids as the workload numbers them (`session` empty for a single request) |
//! | `arrival_ms` | scheduled arrival, from the run's start |
//! | `status` | `ok`, or why it failed: `unknown_adapter`, `too_long`, `rejected`, `unfinished` |
//! | `ttft_ms`, `tpot_ms`, `e2e_ms` | time to first token, mean time per output token after it, arrival to last token |
//! | `queue_ms`, `lora_cold_ms`, `kv_cold_ms`, `prefill_ms` | the TTFT breakdown (zero over HTTP: a client cannot see it) |
//! | `prompt_tokens`, `output_tokens` | tokens sent and generated |
//! | `lora_hit` | 1 if the adapter was in HBM on arrival |
//! | `kv_hit_blocks`, `kv_reusable_blocks` | history blocks found in HBM on arrival, and reusable anywhere |
//! | `preemptions` | times its KV was recomputed after preemption |
//!
//! Rows are sorted by request id; the same seed gives the same file on the simulator. Ids are
//! handed out as requests are released, so across policies a follow-up turn or a DGG callee is
//! matched by its session and its place in that session's arrival order, not by its id.

use std::path::{Path, PathBuf};

use fastlibra_runtime::outcome::{FailureReason, RequestOutcome};
use serde::Serialize;

use super::error::ReportError;
use super::files::write_file;

/// The file name for `policy`.
pub fn file_name(policy: &str) -> String {
    format!("{policy}.requests.csv")
}

#[derive(Serialize)]
struct Row {
    request: u64,
    session: Option<u64>,
    adapter: u32,
    arrival_ms: f64,
    status: &'static str,
    ttft_ms: Option<f64>,
    tpot_ms: Option<f64>,
    e2e_ms: Option<f64>,
    queue_ms: f64,
    lora_cold_ms: f64,
    kv_cold_ms: f64,
    prefill_ms: f64,
    prompt_tokens: u32,
    output_tokens: u32,
    lora_hit: u8,
    kv_hit_blocks: u32,
    kv_reusable_blocks: u32,
    preemptions: u32,
}

fn ms(ns: u64) -> f64 {
    // Microsecond resolution keeps the file short and exact enough.
    (ns / 1_000) as f64 / 1e3
}

fn status(failure: Option<&FailureReason>) -> &'static str {
    match failure {
        None => "ok",
        Some(FailureReason::UnknownAdapter) => "unknown_adapter",
        Some(FailureReason::TooLong) => "too_long",
        Some(FailureReason::Rejected) => "rejected",
        Some(FailureReason::Unfinished) => "unfinished",
    }
}

fn row(o: &RequestOutcome) -> Row {
    Row {
        request: o.request,
        session: o.session,
        adapter: o.adapter,
        arrival_ms: ms(o.arrival_ns),
        status: status(o.failure.as_ref()),
        ttft_ms: o.ttft_ns().map(ms),
        tpot_ms: o.tpot_ns().map(ms),
        e2e_ms: o.e2e_ns().map(ms),
        queue_ms: ms(o.queue_ns),
        lora_cold_ms: ms(o.lora_cold_ns),
        kv_cold_ms: ms(o.kv_cold_ns),
        prefill_ms: ms(o.prefill_ns),
        prompt_tokens: o.prompt_tokens,
        output_tokens: o.output_tokens,
        lora_hit: u8::from(o.lora_hit),
        kv_hit_blocks: o.kv_hit_blocks,
        kv_reusable_blocks: o.kv_reusable_blocks,
        preemptions: o.preemptions,
    }
}

/// The file's bytes: a header and one row per outcome, by request id.
pub fn render(outcomes: &[RequestOutcome]) -> Result<Vec<u8>, ReportError> {
    let mut sorted: Vec<&RequestOutcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.request);
    // The header is written here, not by serde with the first row, so a run without
    // requests gets it too.
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(HEADER)
        .map_err(|e| ReportError::Csv(e.to_string()))?;
    for o in sorted {
        w.serialize(row(o))
            .map_err(|e| ReportError::Csv(e.to_string()))?;
    }
    w.into_inner().map_err(|e| ReportError::Csv(e.to_string()))
}

/// The header: [`Row`]'s fields, in order.
const HEADER: [&str; 18] = [
    "request",
    "session",
    "adapter",
    "arrival_ms",
    "status",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "queue_ms",
    "lora_cold_ms",
    "kv_cold_ms",
    "prefill_ms",
    "prompt_tokens",
    "output_tokens",
    "lora_hit",
    "kv_hit_blocks",
    "kv_reusable_blocks",
    "preemptions",
];

/// Writes `<policy>.requests.csv` into `dir` and returns its path.
pub fn write(
    dir: &Path,
    policy: &str,
    outcomes: &[RequestOutcome],
) -> Result<PathBuf, ReportError> {
    write_file(dir, &file_name(policy), render(outcomes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(request: u64, failure: Option<FailureReason>) -> RequestOutcome {
        RequestOutcome {
            request,
            session: request.is_multiple_of(2).then_some(7),
            adapter: 3,
            arrival_ns: 1_500_000,
            first_token_ns: failure.is_none().then_some(4_000_000),
            finish_ns: 10_000_000,
            prompt_tokens: 100,
            output_tokens: 4,
            queue_ns: 500_000,
            prefill_ns: 2_000_000,
            lora_hit: true,
            kv_hit_blocks: 2,
            kv_reusable_blocks: 3,
            failure,
            ..RequestOutcome::default()
        }
    }

    fn read(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::Reader::from_reader(bytes);
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn one_row_per_request_by_id_with_failures_named_and_missing_times_empty() {
        let outcomes = [
            outcome(5, Some(FailureReason::Unfinished)),
            outcome(2, None),
        ];
        let (header, rows) = read(&render(&outcomes).unwrap());
        assert_eq!(header, HEADER);
        // Values are looked up by HEADER's names: a Row whose fields drift from it fails here.
        assert_eq!(rows.len(), 2);
        let col = |row: &[String], name: &str| {
            row[HEADER.iter().position(|h| *h == name).unwrap()].clone()
        };
        assert_eq!(col(&rows[0], "request"), "2");
        assert_eq!(col(&rows[0], "session"), "7");
        assert_eq!(col(&rows[0], "status"), "ok");
        assert_eq!(col(&rows[0], "arrival_ms"), "1.5");
        assert_eq!(col(&rows[0], "ttft_ms"), "2.5");
        assert_eq!(col(&rows[0], "tpot_ms"), "2.0");
        assert_eq!(col(&rows[0], "e2e_ms"), "8.5");
        assert_eq!(col(&rows[0], "lora_hit"), "1");
        assert_eq!(col(&rows[1], "request"), "5");
        assert_eq!(col(&rows[1], "session"), "");
        assert_eq!(col(&rows[1], "status"), "unfinished");
        assert_eq!(col(&rows[1], "ttft_ms"), "");
        assert_eq!(col(&rows[1], "e2e_ms"), "");
    }

    #[test]
    fn a_run_without_requests_still_gets_the_header() {
        let (header, rows) = read(&render(&[]).unwrap());
        assert_eq!(header, HEADER);
        assert!(rows.is_empty());
    }
}
