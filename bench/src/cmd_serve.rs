//! `fastlibra serve`: the OpenAI-compatible multi-LoRA server, with vLLM's flag names where
//! the meaning is the same.
//!
//! ```text
//!   flags ─► ServeOptions (runtime) + FrontOptions (HTTP) ─► online::start (load the
//!   checkpoint once, start the shards, load --lora-modules) ─► fastlibra_serve::start
//!   (bind, one start-up line) ─► serve until SIGTERM/SIGINT ─► drain ─► exit 0
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use fastlibra_kernels::cuda::WeightPrecision;
use fastlibra_runtime::engine::PolicyKind;
use fastlibra_runtime::online::ServeOptions;
use fastlibra_runtime::real::device::DeviceChoice;
use fastlibra_serve::FrontOptions;

use fastlibra_bench::units::parse_size;

/// Arguments of `fastlibra serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The checkpoint: a `.gguf` file or a Hugging Face folder.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The name the base model is served under. [default: the checkpoint's file or folder name]
    #[arg(long, value_name = "NAME")]
    served_model_name: Option<String>,
    /// Adapters to load at start-up, each `NAME=DIR` (a PEFT folder).
    #[arg(long, value_name = "NAME=DIR", num_args = 1..)]
    lora_modules: Vec<String>,
    /// Reported as `max_lora` in `vllm:lora_requests_info`, for routers; it bounds nothing:
    /// adapters in HBM are bounded by pages (the unified pool, or the static LoRA share of
    /// vllm and vllm-async).
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_loras: u32,
    /// Most LoRA rank accepted.
    #[arg(long, default_value_t = 64, value_name = "R")]
    max_lora_rank: u32,
    /// With --policy vllm or vllm-async: most adapters cached in host memory and HBM
    /// together; the rest wait in the NVMe tier. [default: as the host tier holds]
    #[arg(long, value_name = "N")]
    max_cpu_loras: Option<u32>,
    /// Longest prompt plus completion, tokens. [default: the checkpoint's context length]
    #[arg(long, value_name = "N")]
    max_model_len: Option<u32>,
    /// Most sequences in one step, per shard.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_num_seqs: u32,
    /// Most requests waiting for admission; more get 503 with Retry-After.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_waiting: u32,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    host: IpAddr,
    /// Port to listen on (0: a free one, printed in the start-up line).
    #[arg(long, default_value_t = 8000, value_name = "PORT")]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every `/v1/…` request.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// `cpu` (emulated device, the CPU model computing) or `cuda`.
    #[arg(long, default_value = "cpu", value_name = "cpu|cuda")]
    backend: String,
    /// `--backend cuda`: the GPU to use.
    #[arg(long, default_value_t = 0, value_name = "N")]
    device: usize,
    /// `--backend cuda`: `f32` or `bf16` GEMM weights.
    #[arg(long, default_value = "f32", value_name = "f32|bf16")]
    weights: String,
    /// Shards, one glommio executor pinned per core. [default: 1]
    #[arg(long, default_value_t = 1, value_name = "N")]
    cores: u32,
    /// HBM tier of each shard (K, M, G suffixes).
    #[arg(long, default_value = "256M", value_name = "SIZE")]
    hbm: String,
    /// Host tier of each shard.
    #[arg(long, default_value = "512M", value_name = "SIZE")]
    host_tier: String,
    /// NVMe tier (page file) of each shard.
    #[arg(long, default_value = "1G", value_name = "SIZE")]
    nvme: String,
    /// Folder of the NVMe tier's page files. [default: a temporary folder removed at exit]
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// Cache policy, any the real runtime of `fastlibra bench` runs: fastlibra, vllm (adapters
    /// loaded in the step that needs them), vllm-async (loads overlapping compute), slora,
    /// fastlibra-wom or fastlibra-wos.
    #[arg(long, default_value = "fastlibra", value_name = "NAME")]
    policy: String,
    /// Largest request body, bytes (K, M suffixes); larger ones get 413.
    #[arg(long, default_value = "4M", value_name = "SIZE")]
    max_body: String,
    /// Seconds a client may take to send its headers, then its body.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    read_timeout: f64,
    /// On SIGTERM/SIGINT, seconds requests in flight may take to finish.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    drain_timeout: f64,
    /// Generation requests in flight at the HTTP front; more get 429 with Retry-After.
    #[arg(long, default_value_t = 2048, value_name = "N")]
    max_in_flight: u32,
    /// Threads of the HTTP front.
    #[arg(long, default_value_t = 2, value_name = "N")]
    http_threads: usize,
}

/// Why `fastlibra serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeCmdError {
    /// A flag's value is unusable.
    #[error("--{flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The runtime could not start (checkpoint, adapters, tiers, devices).
    #[error("{0}")]
    Runtime(String),
    /// The HTTP front could not start.
    #[error(transparent)]
    Front(#[from] fastlibra_serve::ServeError),
}

fn flag(flag: &'static str, message: impl Into<String>) -> ServeCmdError {
    ServeCmdError::Flag {
        flag,
        message: message.into(),
    }
}

fn seconds(name: &'static str, s: f64) -> Result<Duration, ServeCmdError> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| flag(name, format!("{s} is not a number of seconds >= 0")))
}

