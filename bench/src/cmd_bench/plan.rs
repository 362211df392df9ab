//! Flags → [`Plan`]: every name, number, list and file checked; nothing run, nothing written.

use std::path::{Path, PathBuf};

use fastlibra_bench::peak::PeakConfig;
use fastlibra_bench::report::RunInfo;
use fastlibra_bench::report::markdown;
use fastlibra_bench::workload::dgg::{self, DggWorkloadError, DggWorkloadParams};
use fastlibra_bench::workload::{self, SYNTHETIC_WORKLOADS, WorkloadError, WorkloadParams};
use fastlibra_kernels::checkpoint::{Checkpoint, LlamaConfig};
use fastlibra_kernels::cpu::CpuModelConfig;
use fastlibra_kernels::cuda::{WeightPrecision, check_supported};
use fastlibra_kernels::{HardwareConfig, MODEL_PRESETS};
use fastlibra_runtime::real::RunOptions;
use fastlibra_runtime::real::device::DeviceChoice;
use fastlibra_runtime::sim::{POLICIES, SimOptions};
use fastlibra_runtime::workload::Workload;

use super::{BenchArgs, BenchError};

/// The backends `--backend` accepts.
const BACKENDS: [&str; 4] = ["sim", "cpu", "cuda", "http"];

/// Default arrival window, s: with the default DGG rate, the three main policies finish in
/// well under a minute of wall time in a release build on two cores.
pub const DEFAULT_DURATION_S: f64 = 120.0;

/// Arrival window of the overview's runs, s: long enough for the caches to fill and queues
/// to build past a policy's peak, short enough that the whole overview stays quick.
pub const OVERVIEW_DURATION_S: f64 = 40.0;

/// Most rates the overview's sweep runs.
pub const OVERVIEW_MAX_POINTS: usize = 8;

/// Default DGG rate, user queries/s: loads the simulated H100 moderately (queues form at
/// bursts, none of the main policies is overloaded).
pub const DEFAULT_DGG_RATE: f64 = 10.0;

/// Default adapter count of the synthetic workloads.
pub const DEFAULT_LORAS: u32 = 100;

/// Most grid points (`--rate` × `--loras`) in one run.
pub const MAX_POINTS: usize = 64;

/// What to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Progress bars (on a terminal), progress lines, the table and the output folder.
    Normal,
    /// The output folder only.
    Quiet,
    /// The JSON report only.
    Json,
}

/// Which generator makes a point's workload.
#[derive(Clone, Debug)]
pub enum WorkloadSpec {
    /// `chatbot`, `translation` or `agents`.
    Synthetic {
        /// Generator name.
        name: String,
        /// Parameters (rate and adapter count set per point).
        params: WorkloadParams,
    },
    /// DGG call graphs.
    Dgg {
        /// Graphs folder, or the built-in services.
        graphs: Option<PathBuf>,
        /// Parameters (rate set per point).
        params: DggWorkloadParams,
        /// Seed.
        seed: u64,
    },
}

impl WorkloadSpec {
    /// The workload at `rate` with `loras` adapters (ignored by DGG). `Ok(None)` when no
    /// request arrives.
    pub fn generate(&self, rate: f64, loras: u32) -> Result<Option<Workload>, BenchError> {
        self.generate_window(rate, loras, None)
    }

    /// [`WorkloadSpec::generate`] over another arrival window (`None`: the plan's).
    pub fn generate_window(
        &self,
        rate: f64,
        loras: u32,
        duration_s: Option<f64>,
    ) -> Result<Option<Workload>, BenchError> {
        match self {
            WorkloadSpec::Synthetic { name, params } => {
                let params = WorkloadParams {
                    rate_per_s: rate,
                    lora_count: loras,
                    duration_s: duration_s.unwrap_or(params.duration_s),
                    ..params.clone()
                };
                match workload::by_name(name, &params) {
                    Ok(w) => Ok(Some(w)),
                    Err(WorkloadError::Empty { .. }) => Ok(None),
                    Err(e) => Err(BenchError::Workload(e)),
                }
            }
            WorkloadSpec::Dgg {
                graphs,
                params,
                seed,
            } => {
                let params = DggWorkloadParams {
                    rate_per_s: rate,
                    duration_s: duration_s.unwrap_or(params.duration_s),
                    ..params.clone()
                };
                match dgg::workload(graphs.as_deref(), &params, *seed) {
                    Ok(w) => Ok(Some(w)),
                    Err(DggWorkloadError::Empty(m)) if m.starts_with("no query arrived") => {
                        Ok(None)
                    }
                    Err(e) => Err(BenchError::Dgg(e)),
                }
            }
        }
    }

