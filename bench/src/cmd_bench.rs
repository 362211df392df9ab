//! `fastlibra bench`: runs cache policies on a workload and writes a report folder.
//!
//! ```text
//!   flags ──plan()──► Plan (every name, number, list and folder checked; nothing run yet)
//!                        │ generate every grid point's workload (a bad --graphs fails here)
//!                        │ prepare the output folder (fails fast if unwritable)
//!                        ▼
//!   --find-peak? per LoRA count × policy: bracket + bisect over rate (peak.rs)
//!                        ▼
//!   per grid point (loras × rate) × policy: run_policy ─► summarize   (progress bars)
//!                        ▼
//!   report.json, report.md, .hgrm/.hlog files, SVG plots, terminal table
//! ```
//!
//! Every bad input (a name, a number, a list, a config file, a graphs folder, an output
//! folder) is an error returned before any simulation starts, except a simulator that cannot
//! fit the model, which is only known once it tries.

mod execute;
mod http;
mod memory;
mod outputs;
mod overview;
mod plan;

use std::path::PathBuf;

use clap::Args;
use fastlibra_bench::report;
use fastlibra_bench::workload::WorkloadError;
use fastlibra_bench::workload::dgg::DggWorkloadError;
use fastlibra_kernels::ConfigError;
use fastlibra_runtime::sim::SimError;

