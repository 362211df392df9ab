//! `fastlibra adapters`: write random LoRA adapters of real shapes in PEFT's format, or load
//! and check one.
//!
//! `synth` writes `DIR/adapter-000/`, `DIR/adapter-001/`, … each with `adapter_config.json`
//! and `adapter_model.safetensors`, for tests and demos. Weights come from a ChaCha8 stream
//! per adapter (`--seed`, stream = adapter index), so a run is reproducible:
//! `A` is uniform in `±sqrt(3 / in)` (variance `1 / in`, like PEFT's Kaiming-uniform init) and
//! `B` uniform in `±0.01·sqrt(3)` (standard deviation 0.01; PEFT starts `B` at zero, which
//! would make the adapter a no-op). The total size is checked against `--max-bytes` before
//! anything is written, so a typo cannot fill the disk.
//!
//! `--model` is a preset, `cpu-random`, or a checkpoint by path (`model.gguf` or a Hugging Face
//! folder): `synth --model PATH` writes adapters of that checkpoint's own shapes, with PEFT's
//! module names (`q_proj` … `down_proj`), which `fastlibra generate --lora` and llama.cpp (after
//! `scripts/refs/peft_to_gguf_lora.py`) both apply.
//!
//! `check` loads one folder against the model's shapes and prints rank, alpha, targets, bytes
//! and the pages it takes at `--page-bytes` (default: one KV block of the model).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use fastlibra_alloc::geometry::PageGeometry;
use fastlibra_bench::units::parse_size;
use fastlibra_kernels::checkpoint::Checkpoint;
use fastlibra_kernels::peft::{
    Adapter, AdapterConfig, AdapterShape, Matrix, WeightDtype, load_peft, write_peft,
};
use fastlibra_kernels::{HardwareConfig, LoraTargets, MODEL_PRESETS, ModelSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tokens per KV block, as in the memory plan: the default page holds one block.
const BLOCK_TOKENS: u32 = 16;
/// The GPU preset used only to build a [`HardwareConfig`]; adapters do not depend on it.
const GPU_PRESET: &str = "h100-80g";

type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// Arguments of `fastlibra adapters`.
#[derive(Args, Debug)]
pub struct AdaptersArgs {
    #[command(subcommand)]
    command: AdaptersCommand,
}

#[derive(Subcommand, Debug)]
enum AdaptersCommand {
    /// Write N random adapters of the model's real shapes in PEFT format.
    Synth(SynthArgs),
    /// Load one adapter folder, check it against the model and print its size in pages.
    Check(CheckArgs),
}

/// Arguments of `fastlibra adapters synth`.
#[derive(Args, Debug)]
struct SynthArgs {
    /// Base model: a preset (llama3-8b, llama2-7b, llama2-13b, codellama-34b, llama3-70b),
    /// cpu-random (the CPU backend's small model; use `--targets q,k,v,o` and `--dtype f32`
    /// or bf16), or a checkpoint by path (a `.gguf` file or a Hugging Face folder), whose own
    /// shapes the adapters take.
    #[arg(long, default_value = "llama3-8b")]
    model: String,
    /// TOML file of hardware overrides (its [model] table changes the shapes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// LoRA rank of every adapter.
    #[arg(long)]
    rank: u32,
    /// Number of adapters.
    #[arg(long)]
    count: u32,
    /// Output folder; adapters go to OUT/adapter-000, OUT/adapter-001, ….
    #[arg(long)]
    out: PathBuf,
    /// Target projections: comma-separated names (q,k,v,o,gate,up,down) or `all-linear`.
    #[arg(long, default_value = "q,k,v,o")]
    targets: String,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stored dtype: bf16, f16 or f32.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// `lora_alpha` (default: twice the rank, so the scaling is 2).
    #[arg(long)]
    alpha: Option<f32>,
    /// Refuse to write more than this many bytes of weights in all (suffixes K, M, G).
    #[arg(long, default_value = "4G", value_parser = parse_size)]
    max_bytes: u64,
    /// No progress line per adapter.
    #[arg(long)]
    quiet: bool,
}

/// Arguments of `fastlibra adapters check`.
#[derive(Args, Debug)]
struct CheckArgs {
    /// The adapter folder (holding adapter_config.json and adapter_model.safetensors).
    dir: PathBuf,
    /// Base model: a preset or a checkpoint by path (default: the config's
    /// base_model_name_or_path, if it is a preset).
    #[arg(long)]
    model: Option<String>,
    /// TOML file of hardware overrides (its [model] table changes the shapes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Page size in bytes (suffixes K, M, G); default: one KV block of the model.
    #[arg(long, value_parser = parse_size)]
    page_bytes: Option<u64>,
}

/// Runs `fastlibra adapters …`.
pub fn run(args: AdaptersArgs) -> CmdResult {
    match args.command {
        AdaptersCommand::Synth(args) => synth(args),
        AdaptersCommand::Check(args) => check(args),
    }
}

/// The CPU backend's model (`fastlibra bench --backend cpu`), by its spec's name.
const CPU_MODEL: &str = "cpu-random";

fn model_spec(model: &str, config: Option<&Path>) -> Result<ModelSpec, Box<dyn std::error::Error>> {
    let path = Path::new(model);
    if !MODEL_PRESETS.contains(&model) && model != CPU_MODEL && path.exists() {
        if config.is_some() {
            return Err("--config does not apply to a checkpoint given by path".into());
        }
        // The checkpoint's own shape, checked without converting a tensor.
        return Ok(Checkpoint::read_config(path)?.model_spec());
    }
    if model == CPU_MODEL {
        if config.is_some() {
            return Err(format!("--config does not apply to --model {CPU_MODEL}").into());
        }
        return Ok(fastlibra_kernels::cpu::CpuModelConfig::default().model_spec());
    }
    let mut hardware = HardwareConfig::from_presets(model, GPU_PRESET)?;
    if let Some(path) = config {
        hardware = hardware.with_toml_file(path)?;
    }
    Ok(hardware.model)
}

fn parse_targets(text: &str) -> Result<LoraTargets, String> {
    if text == "all-linear" {
        return Ok(LoraTargets::ALL_LINEAR);
    }
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    match LoraTargets::from_names(&names) {
        Ok(set) if !set.is_empty() => Ok(set),
        Ok(_) => Err("--targets: no target given".into()),
        Err(bad) => Err(format!(
            "--targets: unknown target `{bad}`; valid: q, k, v, o, gate, up, down, all-linear"
        )),
    }
}

fn synth(args: SynthArgs) -> CmdResult {
    if args.rank == 0 {
        return Err("--rank must be positive".into());
    }
    if args.count == 0 {
        return Err("--count must be positive".into());
    }
    let spec = model_spec(&args.model, args.config.as_deref())?;
    let targets = parse_targets(&args.targets)?;
    let dtype = WeightDtype::from_name(&args.dtype)
        .ok_or_else(|| format!("--dtype: unknown `{}`; valid: bf16, f16, f32", args.dtype))?;
    let alpha = args.alpha.unwrap_or(2.0 * args.rank as f32);
    let sized = ModelSpec {
        dtype_bytes: dtype.bytes() as u32,
        ..spec.clone()
    };
    let per_adapter = sized.lora_bytes(args.rank, targets);
    let total = per_adapter.saturating_mul(u64::from(args.count));
    if total > args.max_bytes {
        return Err(format!(
            "{} adapters of {} bytes would write {total} bytes, over --max-bytes {}",
            args.count, per_adapter, args.max_bytes
        )
        .into());
    }
    let shape = AdapterShape {
        rank: args.rank,
        alpha,
        targets,
        dtype,
    };
    for index in 0..args.count {
        let adapter = random_adapter(&spec, shape, args.seed, index)?;
        let dir = args.out.join(format!("adapter-{index:03}"));
        write_peft(&dir, &adapter, &spec.name)?;
        if !args.quiet {
            println!(
                "{}: {} rank {} ({}), {dtype}, {:.2} MiB",
                dir.display(),
                spec.name,
                args.rank,
                target_names(targets),
                per_adapter as f64 / f64::from(1u32 << 20)
            );
        }
    }
    Ok(())
}

/// An adapter of `spec`'s shapes with weights from ChaCha8 (`seed`, stream `index`).
fn random_adapter(
    spec: &ModelSpec,
    shape: AdapterShape,
    seed: u64,
    index: u32,
) -> Result<Adapter, Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(index));
    const B_BOUND: f32 = 0.01 * 1.732_050_8;
    let adapter = Adapter::from_fn(spec, shape, |_, target, matrix, _| {
        let bound = match matrix {
            Matrix::A => (3.0 / spec.projection_dims(target).0 as f32).sqrt(),
            Matrix::B => B_BOUND,
        };
        rng.random_range(-bound..bound)
    })?;
    Ok(adapter)
}

