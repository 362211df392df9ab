//! `fastlibra cuda`: the CUDA backend's checks.
//!
//! `compile-check --out DIR [--ptxas PATH] [--arch 90]` compiles every kernel through the
//! project's own NVRTC path (no GPU needed, only `libnvrtc.so*` on `LD_LIBRARY_PATH`), writes
//! one PTX file per module to `DIR`, and, given `ptxas`, assembles each for `sm_ARCH` with
//! `ptxas -v`, prints registers, shared memory and spills per kernel and fails if any kernel
//! spills or fails to assemble. `scripts/cuda-compile-check.sh` sets it up from pip wheels.
//!
//! `check --json FILE [--toml FILE] [--quick] [--model PATH [--model-only]]` runs the GPU
//! checks (kernels against the CPU reference, page-swap bandwidth, overlap, calibration) and
//! writes their results; with `--model`, also a real checkpoint's last-position logits and
//! greedy tokens on the GPU against the CPU path, fp32 and bf16 weights (`real_model` in the
//! JSON); `--model-only` runs that comparison alone. The checkpoint is read and its shape
//! checked against the kernels first, so a bad file or an unsupported shape is an error on any
//! machine; without a CUDA driver it then says so and exits with status 2.
//! `scripts/gpu-check.sh` wraps it.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};
use fastlibra_kernels::checkpoint::Checkpoint;
use fastlibra_kernels::cpu::CpuModelConfig;
use fastlibra_kernels::cuda::check::real_model::{self, RealModelCheck};
use fastlibra_kernels::cuda::ptxas::{KernelStats, parse_ptxas_log};
use fastlibra_kernels::cuda::source::{CHECKED_HEAD_DIMS, KERNEL_NAMES, ModuleSource};
use fastlibra_kernels::cuda::{CudaDevice, CudaError, check, check_supported, compile_ptx};
use fastlibra_kernels::generate::{LoadedModel, Prompt};

type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// Arguments of `fastlibra cuda`.
#[derive(Args, Debug)]
pub struct CudaArgs {
    #[command(subcommand)]
    command: CudaCommand,
}

#[derive(Subcommand, Debug)]
enum CudaCommand {
    /// Compile every kernel with NVRTC to PTX (no GPU needed); with --ptxas, assemble and fail
    /// on spills.
    CompileCheck {
        /// Folder for the PTX files and the ptxas logs.
        #[arg(long)]
        out: PathBuf,
        /// `ptxas` to assemble each PTX with (`-v`), e.g. from the nvidia-cuda-nvcc wheel.
        #[arg(long)]
        ptxas: Option<PathBuf>,
        /// Compute capability to compile for (90 = Hopper).
        #[arg(long, default_value_t = 90)]
        arch: u32,
    },
    /// Run the GPU checks and write one JSON of results (needs a CUDA driver and NVRTC).
    Check {
        /// Where to write the JSON results.
        #[arg(long)]
        json: PathBuf,
        /// Where to write the calibration in the simulator's hardware TOML format.
        #[arg(long)]
        toml: Option<PathBuf>,
        /// Smaller sizes (a smoke run of a minute or less).
        #[arg(long)]
        quick: bool,
        /// A checkpoint (`.gguf` file or Hugging Face folder) to run on the GPU and compare
        /// with the CPU path: last-position logits and greedy tokens, fp32 and bf16 weights.
        #[arg(long)]
        model: Option<PathBuf>,
        /// With --model: run only that comparison, not the synthetic checks.
        #[arg(long, requires = "model")]
        model_only: bool,
    },
}

/// Runs `fastlibra cuda`.
pub fn run(args: CudaArgs) -> CmdResult {
    match args.command {
        CudaCommand::CompileCheck { out, ptxas, arch } => {
            compile_check(&out, ptxas.as_deref(), arch)
        }
        CudaCommand::Check {
            json,
            toml,
            quick,
            model,
            model_only,
        } => {
            if let Some(path) = &model {
                check_model_shape(path)?;
            }
            if model_only {
                model_check(&json, model.as_deref())
            } else {
                gpu_check(&json, toml.as_deref(), quick, model.as_deref())
            }
        }
    }
}

fn compile_check(out: &Path, ptxas: Option<&Path>, arch: u32) -> CmdResult {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut rows: Vec<(String, KernelStats)> = Vec::new();
    for head_dim in CHECKED_HEAD_DIMS {
        let source = ModuleSource::for_head_dim(head_dim);
        let ptx = compile_ptx(&source, arch)?;
        let ptx_path = out.join(format!("{}.ptx", source.name));
        std::fs::write(&ptx_path, ptx.to_src())
            .map_err(|e| format!("cannot write {}: {e}", ptx_path.display()))?;
        println!("nvrtc: {} → {}", source.name, ptx_path.display());
        if let Some(ptxas) = ptxas {
            let stats = assemble(ptxas, &ptx_path, arch, out)?;
            for name in KERNEL_NAMES {
                if !stats.iter().any(|k| k.name == name) {
                    return Err(format!(
                        "ptxas reported nothing for kernel {name} of {}",
                        source.name
                    )
                    .into());
                }
            }
            rows.extend(stats.into_iter().map(|k| (source.name.clone(), k)));
        }
    }
    if ptxas.is_none() {
        println!("no --ptxas given: PTX written, registers and spills not checked");
        return Ok(());
    }
    print_table(&rows, arch);
    let spilling: Vec<String> = rows
        .iter()
        .filter(|(_, k)| k.spills())
        .map(|(m, k)| format!("{m}::{}", k.name))
        .collect();
    if spilling.is_empty() {
        println!("ok: {} kernels, no spills", rows.len());
        Ok(())
    } else {
        Err(format!("kernels spill to local memory: {}", spilling.join(", ")).into())
    }
}