    /// The unit of the rate, for labels.
    pub fn rate_unit(&self) -> &'static str {
        match self {
            WorkloadSpec::Dgg { .. } => markdown::rate_unit(dgg::NAME),
            WorkloadSpec::Synthetic { name, .. } => markdown::rate_unit(name),
        }
    }
}

/// The overview's sweep: rates `step`, `2 × step`, … until the weakest baseline passes the
/// threshold (at most [`OVERVIEW_MAX_POINTS`]), then every policy's peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overview {
    /// The first rate and the step between rates, in the workload's unit.
    pub step: f64,
}

impl Overview {
    /// The overview of a workload: steps of about a third of the weakest baseline's peak on
    /// the default hardware, so the sweep shows light load, the knee and overload.
    fn of(is_dgg: bool, workload: &str) -> Overview {
        let step = match workload {
            _ if is_dgg => 5.0,
            "chatbot" => 5.0,
            "translation" => 100.0,
            "agents" => 0.5,
            _ => WorkloadParams::default().rate_per_s,
        };
        Overview { step }
    }
}

/// A checked benchmark, ready to run.
pub struct Plan {
    /// The run's fixed parameters (rate and loras of the first point).
    pub run: RunInfo,
    /// Policies, in run order.
    pub policies: Vec<&'static str>,
    /// How to make a point's workload.
    pub workload: WorkloadSpec,
    /// Rates, ascending.
    pub rates: Vec<f64>,
    /// Adapter counts, ascending (one entry for DGG, where the graphs decide it).
    pub loras: Vec<u32>,
    /// Simulator options (progress set per run).
    pub options: SimOptions,
    /// `--backend cpu|cuda`: the real runtime's options (progress set per run).
    pub cpu: Option<RunOptions>,
    /// `--find-peak` settings (also set for the overview).
    pub peak: Option<PeakConfig>,
    /// The overview's sweep (`rates` then holds its first rate only).
    pub overview: Option<Overview>,
    /// Output folder.
    pub out: PathBuf,
    /// What to print.
    pub output: Output,
    /// `--requests-csv`: keep every outcome and write `<policy>.requests.csv`.
    pub requests_csv: bool,
}

impl Plan {
    /// Whether more than one point runs.
    pub fn is_sweep(&self) -> bool {
        self.overview.is_some() || self.rates.len() * self.loras.len() > 1
    }
}