fn target_names(targets: LoraTargets) -> String {
    targets
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn check(args: CheckArgs) -> CmdResult {
    let model = match &args.model {
        Some(name) => name.clone(),
        None => {
            let config = AdapterConfig::read(&args.dir)?;
            if !MODEL_PRESETS.contains(&config.base_model.as_str())
                && config.base_model != CPU_MODEL
            {
                return Err(format!(
                    "base model `{}` of {} is not a preset; pass --model (valid: {})",
                    config.base_model,
                    args.dir.display(),
                    MODEL_PRESETS.join(", ")
                )
                .into());
            }
            config.base_model
        }
    };
    let spec = model_spec(&model, args.config.as_deref())?;
    let adapter = load_peft(&args.dir, &spec)?;
    let geometry = PageGeometry::for_model(
        spec.kv_bytes_per_token_per_gpu(),
        BLOCK_TOKENS,
        args.page_bytes,
    )?;
    let paged = adapter.paged(geometry.page_bytes)?;
    println!("adapter {} for {}", args.dir.display(), spec.name);
    println!(
        "rank {}, alpha {}, scaling {}, targets {}, dtype {}",
        adapter.rank(),
        adapter.alpha(),
        adapter.scaling(),
        target_names(adapter.targets()),
        adapter.dtype()
    );
    println!(
        "bytes {} ({:.2} MiB), {} per rank slice",
        adapter.bytes(),
        adapter.bytes() as f64 / f64::from(1u32 << 20),
        paged.layout.slice_bytes()
    );
    println!(
        "pages {} of {} bytes (allocator: {})",
        paged.pages.len(),
        geometry.page_bytes,
        geometry.pages_for(adapter.bytes())
    );
    Ok(())
}