/// The runtime's and the front's options from the flags (nothing is started).
pub fn options(a: &ServeArgs) -> Result<(ServeOptions, FrontOptions), ServeCmdError> {
    let lora_modules = a
        .lora_modules
        .iter()
        .map(|m| match m.split_once('=') {
            Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
                Ok((name.to_string(), PathBuf::from(dir)))
            }
            _ => Err(flag("lora-modules", format!("`{m}` is not NAME=DIR"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let device = match a.backend.as_str() {
        "cpu" => DeviceChoice::Emulated,
        "cuda" => DeviceChoice::Cuda {
            ordinal: a.device,
            weights: match a.weights.as_str() {
                "f32" => WeightPrecision::F32,
                "bf16" => WeightPrecision::Bf16,
                w => return Err(flag("weights", format!("`{w}`; use f32 or bf16"))),
            },
        },
        b => return Err(flag("backend", format!("`{b}`; use cpu or cuda"))),
    };
    let policy = PolicyKind::from_name(&a.policy).ok_or_else(|| {
        let valid: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
        let why = if a.policy == "vllm-oracle" {
            " (a search over static splits in the simulator, for a known workload)"
        } else {
            ""
        };
        flag(
            "policy",
            format!("`{}`{why}; use one of {}", a.policy, valid.join(", ")),
        )
    })?;
    let size = |name: &'static str, text: &str| parse_size(text).map_err(|e| flag(name, e));
    if a.cores == 0 {
        return Err(flag("cores", "at least 1 shard"));
    }
    let serve = ServeOptions {
        model: a.model.clone(),
        served_model_name: a.served_model_name.clone(),
        lora_modules,
        max_loras: a.max_loras,
        max_lora_rank: a.max_lora_rank,
        max_cpu_loras: a.max_cpu_loras,
        max_model_len: a.max_model_len,
        max_num_seqs: a.max_num_seqs,
        max_waiting: a.max_waiting,
        device,
        shards: a.cores,
        tier_bytes: [
            size("hbm", &a.hbm)?,
            size("host-tier", &a.host_tier)?,
            size("nvme", &a.nvme)?,
        ],
        spill_dir: a.spill_dir.clone(),
        policy,
    };
    let body_bytes_max = size("max-body", &a.max_body)?;
    let front = FrontOptions {
        addr: SocketAddr::new(a.host, a.port),
        api_key: a.api_key.clone(),
        body_bytes_max: usize::try_from(body_bytes_max)
            .map_err(|_| flag("max-body", "too large"))?,
        read_timeout: seconds("read-timeout", a.read_timeout)?,
        max_in_flight: a.max_in_flight.max(1),
        drain_deadline: seconds("drain-timeout", a.drain_timeout)?,
        threads: a.http_threads.max(1),
        retry_after_s: 1,
    };
    Ok((serve, front))
}

/// Runs `fastlibra serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<(), ServeCmdError> {
    let (serve, front) = options(&args)?;
    let started = std::time::Instant::now();
    let backend = fastlibra_runtime::online::start(&serve)
        .map_err(|e| ServeCmdError::Runtime(e.to_string()))?;
    let server = fastlibra_serve::start(backend.clone(), front, true)?;
    let info = backend.model();
    let adapters: Vec<String> = backend
        .adapters()
        .iter()
        .map(|a| format!("{} (rank {})", a.name, a.rank))
        .collect();
    println!(
        "fastlibra serve: listening on http://{} — model {} ({}), max_model_len {}, adapters [{}], \
         backend {}, {} shard(s), policy {}, ready in {:.1} s",
        server.local_addr(),
        info.served_name,
        info.path.display(),
        info.max_model_len,
        adapters.join(", "),
        args.backend,
        serve.shards,
        serve.policy.name(),
        started.elapsed().as_secs_f64()
    );
    let report = server.join();
    eprintln!(
        "fastlibra serve: stopped; {} request(s) finished while draining, {} cancelled at the deadline",
        report.finished, report.cancelled
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(extra: &[&str]) -> Result<(ServeOptions, FrontOptions), ServeCmdError> {
        let mut argv = vec!["serve", "--model", "m.gguf"];
        argv.extend_from_slice(extra);
        options(&Cli::parse_from(argv).args)
    }

    #[test]
    fn vllms_flags_become_the_runtimes_and_the_fronts_options() {
        let (s, f) = parse(&[
            "--lora-modules",
            "a=/x/a",
            "b=/x/b",
            "--max-loras",
            "2",
            "--max-model-len",
            "512",
            "--port",
            "0",
            "--api-key",
            "k",
            "--policy",
            "vllm",
            "--hbm",
            "64M",
        ])
        .unwrap();
        assert_eq!(s.lora_modules.len(), 2);
        assert_eq!(s.lora_modules[1], ("b".to_string(), PathBuf::from("/x/b")));
        assert_eq!((s.max_loras, s.max_model_len), (2, Some(512)));
        assert_eq!(s.policy, PolicyKind::Vllm);
        assert_eq!(s.tier_bytes[0], 64 << 20);
        assert_eq!(f.addr.port(), 0);
        assert_eq!(f.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn every_policy_of_the_real_runtime_is_accepted() {
        for policy in PolicyKind::ALL {
            let (s, _) = parse(&["--policy", policy.name()]).unwrap();
            assert_eq!(s.policy, policy);
        }
        let (s, _) = parse(&["--policy", "vllm-async"]).unwrap();
        assert_eq!(s.policy, PolicyKind::VllmAsync);
    }

    #[test]
    fn bad_flags_are_errors_naming_the_flag() {
        for (argv, name) in [
            (&["--lora-modules", "noequals"][..], "--lora-modules"),
            (&["--backend", "tpu"], "--backend"),
            (&["--policy", "lru"], "--policy"),
            (&["--policy", "vllm-oracle"], "--policy"),
            (&["--hbm", "lots"], "--hbm"),
            (&["--read-timeout=-1"], "--read-timeout"),
            (&["--cores", "0"], "--cores"),
        ] {
            let err = parse(argv).unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
        }
    }
}
