//! `bench --backend http`: the workloads sent to any OpenAI-compatible server, measured from
//! outside as its users see it.
//!
//! ```text
//!   Workload ──► run_http ──► tokio (one thread) ──► GET /v1/models ─► adapter → model
//!                                │ (text prompts, no tokenizer: calibrate words once)
//!                                ▼
//!                  schedule::send_all: open-loop, one task per request
//!                                │  client::stream: POST /v1/completions, SSE, timeouts
//!                                ▼
//!                  accounting: Record per request, Tally ─► SimResult-shaped outcomes
//!                                ▼
//!                  the report code every backend uses (summarize, hgrm, plots, report.md)
//! ```
//!
//! While it runs, [`server_metrics`] scrapes the server's `/metrics` once a second (where it
//! has one) for what only the server knows, such as its invalid-KV share. [`spawn`] starts a
//! server per policy (`--spawn-server`) and waits until it answers.

pub mod accounting;
pub mod client;
pub mod models;
pub mod openai;
pub mod prompt;
pub mod schedule;
pub mod server_metrics;
pub mod spawn;
pub mod sse;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use fastlibra_kernels::checkpoint::GgufFile;
use fastlibra_kernels::tokenizer::Tokenizer;
use fastlibra_runtime::sim::SimResult;
use fastlibra_runtime::workload::Workload;
use serde_json::json;

pub use accounting::{Ending, HttpFailures, HttpFigures, Record};
pub use client::{Client, UrlError};
pub use schedule::ProgressLine;

use prompt::PromptMode;
use schedule::{COMPLETIONS_PATH, SendPlan};
use server_metrics::{SCRAPE_EVERY, Sampler};

/// Words of the prompt that calibrates text prompts.
const CALIBRATION_WORDS: usize = 256;

/// Why an HTTP run could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The tokenizer could not be loaded.
    #[error("--tokenizer {path}: {why}")]
    Tokenizer {
        /// The path given.
        path: String,
        /// Why.
        why: String,
    },
    /// `--model-map` is malformed or names an adapter the workload does not have.
    #[error("--model-map {entry}: {why}")]
    ModelMap {
        /// The entry.
        entry: String,
        /// Why.
        why: String,
    },
    /// The tokio runtime could not start.
    #[error("cannot start the HTTP client's runtime: {0}")]
    Runtime(std::io::Error),
}

/// How to reach the server and what to send.
#[derive(Clone)]
pub struct HttpOptions {
    /// Base URL, `http://host:port`.
    pub url: String,
    /// Sent as `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// `ADAPTER=NAME` entries (adapter by name or index).
    pub model_map: Vec<String>,
    /// Send token-id arrays instead of text.
    pub tokens_as_ids: bool,
    /// The served model's tokenizer, for text prompts (and answers, with ids).
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// Longest wait for a connection, the headers or the next chunk.
    pub request_timeout: Duration,
    /// The arrival window.
    pub duration: Duration,
    /// Extra time after the window for answers and follow-up turns.
    pub drain: Duration,
    /// How often progress is reported.
    pub progress_every: Duration,
}

/// One run's results.
pub struct HttpRun {
    /// The outcomes in the shape every backend's report code reads.
    pub result: SimResult,
    /// What only HTTP runs have.
    pub figures: HttpFigures,
    /// Every request.
    pub records: Vec<Record>,
    /// Things the user should know (unlisted model names, uncalibrated prompts, …).
    pub warnings: Vec<String>,
    /// The server's `GET /metrics` text (Prometheus) at the end of the run, where it has one.
    pub metrics: Option<String>,
}

/// Loads a tokenizer from a GGUF file, a `tokenizer.json` or a Hugging Face folder.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, HttpError> {
    let err = |why: String| HttpError::Tokenizer {
        path: path.display().to_string(),
        why,
    };
    if path.is_dir() {
        return Tokenizer::from_hf_folder(path).map_err(|e| err(e.to_string()));
    }
    if path.extension().is_some_and(|e| e == "gguf") {
        let file = GgufFile::open(path).map_err(|e| err(e.to_string()))?;
        return Tokenizer::from_gguf(&file).map_err(|e| err(e.to_string()));
    }
    if path.is_file() {
        return Tokenizer::from_file(path).map_err(|e| err(e.to_string()));
    }
    Err(err("no such file or folder".into()))
}

/// Sends `workload` to the server and measures it; `label` names the run in the outcomes.
pub fn run_http(
    workload: &Workload,
    label: &str,
    options: &HttpOptions,
    on_progress: impl FnMut(ProgressLine),
) -> Result<HttpRun, HttpError> {
    let client = Client::new(
        &options.url,
        options.api_key.clone(),
        options.request_timeout,
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HttpError::Runtime)?;
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &rt,
        run_async(workload, label, options, client, on_progress),
    )
}

