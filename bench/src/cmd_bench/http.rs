//! `bench --backend http`: the plan's workloads sent to a server over HTTP (one server at
//! `--url`, or one started per policy by `--spawn-server`), then the same report files as
//! every backend. The client itself is `fastlibra_bench::http`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use fastlibra_bench::http::spawn::{ServerProcess, SpawnError, free_port, substitute};
use fastlibra_bench::http::{HttpError, HttpOptions, ProgressLine, load_tokenizer, run_http};
use fastlibra_bench::report::{Summarized, files, keep_outcomes, summarize};
use fastlibra_runtime::workload::Workload;

use super::execute::{PointResult, rate_label};
use super::plan::{Output, Plan};
use super::{BenchArgs, BenchError, outputs, plan};

/// The report's column for a server the benchmark did not start.
const SERVER_LABEL: &str = "server";

/// The flags of `--backend http`.
#[derive(Args, Debug, Default)]
pub struct HttpArgs {
    /// `--backend http`: the server's base URL (`http://HOST:PORT`). With --spawn-server,
    /// `{port}` and `{policy}` are replaced as in the command. [default with --spawn-server:
    /// http://127.0.0.1:{port}]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// `--backend http`: sent as `Authorization: Bearer KEY`.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// `--backend http`: send workload adapter ADAPTER (its name or index) to served model
    /// NAME; repeatable. Unmapped adapter k goes to the k-th model of `/v1/models`, cycling.
    #[arg(long, value_name = "ADAPTER=NAME")]
    model_map: Vec<String>,
    /// `--backend http`: send prompts as token-id arrays (exact lengths; vLLM, SGLang and
    /// fastlibra accept them) instead of text.
    #[arg(long)]
    tokens_as_ids: bool,
    /// `--backend http`: the served model's tokenizer (a GGUF file, a tokenizer.json or a
    /// Hugging Face folder): text prompts are the workload's ids detokenised, and with
    /// --tokens-as-ids answers are re-encoded for the next turn. [default: common words,
    /// calibrated once against the server]
    #[arg(long, value_name = "PATH")]
    tokenizer: Option<PathBuf>,
    /// `--backend http`: longest wait for a connection, the headers or the next chunk, s.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    request_timeout: f64,
    /// `--backend http`: start this shell command once per policy (`{policy}` and `{port}`
    /// replaced, a free port on 127.0.0.1), wait for /health, run, stop it. Without
    /// `{policy}` in it, it runs once and the report's column is `server`.
    #[arg(long, value_name = "COMMAND")]
    spawn_server: Option<String>,
    /// `--backend http`: longest wait for a spawned server to answer /health, s.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    spawn_timeout: f64,
}

impl HttpArgs {
    /// The first flag given, for the error when the backend is not `http`.
    pub fn given(&self) -> Option<&'static str> {
        [
            ("url", self.url.is_some()),
            ("api-key", self.api_key.is_some()),
            ("model-map", !self.model_map.is_empty()),
            ("tokens-as-ids", self.tokens_as_ids),
            ("tokenizer", self.tokenizer.is_some()),
            ("spawn-server", self.spawn_server.is_some()),
        ]
        .into_iter()
        .find(|g| g.1)
        .map(|g| g.0)
    }
}

/// Why an HTTP benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpBenchError {
    /// A flag or the report.
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// The client could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A spawned server did not come up.
    #[error("policy `{policy}`: {source}")]
    Spawn {
        /// The policy.
        policy: String,
        /// Why.
        source: Box<SpawnError>,
    },
    /// A flag is missing or out of range.
    #[error("{0}")]
    Usage(String),
    /// The run finished and the report is written, but the server answered nothing.
    #[error("no request was answered ({0}); the report is written to {1} (see its HTTP section)")]
    NothingAnswered(String, String),
}

/// `--drain` over HTTP when not given, s.
const DEFAULT_DRAIN_S: f64 = 60.0;

