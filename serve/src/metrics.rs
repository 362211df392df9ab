//! `/metrics`: vLLM's names for what the Kubernetes Gateway API inference extension reads, and
//! fastlibra's own under `fastlibra:`.
//!
//! Two sources: the front observes each request (TTFT, inter-token latency, end-to-end
//! latency, token counts) into `prometheus-client` metrics as it streams; the runtime's gauges
//! and counters come from [`ServeBackend::snapshot`] at each scrape ([`crate::metrics_runtime`]).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use fastlibra_kernels::sampling::FinishReason;
use fastlibra_runtime::online::{ServeBackend, Usage};

use crate::metrics_runtime::RuntimeCollector;

/// vLLM's TTFT buckets, seconds.
const TTFT_BUCKETS_S: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's inter-token latency buckets, seconds.
const ITL_BUCKETS_S: [f64; 19] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM's end-to-end latency buckets, seconds.
const E2E_BUCKETS_S: [f64; 21] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// The `model_name` label every `vllm:` request metric carries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    /// The base model's served name.
    pub model_name: String,
}

/// `vllm:request_success_total`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishLabel {
    /// The base model's served name.
    pub model_name: String,
    /// `stop` or `length`.
    pub finished_reason: String,
}

/// Why the front answered a generation request with an error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// The HTTP status.
    pub code: String,
}

type HistogramFamily = Family<ModelLabel, Histogram, fn() -> Histogram>;

fn ttft_histogram() -> Histogram {
    Histogram::new(TTFT_BUCKETS_S)
}

fn itl_histogram() -> Histogram {
    Histogram::new(ITL_BUCKETS_S)
}

fn e2e_histogram() -> Histogram {
    Histogram::new(E2E_BUCKETS_S)
}

/// The metrics the front observes, and the registry that renders them with the runtime's.
pub struct Metrics {
    registry: Registry,
    model: ModelLabel,
    ttft: HistogramFamily,
    itl: HistogramFamily,
    e2e: HistogramFamily,
    prompt_tokens: Family<ModelLabel, Counter>,
    generation_tokens: Family<ModelLabel, Counter>,
    success: Family<FinishLabel, Counter>,
    cancelled: Counter,
    failed: Counter,
    errors: Family<StatusLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of a server of `backend`.
    pub fn new(backend: Arc<dyn ServeBackend>) -> Metrics {
        let model = ModelLabel {
            model_name: backend.model().served_name.clone(),
        };
        let mut m = Metrics {
            registry: Registry::default(),
            model,
            ttft: Family::new_with_constructor(ttft_histogram),
            itl: Family::new_with_constructor(itl_histogram),
            e2e: Family::new_with_constructor(e2e_histogram),
            prompt_tokens: Family::default(),
            generation_tokens: Family::default(),
            success: Family::default(),
            cancelled: Counter::default(),
            failed: Counter::default(),
            errors: Family::default(),
        };
        m.register(backend);
        m
    }

    fn register(&mut self, backend: Arc<dyn ServeBackend>) {
        let r = &mut self.registry;
        r.register(
            "vllm:time_to_first_token_seconds",
            "Time to first token, seconds, from submission to the first token streamed",
            self.ttft.clone(),
        );
        r.register(
            "vllm:inter_token_latency_seconds",
            "Time between two tokens of a request, seconds",
            self.itl.clone(),
        );
        r.register(
            "vllm:e2e_request_latency_seconds",
            "End-to-end latency of finished requests, seconds",
            self.e2e.clone(),
        );
        r.register(
            "vllm:prompt_tokens",
            "Prompt tokens of finished requests",
            self.prompt_tokens.clone(),
        );
        r.register(
            "vllm:generation_tokens",
            "Generated tokens of finished requests",
            self.generation_tokens.clone(),
        );
        r.register(
            "vllm:request_success",
            "Requests finished, by finish reason",
            self.success.clone(),
        );
        r.register(
            "fastlibra:requests_cancelled",
            "Requests whose client went away before the end (their pins released at once)",
            self.cancelled.clone(),
        );
        r.register(
            "fastlibra:requests_failed",
            "Requests that failed inside the runtime",
            self.failed.clone(),
        );
        r.register(
            "fastlibra:http_errors",
            "Requests refused with an error status, by status",
            self.errors.clone(),
        );
        r.register_collector(Box::new(RuntimeCollector::new(backend)));
    }

    /// The Prometheus text exposition of every metric (calls the runtime's `snapshot`).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            text.push_str(&format!("# encoding failed: {err}\n"));
        }
        text
    }

    /// A request refused with `status`.
    pub fn refused(&self, status: u16) {
        self.errors
            .get_or_create(&StatusLabel {
                code: status.to_string(),
            })
            .inc();
    }

    /// A clock for one request, started now.
    pub fn timer(self: &Arc<Self>) -> RequestTimer {
        RequestTimer {
            metrics: self.clone(),
            start: Instant::now(),
            last_token: None,
            ended: false,
        }
    }
}

/// Times one request from submission; records TTFT and inter-token latency as tokens come and
/// the totals at its end. Dropped before its end, it counts a cancelled request.
pub struct RequestTimer {
    metrics: Arc<Metrics>,
    start: Instant,
    last_token: Option<Instant>,
    ended: bool,
}

impl RequestTimer {
    /// A token was streamed now.
    pub fn token(&mut self) {
        let now = Instant::now();
        let m = &self.metrics;
        match self.last_token {
            None => m
                .ttft
                .get_or_create(&m.model)
                .observe((now - self.start).as_secs_f64()),
            Some(last) => m
                .itl
                .get_or_create(&m.model)
                .observe((now - last).as_secs_f64()),
        }
        self.last_token = Some(now);
    }

    /// The request finished with `usage`.
    pub fn done(&mut self, finish: FinishReason, usage: Usage) {
        let m = &self.metrics;
        m.e2e
            .get_or_create(&m.model)
            .observe(self.start.elapsed().as_secs_f64());
        m.prompt_tokens
            .get_or_create(&m.model)
            .inc_by(u64::from(usage.prompt_tokens));
        m.generation_tokens
            .get_or_create(&m.model)
            .inc_by(u64::from(usage.completion_tokens));
        let reason = match finish {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        };
        m.success
            .get_or_create(&FinishLabel {
                model_name: m.model.model_name.clone(),
                finished_reason: reason.to_string(),
            })
            .inc();
        self.ended = true;
    }

    /// The request failed inside the runtime.
    pub fn failed(&mut self) {
        self.metrics.failed.inc();
        self.ended = true;
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        if !self.ended {
            self.metrics.cancelled.inc();
        }
    }
}