/// Checks every flag and builds the plan; runs nothing and writes nothing.
pub fn plan(args: BenchArgs) -> Result<Plan, BenchError> {
    check_backend(&args.backend)?;
    let is_dgg = check_workload(&args)?;
    let policies = check_policies(&args.policies)?;
    let rates = rates(&args, is_dgg)?;
    let loras = loras(&args, is_dgg)?;
    if rates.len() * loras.len() > MAX_POINTS {
        return Err(BenchError::TooManyPoints {
            points: rates.len() * loras.len(),
            max: MAX_POINTS,
        });
    }
    let checkpoint = checkpoint_config(&args)?;
    let cpu = cpu_options(&args, checkpoint.as_ref())?;
    let overview = (args.overview
        || (args.backend == "sim"
            && args.rate.is_empty()
            && args.duration.is_none()
            && !args.find_peak))
        .then(|| Overview::of(is_dgg, &args.workload));
    if overview.is_some() && (args.backend != "sim" || loras.len() > 1) {
        return Err(BenchError::BadNumber {
            flag: "overview",
            requirement: "used with --backend sim and at most one --loras",
            value: format!("--backend {} --loras {loras:?}", args.backend),
        });
    }
    let rates = match overview {
        Some(o) => vec![o.step],
        None => rates,
    };
    let duration = args.duration.unwrap_or(if overview.is_some() {
        OVERVIEW_DURATION_S
    } else {
        DEFAULT_DURATION_S
    });
    if !(duration.is_finite() && duration > 0.0) {
        return Err(bad_number(
            "duration",
            "a positive number of seconds",
            duration,
        ));
    }
    let mut peak = peak_config(&args)?;
    if overview.is_some() {
        peak = Some(peak_config_always(&args));
    }
    if cpu.is_some() && peak.is_some() {
        return Err(BenchError::BadNumber {
            flag: "find-peak",
            requirement: "used with --backend sim (each probe would be a wall-clock run)",
            value: format!("--backend {}", args.backend),
        });
    }
    let workload = workload_spec(&args, is_dgg, rates[0], loras[0], duration)?;
    // Every grid point's workload is held at once; the overview holds one at a time, up to
    // twice its last sweep rate while it searches the peaks.
    let held: Vec<(f64, u32)> = match overview {
        Some(o) => vec![(o.step * 2.0 * OVERVIEW_MAX_POINTS as f64, loras[0])],
        None => loras
            .iter()
            .flat_map(|&n| rates.iter().map(move |&r| (r, n)))
            .collect(),
    };
    super::memory::check(&workload, &held, duration)?;
    let hardware = hardware(&args, checkpoint.as_ref())?;
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
        // The real backends run their own small model (on an emulated device or a GPU; the
        // runtime figures of each policy name the device it ran on).
        model: match (&cpu, &checkpoint) {
            (_, Some((_, config))) => config.name.clone(),
            (Some(_), None) => "cpu-random".to_string(),
            (None, None) => args.model,
        },
        gpu: match args.backend.as_str() {
            "cpu" => "emulated (host memory)".to_string(),
            "cuda" => format!("cuda device {}", args.device.unwrap_or(0)),
            _ => args.gpu,
        },
        backend: args.backend,
        workload: args.workload,
        seed: args.seed,
        rate: rates[0],
        loras: loras[0],
        duration_s: duration,
    };
    let options = SimOptions {
        hardware,
        seed: args.seed,
        check_invariants: false,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    };
    Ok(Plan {
        run,
        policies,
        workload,
        rates,
        loras,
        options,
        cpu,
        peak,
        overview,
        out,
        output,
        requests_csv: args.requests_csv,
    })
}

