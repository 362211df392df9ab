//! `bench --backend http` against a canned server on 127.0.0.1: answers, HTTP errors,
//! non-SSE bodies, broken and stalled streams are each counted once, conversations are resent
//! whole, callees wait for their callers, and the run ends by itself at its deadline.

#[path = "support/canned.rs"]
mod canned;
mod support;

use std::time::Duration;

use canned::Canned;
use fastlibra_bench::http::{Ending, HttpOptions, run_http};
use fastlibra_runtime::workload::{AdapterSpec, SessionSpec, SessionStart, TurnSpec, Workload};
use support::{bench_in, read, scratch};

const MS: u64 = 1_000_000;

fn turn(tokens: &[u32]) -> TurnSpec {
    TurnSpec {
        think_ns: 0,
        tokens: tokens.to_vec(),
        max_new_tokens: 3,
    }
}

fn session(adapter: u32, start: SessionStart, turns: Vec<TurnSpec>) -> SessionSpec {
    SessionSpec {
        adapter,
        start,
        turns,
    }
}

/// Adapter k is canned model k; see `canned.rs` for what each does.
fn workload() -> Workload {
    let at = |ms: u64| SessionStart::At(ms * MS);
    Workload {
        name: "canned".into(),
        adapters: canned::MODELS
            .iter()
            .map(|m| AdapterSpec {
                name: format!("lora-{m}"),
                rank: 8,
            })
            .collect(),
        sessions: vec![
            session(0, at(0), vec![turn(&[1, 2, 3]), turn(&[4, 5])]),
            session(
                0,
                SessionStart::After {
                    session: 0,
                    turn: 0,
                    delay_ns: 0,
                },
                vec![turn(&[9])],
            ),
            session(1, at(10), vec![turn(&[7])]),
            session(2, at(10), vec![turn(&[7])]),
            session(3, at(10), vec![turn(&[7])]),
            session(4, at(10), vec![turn(&[7])]),
            session(5, at(10), vec![turn(&[7])]),
            // Its first turn fails, so its second is never sent.
            session(1, at(20), vec![turn(&[7]), turn(&[8])]),
            // Sent late: still waiting for headers at the deadline.
            session(5, at(1_000), vec![turn(&[7])]),
        ],
    }
}

fn options(url: &str, ids: bool) -> HttpOptions {
    HttpOptions {
        url: url.to_string(),
        api_key: None,
        model_map: Vec::new(),
        tokens_as_ids: ids,
        tokenizer: None,
        request_timeout: Duration::from_millis(1_200),
        duration: Duration::from_millis(500),
        drain: Duration::from_millis(1_000),
        progress_every: Duration::from_secs(60),
    }
}

#[test]
fn every_failure_is_counted_once_and_the_run_ends_at_its_deadline() {
    let server = Canned::start(Duration::from_secs(5));
    let run = run_http(&workload(), "server", &options(&server.url, true), |_| {}).expect("runs");
    let f = &run.figures;
    assert_eq!(f.models, canned::MODELS.map(String::from).to_vec());
    assert_eq!(f.sent, 10, "{f:?}");
    assert_eq!(f.answered, 3, "{f:?}");
    assert_eq!(f.failures.http_status.get("503"), Some(&2));
    assert_eq!(f.failures.not_sse, 1);
    assert_eq!(f.failures.broken_stream, 1);
    assert_eq!(f.failures.timeout, 2, "stall and hang");
    assert_eq!(f.failures.unanswered, 1, "the late hang");
    assert_eq!((f.failures.connect, f.failures.stream_error), (0, 0));
    assert_eq!(f.sent, f.answered + f.failures.total());
    assert!(
        f.wall_s < 5.0,
        "the run stops at its 1.5 s deadline, took {}",
        f.wall_s
    );
    assert_eq!(run.result.outcomes.len(), 10);
    assert_eq!(run.result.failed(), 7);

    // The second turn resends the first prompt and its answer (3 filler ids: the canned
    // server sends no ids and there is no tokenizer), then its own tokens.
    let prompts = server.prompts();
    assert!(
        prompts.contains(&"[1,2,3,1000,1000,1000,4,5]".to_string()),
        "{prompts:?}"
    );
    assert!(run.warnings.iter().any(|w| w.contains("filler")));

    // Latencies run from the schedule; the callee waits for its caller's answer.
    let by_session = |s: u32| run.records.iter().find(|r| r.session == s).expect("sent");
    let (caller, callee) = (by_session(0), by_session(1));
    assert_eq!(caller.ending, Ending::Answered);
    assert!(callee.scheduled_ns >= caller.finish_ns);
    for r in run.records.iter().filter(|r| r.ending == Ending::Answered) {
        assert!(r.first_token_ns.expect("first token") > r.scheduled_ns);
        assert_eq!((r.output_tokens, r.gaps_ns.len()), (3, 2));
    }
    assert_eq!(f.itl_ms.count, 6);
}

