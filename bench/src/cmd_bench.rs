//! `fastlibra bench`: runs cache policies on one workload and writes a report.
//!
//! ```text
//!   flags ──plan()──► Plan (every name and number checked; nothing run yet)
//!                        │ generate the workload
//!                        │ prepare the output folder (fails fast if unwritable)
//!                        ▼
//!   for each policy: run_policy ─► summarize ─► one progress line (stderr)
//!                        ▼
//!   report.json, <policy>.ttft.hgrm, terminal table (stdout)
//! ```
//!
//! Every bad input (a name, a number, a config file, an output folder) is an error returned
//! before any simulation starts, except a simulator that cannot fit the model, which is only
//! known once it tries.

use std::path::PathBuf;

use clap::Args;
use fastlibra_bench::report::{self, Report, RunInfo, Summarized, files, hgrm, table};
use fastlibra_bench::workload::{self, SYNTHETIC_WORKLOADS, WorkloadError, WorkloadParams};
use fastlibra_kernels::{ConfigError, HardwareConfig};
use fastlibra_runtime::sim::{POLICIES, SimError, SimOptions, run_policy};

/// The backends `--backend` accepts.
const BACKENDS: [&str; 1] = ["sim"];

/// The call-graph workload, wired into this command later.
const DGG_WORKLOAD: &str = "dgg";

/// Arguments of `fastlibra bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Execution backend. Only `sim`, the deterministic simulator, exists today.
    #[arg(long, default_value = "sim", value_name = "NAME")]
    backend: String,
    /// Workload generator: chatbot, translation or agents.
    #[arg(long, default_value = "chatbot", value_name = "NAME")]
    workload: String,
    /// Cache policies to run, comma-separated: fastlibra, vllm, slora, fastlibra-wom,
    /// fastlibra-wos, vllm-oracle.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fastlibra,vllm,slora",
        value_name = "A,B,..."
    )]
    policies: Vec<String>,
    /// Seed of the workload and of the simulator's draws.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,
    /// Length of the arrival window, seconds.
    #[arg(
        long,
        default_value_t = 60.0,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    duration: f64,
    /// Mean arrivals per second: sessions (requests for `translation`). [default: the
    /// workload's default, 1 per second]
    #[arg(long, value_name = "QPS", allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Number of LoRA adapters.
    #[arg(long, default_value_t = 100, value_name = "N")]
    loras: u32,
    /// Base model preset: llama3-8b, llama2-7b, llama2-13b, codellama-34b, llama3-70b.
    #[arg(long, default_value = "llama3-8b", value_name = "NAME")]
    model: String,
    /// GPU preset: a100-80g, h100-80g, h800-80g, h200.
    #[arg(long, default_value = "h100-80g", value_name = "NAME")]
    gpu: String,
    /// TOML file of hardware overrides ([model], [gpu] and [cost] tables) applied to the presets.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output folder for report.json and the .hgrm files. [default: bench-out/<workload>-<seed>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the output folder: no progress lines, no table.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Print only the JSON report to stdout (the files are still written).
    #[arg(long)]
    json: bool,
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
    /// `--workload dgg` is not wired into this command yet.
    #[error(
        "the `dgg` workload is not available in `fastlibra bench` yet; valid workloads: {valid}"
    )]
    DggNotWired {
        /// The valid names.
        valid: String,
    },
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
    NoRequests(WorkloadError),
    /// Any other workload error.
    #[error(transparent)]
    Workload(WorkloadError),
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
}

/// What to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// Progress lines, the table and the output folder.
    Normal,
    /// The output folder only.
    Quiet,
    /// The JSON report only.
    Json,
}

/// A checked benchmark, ready to run.
struct Plan {
    run: RunInfo,
    policies: Vec<&'static str>,
    params: WorkloadParams,
    options: SimOptions,
    out: PathBuf,
    output: Output,
}

/// Runs the benchmark the flags describe.
pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    run_plan(plan(args)?).map_err(Into::into)
}

fn run_plan(plan: Plan) -> Result<(), BenchError> {
    let workload = workload::by_name(&plan.run.workload, &plan.params).map_err(|e| match e {
        WorkloadError::Empty { .. } => BenchError::NoRequests(e),
        other => BenchError::Workload(other),
    })?;
    files::prepare_dir(&plan.out)?;
    let mut done: Vec<(&str, Summarized)> = Vec::with_capacity(plan.policies.len());
    for &policy in &plan.policies {
        let result =
            run_policy(&workload, policy, &plan.options).map_err(|source| BenchError::Sim {
                policy: policy.to_string(),
                source,
            })?;
        let summarized = report::summarize(&result);
        if plan.output == Output::Normal {
            eprintln!("{}", progress_line(policy, &summarized));
        }
        done.push((policy, summarized));
    }
    write_outputs(&plan, &done)
}