/// Runs `bench --backend http`.
pub fn run(mut args: BenchArgs) -> Result<(), HttpBenchError> {
    let http = std::mem::take(&mut args.http);
    let drain = args.drain.unwrap_or(DEFAULT_DRAIN_S);
    let mut plan = plan::plan(args)?;
    if plan.peak.is_some() {
        return Err(usage("--find-peak is not available with --backend http"));
    }
    for (flag, v) in [
        ("request-timeout", http.request_timeout),
        ("spawn-timeout", http.spawn_timeout),
    ] {
        if !(v.is_finite() && v > 0.0 && v < 1e6) {
            return Err(usage(&format!(
                "--{flag} must be a positive number of seconds, got {v}"
            )));
        }
    }
    let template = http.url.clone().or_else(|| {
        http.spawn_server
            .as_ref()
            .map(|_| "http://127.0.0.1:{port}".to_string())
    });
    let Some(url_template) = template else {
        return Err(usage("--backend http needs --url (or --spawn-server)"));
    };
    // One run labelled `server` unless the policies are the spawned server's to choose.
    if !http
        .spawn_server
        .as_ref()
        .is_some_and(|c| c.contains("{policy}"))
    {
        plan.policies = vec![SERVER_LABEL];
    }
    let tokenizer = match &http.tokenizer {
        Some(path) => Some(Arc::new(load_tokenizer(path)?)),
        None => None,
    };
    let mut options = HttpOptions {
        url: url_template.clone(),
        api_key: http.api_key.clone(),
        model_map: http.model_map.clone(),
        tokens_as_ids: http.tokens_as_ids,
        tokenizer,
        request_timeout: Duration::from_secs_f64(http.request_timeout),
        duration: Duration::from_secs_f64(plan.run.duration_s),
        drain: Duration::from_secs_f64(drain),
        progress_every: Duration::from_secs(5),
    };
    // What the server runs is its own business: the HTTP section names its models.
    plan.run.model = "served models".to_string();
    plan.run.gpu = match &http.spawn_server {
        Some(_) => "spawned server".to_string(),
        None => "remote server".to_string(),
    };
    let workloads = workloads(&plan)?;
    files::prepare_dir(&plan.out).map_err(BenchError::from)?;
    let mut points = Vec::with_capacity(workloads.len());
    let mut answered = 0;
    for (rate, loras, workload) in &workloads {
        let mut done = Vec::with_capacity(plan.policies.len());
        for &policy in &plan.policies {
            let _server = match &http.spawn_server {
                Some(cmd) => {
                    let (server, url) = spawn(&plan, &http, cmd, &url_template, policy)?;
                    options.url = url;
                    Some(server)
                }
                None => None,
            };
            let s = run_one(&plan, workload, policy, *rate, &options)?;
            answered += s.summary.http.as_ref().map_or(0, |h| h.answered);
            done.push((policy, s));
        }
        points.push(PointResult {
            rate: *rate,
            loras: *loras,
            dir_name: format!("rate-{}_loras-{loras}", fastlibra_bench::plots::tick(*rate)),
            done,
        });
    }
    outputs::write(&plan, &points, None)?;
    if answered == 0 {
        let failures = points
            .iter()
            .flat_map(|p| &p.done)
            .filter_map(|(_, s)| s.summary.http.as_ref())
            .flat_map(|h| h.first_failures.first())
            .next()
            .cloned()
            .unwrap_or_else(|| "nothing was sent".into());
        return Err(HttpBenchError::NothingAnswered(
            failures,
            plan.out.display().to_string(),
        ));
    }
    Ok(())
}

fn usage(message: &str) -> HttpBenchError {
    HttpBenchError::Usage(message.to_string())
}

/// Every point's workload, before anything is sent.
fn workloads(plan: &Plan) -> Result<Vec<(f64, u32, Workload)>, BenchError> {
    let mut out = Vec::new();
    for &loras in &plan.loras {
        for &rate in &plan.rates {
            let w = plan.workload.generate(rate, loras)?.ok_or_else(|| {
                BenchError::NoRequests(format!(
                    "no request arrives in {} s at {}",
                    plan.run.duration_s,
                    rate_label(plan, rate)
                ))
            })?;
            out.push((rate, w.adapters.len() as u32, w));
        }
    }
    Ok(out)
}

/// Starts the policy's server and waits until it answers.
fn spawn(
    plan: &Plan,
    http: &HttpArgs,
    command: &str,
    url_template: &str,
    policy: &str,
) -> Result<(ServerProcess, String), HttpBenchError> {
    let err = |source: SpawnError| HttpBenchError::Spawn {
        policy: policy.to_string(),
        source: Box::new(source),
    };
    let port = free_port().map_err(|e| err(SpawnError::Io(e)))?;
    let command = substitute(command, policy, port);
    let url = substitute(url_template, policy, port);
    let log = plan.out.join(format!("server-{policy}.log"));
    if plan.output == Output::Normal {
        eprintln!("starting {policy} server: {command}");
    }
    let mut server = ServerProcess::start(&command, &url, &log).map_err(err)?;
    server
        .wait_ready(Duration::from_secs_f64(http.spawn_timeout))
        .map_err(err)?;
    Ok((server, url))
}

/// One policy's run over HTTP, summarized.
fn run_one(
    plan: &Plan,
    workload: &Workload,
    policy: &'static str,
    rate: f64,
    options: &HttpOptions,
) -> Result<Summarized, HttpBenchError> {
    let normal = plan.output == Output::Normal;
    let label = format!("{policy} @ {}", rate_label(plan, rate));
    let progress = |p: ProgressLine| {
        if normal {
            eprintln!(
                "{label}: {} s, sent {}, done {}, failed {}, in flight {}",
                p.elapsed_s, p.sent, p.done, p.failed, p.in_flight
            );
        }
    };
    let run = run_http(workload, policy, options, progress)?;
    if plan.output != Output::Json {
        for w in &run.warnings {
            eprintln!("warning: {label}: {w}");
        }
    }
    if let Some(metrics) = &run.metrics {
        let name = format!("{policy}.metrics.txt");
        files::write_file(&plan.out, &name, metrics).map_err(BenchError::from)?;
    }
    let mut s = summarize(&run.result);
    let f = &run.figures;
    if normal {
        eprintln!(
            "{label}: {}/{} answered, {} failed, {} not sent, mean TTFT {:.1} ms, P99 TTFT {:.1} ms, {:.1} s wall-clock over HTTP",
            f.answered,
            f.sent,
            f.failures.total(),
            f.not_sent,
            s.summary.ttft_ms.mean,
            s.summary.ttft_ms.p99,
            f.wall_s
        );
    }
    // The only cache figure a client can have: the server's own invalid-KV gauge, sampled.
    if let Some(share) = f.server.as_ref().and_then(|m| m.invalid_kv_share_mean) {
        s.summary.invalid_kv_fraction = share;
    }
    s.summary.http = Some(run.figures);
    keep_outcomes(&mut s, run.result, plan.requests_csv);
    Ok(s)
}