async fn run_async(
    workload: &Workload,
    label: &str,
    options: &HttpOptions,
    client: Client,
    on_progress: impl FnMut(ProgressLine),
) -> Result<HttpRun, HttpError> {
    let mut warnings = Vec::new();
    let listed = match models::list(&client).await {
        Ok(listed) => listed,
        Err(why) => {
            warnings.push(format!("GET {}/v1/models: {why}", client.base()));
            Vec::new()
        }
    };
    let served = models::resolve(&workload.adapters, &options.model_map, &listed)?;
    warnings.extend(served.warnings);
    let mode = prompt_mode(&client, options, &listed, &served.models, &mut warnings).await;
    let plan = SendPlan {
        models: served.models,
        mode: mode.clone(),
        tokenizer: options.tokenizer.clone(),
        deadline: options.duration + options.drain,
        progress_every: options.progress_every,
    };
    let client = Rc::new(client);
    let sampler = Rc::new(RefCell::new(Sampler::default()));
    // A server without /metrics (llama.cpp's) is not asked again every second.
    let scraping = scrape(&client, &sampler)
        .await
        .then(|| tokio::task::spawn_local(scrape_every(client.clone(), sampler.clone())));
    let sent = schedule::send_all(workload, client.clone(), &plan, on_progress).await;
    if let Some(task) = scraping {
        task.abort();
    }
    scrape(&client, &sampler).await;
    let sampler = sampler.borrow();
    let metrics = sampler.last_text().map(str::to_string);
    if sent.filled_answers > 0 {
        warnings.push(format!(
            "{} answers were resent as filler token ids (the server sent no ids and no \
             --tokenizer was given), so later turns cannot reuse the answers' KV",
            sent.filled_answers
        ));
    }
    let mut figures = sent.tally.finish();
    figures.url = options.url.clone();
    figures.models = listed;
    figures.prompts = mode.describe();
    if sent.answers_as_server_ids + sent.answers_reencoded > 0 {
        figures.prompts.push_str(&format!(
            " (answers joined to their conversation: {} as the server's ids, {} re-encoded from text)",
            sent.answers_as_server_ids, sent.answers_reencoded
        ));
    }
    figures.wall_s = sent.wall_ns as f64 / 1e9;
    figures.server = sampler.figures();
    let result = SimResult {
        policy: label.to_string(),
        outcomes: sent.records.iter().map(Record::outcome).collect(),
        stats: Default::default(),
        simulated_ns: sent.wall_ns,
        lora_fraction: None,
    };
    Ok(HttpRun {
        result,
        figures,
        records: sent.records,
        warnings,
        metrics,
    })
}

/// One `GET /metrics`, kept when it answers 2xx; whether it did.
async fn scrape(client: &Client, sampler: &RefCell<Sampler>) -> bool {
    match client.call("/metrics", None).await {
        Ok((status, text)) if status.is_success() => {
            sampler.borrow_mut().scrape(text);
            true
        }
        _ => false,
    }
}

/// Scrapes every [`SCRAPE_EVERY`] until aborted.
async fn scrape_every(client: Rc<Client>, sampler: Rc<RefCell<Sampler>>) {
    let mut tick = tokio::time::interval(SCRAPE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        scrape(&client, &sampler).await;
    }
}

/// Ids, the tokenizer's text, or words calibrated against the server.
async fn prompt_mode(
    client: &Client,
    options: &HttpOptions,
    listed: &[String],
    models: &[String],
    warnings: &mut Vec<String>,
) -> PromptMode {
    if options.tokens_as_ids {
        return PromptMode::Ids;
    }
    if let Some(t) = &options.tokenizer {
        return PromptMode::Tokenizer(t.clone());
    }
    if listed.is_empty() {
        warnings.push("text prompts are uncalibrated: 1 token per word assumed".into());
        return PromptMode::Words {
            tokens_per_word: 1.0,
        };
    }
    match calibrate(client, &models[0]).await {
        Ok(tokens_per_word) => PromptMode::Words { tokens_per_word },
        Err(why) => {
            warnings.push(format!(
                "text prompts are uncalibrated (1 token per word assumed): {why}"
            ));
            PromptMode::Words {
                tokens_per_word: 1.0,
            }
        }
    }
}

/// Tokens per word of the calibration text, from the server's `usage.prompt_tokens`.
async fn calibrate(client: &Client, model: &str) -> Result<f64, String> {
    let body = json!({
        "model": model,
        "prompt": prompt::calibration_text(CALIBRATION_WORDS),
        "max_tokens": 1,
        "stream": false,
    });
    let (status, text) = client.call(COMPLETIONS_PATH, Some(&body)).await?;
    if !status.is_success() {
        return Err(format!("the calibration request got HTTP {status}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("calibration answer: {e}"))?;
    let tokens = v
        .pointer("/usage/prompt_tokens")
        .and_then(serde_json::Value::as_u64)
        .ok_or("the calibration answer has no usage.prompt_tokens")?;
    if tokens == 0 {
        return Err("the calibration answer counts 0 prompt tokens".into());
    }
    Ok(tokens as f64 / CALIBRATION_WORDS as f64)
}