fn write_outputs(plan: &Plan, done: &[(&str, Summarized)]) -> Result<(), BenchError> {
    for (policy, summarized) in done {
        hgrm::write_ttft(&plan.out, policy, &summarized.ttft)?;
    }
    let summaries = done
        .iter()
        .map(|(policy, s)| (policy.to_string(), s.summary.clone()));
    let report = Report::new(plan.run.clone(), summaries);
    report.write(&plan.out)?;
    match plan.output {
        Output::Normal => {
            print!("{}", table::render(&report, &plan.policies));
            println!("report written to {}", plan.out.display());
        }
        Output::Quiet => println!("{}", plan.out.display()),
        Output::Json => print!("{}", report.to_json()?),
    }
    Ok(())
}

fn progress_line(policy: &str, s: &Summarized) -> String {
    let s = &s.summary;
    format!(
        "{policy}: {}/{} completed, {} failed, mean TTFT {:.1} ms, P99 TTFT {:.1} ms, {:.1} s simulated",
        s.completed, s.requests, s.failed, s.ttft_ms.mean, s.ttft_ms.p99, s.simulated_s
    )
}

/// Checks every flag and builds the plan; runs nothing and writes nothing.
fn plan(args: BenchArgs) -> Result<Plan, BenchError> {
    check_backend(&args.backend)?;
    check_workload(&args.workload)?;
    let policies = check_policies(&args.policies)?;
    let params = workload_params(&args)?;
    let hardware = hardware(&args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("bench-out/{}-{}", args.workload, args.seed)));
    let output = match (args.quiet, args.json) {
        (_, true) => Output::Json,
        (true, false) => Output::Quiet,
        (false, false) => Output::Normal,
    };
    let run = RunInfo {
        backend: args.backend,
        workload: args.workload,
        model: args.model,
        gpu: args.gpu,
        seed: args.seed,
        rate: params.rate_per_s,
        loras: params.lora_count,
        duration_s: params.duration_s,
    };
    let options = SimOptions {
        hardware,
        seed: args.seed,
        check_invariants: false,
        lora_fraction: None,
        progress: None,
    };
    Ok(Plan {
        run,
        policies,
        params,
        options,
        out,
        output,
    })
}

fn check_backend(name: &str) -> Result<(), BenchError> {
    if BACKENDS.contains(&name) {
        return Ok(());
    }
    Err(BenchError::UnknownBackend {
        name: name.to_string(),
        valid: BACKENDS.join(", "),
    })
}

fn check_workload(name: &str) -> Result<(), BenchError> {
    let valid = SYNTHETIC_WORKLOADS.join(", ");
    if name == DGG_WORKLOAD {
        return Err(BenchError::DggNotWired { valid });
    }
    if SYNTHETIC_WORKLOADS.contains(&name) {
        return Ok(());
    }
    Err(BenchError::Workload(WorkloadError::UnknownWorkload {
        name: name.to_string(),
        valid,
    }))
}

/// Maps each name to its entry in [`POLICIES`], rejecting unknown and repeated names.
fn check_policies(names: &[String]) -> Result<Vec<&'static str>, BenchError> {
    let mut policies: Vec<&'static str> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        let Some(&policy) = POLICIES.iter().find(|p| **p == name) else {
            return Err(BenchError::UnknownPolicy {
                name: name.to_string(),
                valid: POLICIES.join(", "),
            });
        };
        if policies.contains(&policy) {
            return Err(BenchError::DuplicatePolicy(policy.to_string()));
        }
        policies.push(policy);
    }
    Ok(policies)
}

fn workload_params(args: &BenchArgs) -> Result<WorkloadParams, BenchError> {
    let defaults = WorkloadParams::default();
    let rate_per_s = args.rate.unwrap_or(defaults.rate_per_s);
    if !(rate_per_s.is_finite() && rate_per_s > 0.0) {
        return Err(bad_number(
            "rate",
            "a positive number of arrivals per second",
            rate_per_s,
        ));
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return Err(bad_number(
            "duration",
            "a positive number of seconds",
            args.duration,
        ));
    }
    if args.loras == 0 {
        return Err(bad_number("loras", "at least 1", args.loras));
    }
    let params = WorkloadParams {
        lora_count: args.loras,
        rate_per_s,
        duration_s: args.duration,
        seed: args.seed,
        ..defaults
    };
    params.validate().map_err(BenchError::Workload)?;
    Ok(params)
}

fn bad_number(flag: &'static str, requirement: &'static str, value: impl ToString) -> BenchError {
    BenchError::BadNumber {
        flag,
        requirement,
        value: value.to_string(),
    }
}

fn hardware(args: &BenchArgs) -> Result<HardwareConfig, BenchError> {
    let presets =
        HardwareConfig::from_presets(&args.model, &args.gpu).map_err(BenchError::Hardware)?;
    let Some(path) = &args.config else {
        return Ok(presets);
    };
    presets
        .with_toml_file(path)
        .map_err(|source| BenchError::Config {
            path: path.display().to_string(),
            source,
        })
}