/// The real runtime's options for `--backend cpu` or `cuda`; `None` for the simulator (where
/// the real backends' flags are refused).
fn cpu_options(
    args: &BenchArgs,
    checkpoint: Option<&(PathBuf, LlamaConfig)>,
) -> Result<Option<RunOptions>, BenchError> {
    let cuda = args.backend == "cuda";
    if let (true, Some((path, config))) = (cuda, checkpoint) {
        // A shape the kernels cannot run is refused here, before any shard starts (and on
        // machines without a GPU too).
        check_supported(&CpuModelConfig::from(config)).map_err(|e| BenchError::Unsupported {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    if !cuda {
        let given = [
            ("device", args.device.is_some()),
            ("fallback-cpu", args.fallback_cpu),
            ("weights", args.weights.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            return Err(BenchError::OtherBackend {
                flag,
                backends: "cuda",
            });
        }
    }
    if let Some(drain) = args.drain {
        // Checked here for every backend that takes it (http reads it before planning).
        if args.backend == "sim" {
            return Err(BenchError::OtherBackend {
                flag: "drain",
                backends: "cpu, cuda or http",
            });
        }
        if !(drain.is_finite() && drain > 0.0 && drain < 1e6) {
            return Err(bad_number(
                "drain",
                "a positive number of seconds below 1,000,000",
                drain,
            ));
        }
    }
    if args.backend == "sim" || args.backend == "http" {
        let given = [
            ("verify", args.verify),
            ("cores", args.cores.is_some()),
            ("spill-dir", args.spill_dir.is_some()),
            ("reload-every", args.reload_every.is_some()),
            ("adapters", args.adapters.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            return Err(BenchError::OtherBackend {
                flag,
                backends: "cpu or cuda",
            });
        }
        return Ok(None);
    }
    let weights = match args.weights.as_deref() {
        None | Some("f32") => WeightPrecision::F32,
        Some("bf16") => WeightPrecision::Bf16,
        Some(other) => return Err(bad_number("weights", "f32 or bf16", other)),
    };
    let mut o = RunOptions {
        seed: args.seed,
        verify: args.verify,
        spill_dir: args.spill_dir.clone(),
        adapters_dir: args.adapters.clone(),
        device: if cuda {
            DeviceChoice::Cuda {
                ordinal: args.device.unwrap_or(0),
                weights,
            }
        } else {
            DeviceChoice::Emulated
        },
        cuda_fallback: args.fallback_cpu,
        ..RunOptions::default()
    };
    if let Some((path, config)) = checkpoint {
        o.checkpoint = Some(path.clone());
        o.model = CpuModelConfig::from(config);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    o.shards = args.cores.unwrap_or(cores);
    if o.shards == 0 || o.shards > 1024 {
        return Err(bad_number("cores", "between 1 and 1024", o.shards));
    }
    if let Some(every) = args.reload_every {
        if !(every.is_finite() && every > 0.0) {
            return Err(bad_number(
                "reload-every",
                "a positive number of seconds",
                every,
            ));
        }
        o.reload_every_ns = Some((every * 1e9) as u64);
    }
    if let Some(drain) = args.drain {
        o.drain_ns = (drain * 1e9) as u64;
    }
    let page_bytes = (o
        .model
        .page_floats(fastlibra_runtime::real::shard::BLOCK_TOKENS as usize)
        * 4) as u64;
    let mut pages = [0u32; 3];
    for (i, (flag, text, least)) in [
        ("hbm", &args.hbm, 16u64),
        ("host", &args.host, 16),
        ("nvme", &args.nvme, 16),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = fastlibra_bench::units::parse_size(text)
            .map_err(|_| bad_number(flag, "a size such as 512K, 16M or 2G", text))?;
        let n = bytes / page_bytes;
        if n < least || n > u64::from(u32::MAX) {
            return Err(BenchError::BadNumber {
                flag,
                requirement: "at least 16 pages of the model's KV block (64 KiB for the built-in CPU model), and at most 2^32 pages",
                value: text.clone(),
            });
        }
        pages[i] = n as u32;
    }
    o.pages = pages;
    Ok(Some(o))
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

/// Checks the workload name and the flags tied to it; returns whether it is `dgg`.
fn check_workload(args: &BenchArgs) -> Result<bool, BenchError> {
    let name = args.workload.as_str();
    if name == dgg::NAME {
        if !args.loras.is_empty() {
            return Err(BenchError::LorasWithDgg);
        }
        return Ok(true);
    }
    if !SYNTHETIC_WORKLOADS.contains(&name) {
        let mut valid = vec![dgg::NAME];
        valid.extend(SYNTHETIC_WORKLOADS);
        return Err(BenchError::Workload(WorkloadError::UnknownWorkload {
            name: name.to_string(),
            valid: valid.join(", "),
        }));
    }
    if args.graphs.is_some() {
        return Err(BenchError::GraphsWithoutDgg(name.to_string()));
    }
    if args.tenants.is_some() {
        return Err(BenchError::TenantsWithoutDgg(name.to_string()));
    }
    Ok(false)
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

/// The rates, checked, without repeats, ascending.
fn rates(args: &BenchArgs, is_dgg: bool) -> Result<Vec<f64>, BenchError> {
    if args.rate.is_empty() {
        let default = if is_dgg {
            DEFAULT_DGG_RATE
        } else {
            WorkloadParams::default().rate_per_s
        };
        return Ok(vec![default]);
    }
    let mut rates = args.rate.clone();
    for &r in &rates {
        if !(r.is_finite() && r > 0.0) {
            return Err(bad_number(
                "rate",
                "a positive number of arrivals per second",
                r,
            ));
        }
    }
    rates.sort_by(f64::total_cmp);
    if let Some(w) = rates.windows(2).find(|w| w[0] == w[1]) {
        return Err(BenchError::DuplicateValue {
            flag: "rate",
            value: w[0].to_string(),
        });
    }
    Ok(rates)
}

/// The adapter counts, checked, without repeats, ascending; `[0]` for DGG (decided later).
fn loras(args: &BenchArgs, is_dgg: bool) -> Result<Vec<u32>, BenchError> {
    if is_dgg {
        return Ok(vec![0]);
    }
    if args.loras.is_empty() {
        return Ok(vec![DEFAULT_LORAS]);
    }
    let mut loras = args.loras.clone();
    if loras.contains(&0) {
        return Err(bad_number("loras", "at least 1", 0));
    }
    loras.sort_unstable();
    if let Some(w) = loras.windows(2).find(|w| w[0] == w[1]) {
        return Err(BenchError::DuplicateValue {
            flag: "loras",
            value: w[0].to_string(),
        });
    }
    Ok(loras)
}

fn peak_config(args: &BenchArgs) -> Result<Option<PeakConfig>, BenchError> {
    if !(args.threshold_ms.is_finite() && args.threshold_ms > 0.0) {
        return Err(bad_number(
            "threshold-ms",
            "a positive number of milliseconds",
            args.threshold_ms,
        ));
    }
    if !(args.peak_tolerance.is_finite() && args.peak_tolerance > 0.0 && args.peak_tolerance < 1.0)
    {
        return Err(bad_number(
            "peak-tolerance",
            "a fraction between 0 and 1 (exclusive)",
            args.peak_tolerance,
        ));
    }
    Ok(args.find_peak.then(|| peak_config_always(args)))
}

/// The peak search's settings from checked flags.
fn peak_config_always(args: &BenchArgs) -> PeakConfig {
    PeakConfig {
        threshold_ms: args.threshold_ms,
        rel_tolerance: args.peak_tolerance,
        ..PeakConfig::default()
    }
}

fn workload_spec(
    args: &BenchArgs,
    is_dgg: bool,
    rate: f64,
    loras: u32,
    duration_s: f64,
) -> Result<WorkloadSpec, BenchError> {
    if is_dgg {
        // The built-in services have 15 adapters, which all fit in HBM; eight tenants make
        // it a multi-LoRA workload (120 adapters). Real call graphs bring their own.
        let tenants = args
            .tenants
            .unwrap_or(if args.graphs.is_some() { 1 } else { 8 });
        let params = DggWorkloadParams {
            rate_per_s: rate,
            duration_s,
            tenants,
            ..DggWorkloadParams::default()
        };
        params.validate().map_err(BenchError::Dgg)?;
        if let Some(dir) = &args.graphs
            && !dir.is_dir()
        {
            return Err(BenchError::GraphsNotAFolder(dir.display().to_string()));
        }
        return Ok(WorkloadSpec::Dgg {
            graphs: args.graphs.clone(),
            params,
            seed: args.seed,
        });
    }
    let params = WorkloadParams {
        lora_count: loras,
        rate_per_s: rate,
        duration_s,
        seed: args.seed,
        ..WorkloadParams::default()
    };
    params.validate().map_err(BenchError::Workload)?;
    Ok(WorkloadSpec::Synthetic {
        name: args.workload.clone(),
        params,
    })
}

fn bad_number(flag: &'static str, requirement: &'static str, value: impl ToString) -> BenchError {
    BenchError::BadNumber {
        flag,
        requirement,
        value: value.to_string(),
    }
}

/// `--model` given as a checkpoint path: the path and its config (checked without converting
/// a tensor); `None` for a preset name.
fn checkpoint_config(args: &BenchArgs) -> Result<Option<(PathBuf, LlamaConfig)>, BenchError> {
    let path = Path::new(&args.model);
    if MODEL_PRESETS.contains(&args.model.as_str()) || !path.exists() {
        return Ok(None);
    }
    let config = Checkpoint::read_config(path).map_err(|e| BenchError::Model {
        path: args.model.clone(),
        source: Box::new(e),
    })?;
    Ok(Some((path.to_path_buf(), config)))
}

fn hardware(
    args: &BenchArgs,
    checkpoint: Option<&(PathBuf, LlamaConfig)>,
) -> Result<HardwareConfig, BenchError> {
    // A checkpoint's shape replaces the preset's (the default preset only names the GPU).
    let preset = if checkpoint.is_some() {
        MODEL_PRESETS[0]
    } else {
        args.model.as_str()
    };
    let mut presets =
        HardwareConfig::from_presets(preset, &args.gpu).map_err(BenchError::Hardware)?;
    if let Some((_, config)) = checkpoint {
        presets.model = config.model_spec();
    }
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