/// `ptxas -arch=sm_ARCH -v` on one PTX file; its log is kept next to the PTX.
fn assemble(ptxas: &Path, ptx: &Path, arch: u32, out: &Path) -> Result<Vec<KernelStats>, String> {
    let cubin = ptx.with_extension("cubin");
    let result = Command::new(ptxas)
        .arg(format!("-arch=sm_{arch}"))
        .arg("-v")
        .arg(ptx)
        .arg("-o")
        .arg(&cubin)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", ptxas.display()))?;
    let log = String::from_utf8_lossy(&result.stderr).into_owned()
        + &String::from_utf8_lossy(&result.stdout);
    let log_path = out.join(format!(
        "{}.ptxas.log",
        ptx.file_stem().and_then(|s| s.to_str()).unwrap_or("module")
    ));
    std::fs::write(&log_path, &log)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    if !result.status.success() {
        return Err(format!("ptxas failed on {}:\n{log}", ptx.display()));
    }
    Ok(parse_ptxas_log(&log))
}

fn print_table(rows: &[(String, KernelStats)], arch: u32) {
    println!("\nptxas sm_{arch}:");
    println!(
        "{:<16} {:<18} {:>5} {:>8} {:>6} {:>12} {:>11}",
        "module", "kernel", "regs", "smem B", "stack", "spill st B", "spill ld B"
    );
    for (module, k) in rows {
        println!(
            "{:<16} {:<18} {:>5} {:>8} {:>6} {:>12} {:>11}",
            module,
            k.name,
            k.registers,
            k.smem_bytes,
            k.stack_bytes,
            k.spill_store_bytes,
            k.spill_load_bytes
        );
    }
}

/// Prints the skip line and exits with the "no GPU" status (2).
fn no_gpu() -> ! {
    eprintln!("skipped: no CUDA driver found (libcuda.so.1 not loadable); nothing measured");
    std::process::exit(2);
}

/// The checkpoint's config, checked without converting a tensor, and its shape against what
/// the kernels run: both need no GPU.
fn check_model_shape(path: &Path) -> CmdResult {
    let config =
        Checkpoint::read_config(path).map_err(|e| format!("--model {}: {e}", path.display()))?;
    check_supported(&CpuModelConfig::from(&config))
        .map_err(|e| format!("--model {}: {e}", path.display()))?;
    Ok(())
}

/// The real-model comparison on device 0: the checkpoint loaded once with its tokenizer, the
/// prompts of [`real_model::PROMPTS`] tokenised by it.
fn run_model_check(
    dev: &CudaDevice,
    path: &Path,
) -> Result<RealModelCheck, Box<dyn std::error::Error>> {
    let loaded = LoadedModel::open(path)?;
    let prompts = real_model::PROMPTS
        .iter()
        .map(|p| loaded.prompt_ids(&Prompt::Text((*p).to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let name = loaded.model.config().name.clone();
    Ok(real_model::run(dev, &loaded.model, &name, &prompts)?)
}

/// `cuda check --model PATH --model-only`: the comparison alone, its own JSON.
fn model_check(json: &Path, model: Option<&Path>) -> CmdResult {
    let path = model.ok_or("--model-only needs --model PATH")?;
    let dev = match CudaDevice::open(0) {
        Ok(d) => d,
        Err(CudaError::NoDriver) => no_gpu(),
        Err(e) => return Err(e.into()),
    };
    let result = run_model_check(&dev, path)?;
    let doc = serde_json::json!({
        "device": dev.name(),
        "sm": dev.sm(),
        "real_model": &result,
    });
    std::fs::write(json, serde_json::to_string_pretty(&doc)?)
        .map_err(|e| format!("cannot write {}: {e}", json.display()))?;
    println!("results: {}", json.display());
    println!("{}", result.summary());
    if result.passed {
        Ok(())
    } else {
        Err(
            "the real model's GPU logits or greedy tokens differ from the CPU path's; see the JSON"
                .into(),
        )
    }
}

fn gpu_check(json: &Path, toml: Option<&Path>, quick: bool, model: Option<&Path>) -> CmdResult {
    let mut report = match check::run_all(quick) {
        Ok(r) => r,
        Err(CudaError::NoDriver) => no_gpu(),
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = model {
        let dev = CudaDevice::open(0)?;
        report.real_model = Some(run_model_check(&dev, path)?);
    }
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(json, text).map_err(|e| format!("cannot write {}: {e}", json.display()))?;
    println!("results: {}", json.display());
    if let Some(path) = toml {
        std::fs::write(path, report.calibration_toml())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("calibration: {}", path.display());
    }
    println!("{}", report.summary());
    if report.passed() {
        Ok(())
    } else {
        Err("a GPU check failed; see the JSON".into())
    }
}