#[test]
fn a_server_that_returns_token_ids_gets_its_own_ids_back_in_the_next_turn() {
    let server = Canned::start_with_ids(Duration::from_millis(100));
    let w = Workload {
        sessions: workload().sessions.into_iter().take(1).collect(),
        ..workload()
    };
    let run = run_http(&w, "server", &options(&server.url, true), |_| {}).expect("runs");
    assert_eq!((run.figures.sent, run.figures.answered), (2, 2));
    let prompts = server.prompts();
    assert_eq!(
        prompts,
        ["[1,2,3]", "[1,2,3,100,101,102,4,5]"],
        "{prompts:?}"
    );
    assert!(run.warnings.iter().all(|w| !w.contains("filler")));
    assert!(
        run.figures
            .prompts
            .contains("2 as the server's ids, 0 re-encoded"),
        "{}",
        run.figures.prompts
    );
}

#[test]
fn text_prompts_are_calibrated_and_carry_the_conversation() {
    let server = Canned::start(Duration::from_millis(100));
    let w = Workload {
        sessions: workload().sessions.into_iter().take(1).collect(),
        ..workload()
    };
    let run = run_http(&w, "server", &options(&server.url, false), |_| {}).expect("runs");
    assert_eq!((run.figures.sent, run.figures.answered), (2, 2));
    assert!(
        run.figures.prompts.contains("2.000 tokens per word"),
        "{}",
        run.figures.prompts
    );
    let prompts = server.prompts();
    // The calibration request, then two turns; the second holds the first answer's text.
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    assert!(prompts[2].contains(" tok0 tok1 tok2"), "{prompts:?}");
    assert!(prompts[2].starts_with(&prompts[1][..prompts[1].len() - 1]));
}

#[test]
fn the_command_writes_the_report_and_fails_only_when_nothing_was_answered() {
    let server = Canned::start(Duration::from_millis(100));
    let dir = scratch("http", "canned");
    let common = [
        "--backend",
        "http",
        "--workload",
        "chatbot",
        "--loras",
        "2",
        "--rate",
        "4",
        "--duration",
        "1",
        "--drain",
        "2",
        "--request-timeout",
        "1",
        "--tokens-as-ids",
    ];
    // Adapter 0 → `ok`, adapter 1 → `busy` (the listing's order): some answers, some 503s.
    let mut args = common.to_vec();
    args.extend(["--url", &server.url, "--out", "out", "--requests-csv"]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("in flight"), "progress lines: {stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&read(&dir.join("out/report.json"))).expect("json");
    let http = &report["policies"]["server"]["http"];
    assert_eq!(http["url"], serde_json::json!(server.url));
    assert!(http["answered"].as_u64().expect("answered") > 0, "{http}");
    let md = read(&dir.join("out/report.md"));
    assert!(
        md.contains("measured over HTTP") && md.contains("## HTTP"),
        "{md}"
    );
    assert!(dir.join("out/server.ttft.hgrm").is_file());
    // One row per request sent or not, answered ones `ok`, the 503s failed.
    let csv = read(&dir.join("out/server.requests.csv"));
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let requests = report["policies"]["server"]["requests"].as_u64();
    assert_eq!(Some(rows.len() as u64), requests, "{csv}");
    let ok = rows.iter().filter(|r| r.contains(",ok,")).count() as u64;
    assert_eq!(Some(ok), http["answered"].as_u64(), "{csv}");

    // A URL where nothing listens: every request a connection failure, the report still
    // written, the exit status non-zero.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut args = common.to_vec();
    args.extend(["--url", &url, "--out", "dead"]);
    let out = bench_in(&dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no request was answered"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&read(&dir.join("dead/report.json"))).expect("json");
    let http = &report["policies"]["server"]["http"];
    assert!(
        http["failures"]["connect"].as_u64().expect("connect") > 0,
        "{http}"
    );
    assert_eq!(http["answered"], serde_json::json!(0));

    // Flags of the http backend are refused elsewhere, and --url is required.
    let out = bench_in(&dir, &["--url", &url]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend http"));
    let out = bench_in(&dir, &["--backend", "http"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --url"));
}