/// Arguments of `fastlibra bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Execution backend: `sim` (the deterministic simulator, virtual time), `cpu` (the real
    /// runtime in wall-clock time: glommio shards, page arenas, an io_uring page file per
    /// shard, and a small CPU transformer computing every step from the pages), `cuda` (the
    /// same runtime with each shard's HBM tier, pinned host tier, copy streams and compute on
    /// a CUDA GPU; see docs/cuda.md) or `http` (an open-loop client of any OpenAI-compatible
    /// server; see docs/http-bench.md).
    #[arg(long, default_value = "sim", value_name = "NAME")]
    backend: String,
    /// `--backend cuda`: the GPU to use (all shards share it).
    #[arg(long, value_name = "N")]
    device: Option<usize>,
    /// `--backend cuda`: when this machine has no usable GPU (no driver, an old driver, no
    /// such device, no NVRTC), run on the CPU backend's emulated device instead of failing;
    /// the report says so.
    #[arg(long)]
    fallback_cpu: bool,
    /// `--backend cuda`: how the model's GEMM weights are stored on the GPU: `f32`, or `bf16`
    /// (half the weight bytes; `--verify` then allows 1e-2 relative error instead of 1e-3).
    /// [default: f32]
    #[arg(long, value_name = "f32|bf16")]
    weights: Option<String>,
    /// `--backend cpu|cuda`: recompute every request that reused cached KV (and the last token of
    /// every request) from scratch and compare logits; the report gets `verify` per policy.
    #[arg(long)]
    verify: bool,
    /// Also write `<policy>.requests.csv` in the report folder (each point's folder in a
    /// sweep): one row per request with its TTFT, TPOT, end-to-end latency, TTFT breakdown,
    /// tokens, hits and preemptions (docs/report.md), every backend.
    #[arg(long)]
    requests_csv: bool,
    /// `--backend cpu|cuda`: shards, one glommio executor pinned per core. [default: all cores]
    #[arg(long, value_name = "N")]
    cores: Option<u32>,
    /// `--backend cpu|cuda`: folder of the NVMe tier's page files. [default: a fresh folder under
    /// the system's temporary directory, removed at exit]
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// `--backend cpu|cuda`: a folder of PEFT adapter folders (`fastlibra adapters synth --model
    /// cpu-random --targets q,k,v,o …`); the workload's adapter i is the i-th sub-folder in
    /// name order. [default: random weights of the workload's ranks]
    #[arg(long, value_name = "DIR")]
    adapters: Option<PathBuf>,
    /// `--backend cpu|cuda`: reload a random adapter with new weights (same name) every SECS.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    reload_every: Option<f64>,
    /// `--backend cpu|cuda|http`: time after --duration for answers (and, over HTTP, follow-up
    /// turns), s; then whatever is in flight counts as unfinished. [default: 30 on cpu and
    /// cuda, 60 on http]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    drain: Option<f64>,
    /// `--backend cpu|cuda`: HBM tier of each shard's device (K, M, G suffixes).
    #[arg(long, default_value = "16M", value_name = "SIZE")]
    hbm: String,
    /// `--backend cpu|cuda`: host tier of each shard.
    #[arg(long, default_value = "64M", value_name = "SIZE")]
    host: String,
    /// `--backend cpu|cuda`: NVMe tier (page file) of each shard.
    #[arg(long, default_value = "256M", value_name = "SIZE")]
    nvme: String,
    /// Workload: dgg (call graphs of compound LLM applications), chatbot, translation or agents.
    #[arg(long, default_value = "dgg", value_name = "NAME")]
    workload: String,
    /// For `--workload dgg`: a DGG handler or generator output folder of call graphs.
    /// [default: the built-in services]
    #[arg(long, value_name = "DIR")]
    graphs: Option<PathBuf>,
    /// For `--workload dgg`: tenants per application, each with its own adapters (Zipf 1.0
    /// traffic shares). [default: 8 for the built-in services (120 adapters), 1 with
    /// --graphs]
    #[arg(long, value_name = "N")]
    tenants: Option<u32>,
    /// Cache policies to run, comma-separated: fastlibra, vllm (adapters loaded in the step
    /// that needs them, as vLLM does), vllm-async (the same, loads overlapping compute), slora,
    /// fastlibra-wom, fastlibra-wos, vllm-oracle.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fastlibra,vllm,vllm-async,slora",
        value_name = "A,B,..."
    )]
    policies: Vec<String>,
    /// Seed of the workload and of the simulator's draws.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,
    /// Length of the arrival window, seconds of simulated time. [default: 120; 40 for the
    /// overview]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Mean arrivals per second, or a comma-separated list to sweep: user queries for `dgg`,
    /// sessions for `chatbot` and `agents`, requests for `translation`. [default: 10 for dgg,
    /// 1 for the others]
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "R,R,...",
        allow_negative_numbers = true
    )]
    rate: Vec<f64>,
    /// Number of LoRA adapters, or a comma-separated list to sweep (not for `dgg`, whose
    /// adapters are the call graphs' LLM-backed microservices). [default: 100]
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    loras: Vec<u32>,
    /// Also find each policy's peak load: the highest rate whose mean TTFT stays under
    /// --threshold-ms (bracketing and bisection, one full simulation per probe).
    #[arg(long)]
    find_peak: bool,
    /// The overview (what `fastlibra bench` runs when neither --rate, --duration nor
    /// --find-peak is given, on the simulator): a sweep of rates from light load, in steps of
    /// the first, until the weakest baseline's mean TTFT passes --threshold-ms, then each
    /// policy's peak load, searched from the sweep's points.
    #[arg(long, conflicts_with_all = ["rate", "find_peak"])]
    overview: bool,
    /// Mean TTFT threshold of --find-peak, ms.
    #[arg(
        long,
        default_value_t = fastlibra_bench::peak::DEFAULT_THRESHOLD_MS,
        value_name = "MS",
        allow_negative_numbers = true
    )]
    threshold_ms: f64,
    /// Relative width at which --find-peak stops bisecting.
    #[arg(
        long,
        default_value_t = fastlibra_bench::peak::DEFAULT_REL_TOLERANCE,
        value_name = "FRACTION",
        allow_negative_numbers = true
    )]
    peak_tolerance: f64,
    /// Base model: a preset (llama3-8b, llama2-7b, llama2-13b, codellama-34b, llama3-70b), or
    /// a checkpoint by path (`.gguf` file or Hugging Face folder): `--backend cpu` and
    /// `--backend cuda` then run that real model in the shards (loaded once per process and
    /// shared by all shards; on a GPU each shard uploads it once, in `--weights`), and the
    /// simulator uses its shape.
    #[arg(long, default_value = "llama3-8b", value_name = "NAME|PATH")]
    model: String,
    /// GPU preset: a100-80g, h100-80g, h800-80g, h200.
    #[arg(long, default_value = "h100-80g", value_name = "NAME")]
    gpu: String,
    /// TOML file of hardware overrides ([model], [gpu] and [cost] tables) applied to the presets.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output folder of the report. [default: bench-out/<workload>-<seed>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the output folder: no progress bars or lines, no table.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Print only the JSON report to stdout (the files are still written).
    #[arg(long)]
    json: bool,
    /// The flags of `--backend http` (cmd_bench/http.rs).
    #[command(flatten)]
    http: http::HttpArgs,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `--backend` names no backend.
    #[error("unknown backend `{name}`; valid backends: {valid}")]
    UnknownBackend {
        /// The name given.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// `--graphs` was given for a workload other than `dgg`.
    #[error("--graphs applies only to --workload dgg, not `{0}`")]
    GraphsWithoutDgg(String),
    /// `--tenants` was given for a workload other than `dgg`.
    #[error("--tenants applies only to --workload dgg, not `{0}`")]
    TenantsWithoutDgg(String),
    /// `--graphs` names no folder.
    #[error("--graphs {0}: no such folder (give a DGG handler or generator output folder)")]
    GraphsNotAFolder(String),
    /// `--loras` was given for `dgg`.
    #[error(
        "--loras does not apply to --workload dgg: its adapters are the LLM-backed \
         microservices of the call graphs (use chatbot, translation or agents to set a count)"
    )]
    LorasWithDgg,
    /// A list flag names a value twice.
    #[error("--{flag} lists {value} twice")]
    DuplicateValue {
        /// The flag, without dashes.
        flag: &'static str,
        /// The repeated value.
        value: String,
    },
    /// The grid is too large.
    #[error("--rate × --loras is {points} points; at most {max} per run")]
    TooManyPoints {
        /// Points asked for.
        points: usize,
        /// The limit.
        max: usize,
    },
    /// The DGG workload could not be built (a missing or malformed --graphs folder, or no
    /// request in the window).
    #[error("dgg workload: {0}")]
    Dgg(DggWorkloadError),
    /// `--policies` names an unknown policy.
    #[error("unknown policy `{name}`; valid policies: {valid}")]
    UnknownPolicy {
        /// The name given.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// `--policies` names a policy twice.
    #[error("policy `{0}` is listed twice in --policies")]
    DuplicatePolicy(String),
    /// A numeric flag is out of range.
    #[error("--{flag} must be {requirement}, got {value}")]
    BadNumber {
        /// The flag, without dashes.
        flag: &'static str,
        /// What it must be.
        requirement: &'static str,
        /// What it was.
        value: String,
    },
    /// Unknown model or GPU preset.
    #[error(transparent)]
    Hardware(ConfigError),
    /// `--model` names a checkpoint that cannot be used (the error names the file and field).
    #[error("--model {path}: {source}")]
    Model {
        /// The checkpoint given.
        path: String,
        /// Why it cannot be used.
        source: Box<fastlibra_kernels::checkpoint::CheckpointError>,
    },
    /// `--model` names a checkpoint whose shape the CUDA kernels cannot run.
    #[error("--model {path} with --backend cuda: {reason} (it runs on --backend cpu)")]
    Unsupported {
        /// The checkpoint given.
        path: String,
        /// What the kernels lack.
        reason: String,
    },
    /// The `--config` file is unreadable or invalid.
    #[error("--config {path}: {source}")]
    Config {
        /// The file, as given.
        path: String,
        /// What is wrong with it.
        source: ConfigError,
    },
    /// No request arrives in the run.
    #[error("{0}; raise --duration or --rate")]
    NoRequests(String),
    /// Any other workload error.
    #[error(transparent)]
    Workload(WorkloadError),
    /// The run would need more memory than this machine has available.
    #[error(
        "this run would need about {needed_gib:.1} GiB of memory (estimated from a sample of \
         its workload) and {available_gib:.1} GiB are available; lower --duration or --rate"
    )]
    TooLarge {
        /// The estimate, GiB.
        needed_gib: f64,
        /// `MemAvailable`, GiB.
        available_gib: f64,
    },
    /// The simulator could not set a policy up.
    #[error("policy `{policy}`: {source}")]
    Sim {
        /// The policy.
        policy: String,
        /// The simulator's error.
        source: SimError,
    },
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// A flag applies only to other backends.
    #[error("--{flag} applies only to --backend {backends}")]
    OtherBackend {
        /// The flag, without dashes.
        flag: &'static str,
        /// The backends it applies to.
        backends: &'static str,
    },
    /// `--backend cuda` found no usable GPU.
    #[error("--backend cuda: {source}{hint}")]
    Gpu {
        /// What to try.
        hint: &'static str,
        /// Why.
        source: Box<fastlibra_kernels::cuda::CudaError>,
    },
    /// The real runtime failed.
    #[error("policy `{policy}` on the {backend} backend: {source}{hint}")]
    Real {
        /// The policy.
        policy: String,
        /// `cpu` or `cuda`.
        backend: String,
        /// What to try (empty when nothing helps).
        hint: &'static str,
        /// What went wrong.
        source: Box<fastlibra_runtime::real::RealError>,
    },
}

/// Runs the benchmark the flags describe.
pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.backend == "http" {
        return http::run(args).map_err(Into::into);
    }
    if let Some(flag) = args.http.given() {
        return Err(BenchError::OtherBackend {
            flag,
            backends: "http",
        }
        .into());
    }
    let plan = plan::plan(args)?;
    match plan.overview {
        Some(overview) => overview::run(&plan, overview).map_err(Into::into),
        None => execute::run_plan(&plan).map_err(Into::into),
    }
}
