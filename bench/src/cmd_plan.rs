//! `fastlibra plan`: the memory plan of a model on a GPU — the page size derived from the
//! model's KV geometry, pages per tier, adapter sizes, and what the page and node metadata of
//! `fastlibra-alloc` costs at that size.
//!
//! The model is a preset (bf16) or a checkpoint given by path (`--model model.gguf`, or a
//! Hugging Face folder): then its shape comes from the checkpoint's own metadata, with f32
//! weights and KV as the CPU backend holds them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use fastlibra_alloc::node::NODE_SLOT_BYTES;
use fastlibra_kernels::checkpoint::{Checkpoint, LlamaConfig};
use fastlibra_kernels::{CostParams, GpuSpec, HardwareConfig, MODEL_PRESETS, ModelSpec};
use fastlibra_runtime::sim::plan::{ACTIVATION_RESERVE_BYTES, BLOCK_TOKENS, MemoryPlan};
use fastlibra_runtime::workload::AdapterSpec;

/// Arguments of `fastlibra plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Base model: a preset (llama3-8b, llama2-7b, llama2-13b, codellama-34b, llama3-70b), or
    /// the path of a checkpoint (a .gguf file or a Hugging Face folder), planned with f32
    /// weights and KV as the CPU backend holds them.
    #[arg(long, default_value = "llama3-8b")]
    model: String,
    /// GPU preset: a100-80g, h100-80g, h800-80g, h200.
    #[arg(long, default_value = "h100-80g")]
    gpu: String,
    /// TOML file of hardware overrides ([model], [gpu] and [cost] tables).
    #[arg(long)]
    config: Option<PathBuf>,
    /// LoRA ranks to size, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    ranks: Vec<u32>,
}

/// The model to plan: a preset, or a checkpoint's shape (and the config it came from).
fn model_spec(model: &str) -> Result<(ModelSpec, Option<LlamaConfig>), Box<dyn std::error::Error>> {
    if MODEL_PRESETS.contains(&model) {
        return Ok((ModelSpec::preset(model)?, None));
    }
    let path = Path::new(model);
    if !path.exists() {
        let presets = MODEL_PRESETS.join(", ");
        return Err(format!(
            "--model: `{model}` is neither a preset ({presets}) nor a checkpoint file or folder"
        )
        .into());
    }
    let config = Checkpoint::read_config(path)?;
    Ok((config.model_spec(), Some(config)))
}

/// Prints the memory plan.
pub fn run(args: PlanArgs) -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", plan_text(&args)?);
    Ok(())
}

/// The memory plan as `run` prints it.
fn plan_text(args: &PlanArgs) -> Result<String, Box<dyn std::error::Error>> {
    let (model, checkpoint) = model_spec(&args.model)?;
    let mut hardware = HardwareConfig {
        model,
        gpu: GpuSpec::preset(&args.gpu)?,
        cost: CostParams::default(),
    };
    if let Some(path) = &args.config {
        hardware = hardware.with_toml_file(path)?;
    }
    if let Some(bad) = args.ranks.iter().find(|&&r| r == 0) {
        return Err(format!("--ranks: a rank must be positive, got {bad}").into());
    }
    let adapters: Vec<AdapterSpec> = args
        .ranks
        .iter()
        .map(|&rank| AdapterSpec {
            name: format!("rank-{rank}"),
            rank,
        })
        .collect();
    let plan = MemoryPlan::new(&hardware, &adapters)?;
    let mut out = String::new();
    if let Some(c) = &checkpoint {
        writeln!(
            out,
            "checkpoint {}: {} layers, hidden {}, {} heads / {} KV heads of {}, FFN {}, vocab {}, \
             {} parameters; f32 weights and KV (CPU backend)",
            args.model,
            c.layers,
            c.hidden,
            c.heads,
            c.kv_heads,
            c.head_dim,
            c.ffn,
            c.vocab,
            hardware.model.params
        )?;
    }
    write_plan(&mut out, &hardware, &adapters, &plan)?;
    Ok(out)
}

fn write_plan(
    out: &mut String,
    hardware: &HardwareConfig,
    adapters: &[AdapterSpec],
    plan: &MemoryPlan,
) -> std::fmt::Result {
    let g = plan.geometry;
    let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
    let gib = |pages: u32| f64::from(pages) * g.page_bytes as f64 / f64::from(1u32 << 30);
    writeln!(
        out,
        "model {} (tensor parallel {}) on {}",
        hardware.model.name, hardware.model.tensor_parallel, hardware.gpu.name
    )?;
    writeln!(
        out,
        "KV per token per GPU: {:.1} KiB; block: {BLOCK_TOKENS} tokens = {:.2} MiB = {} page(s)",
        hardware.model.kv_bytes_per_token_per_gpu() as f64 / 1024.0,
        mib(g.block_bytes()),
        g.pages_per_block
    )?;
    writeln!(
        out,
        "page: {} bytes ({:.2} MiB)",
        g.page_bytes,
        mib(g.page_bytes)
    )?;
    writeln!(
        out,
        "HBM pool: 0.9 × HBM − weights ({:.1} GiB) − activation reserve ({:.1} GiB)",
        hardware.model.weight_bytes_per_gpu() as f64 / f64::from(1u32 << 30),
        ACTIVATION_RESERVE_BYTES as f64 / f64::from(1u32 << 30)
    )?;
    for (name, pages) in ["hbm", "host", "nvme"].iter().zip(plan.pages) {
        writeln!(
            out,
            "  {name:<5} {pages:>10} pages  {:>9.1} GiB",
            gib(pages)
        )?;
    }
    let targets: Vec<&str> = hardware
        .cost
        .lora_targets
        .iter()
        .map(|t| t.name())
        .collect();
    writeln!(out, "adapters (LoRA on {}):", targets.join(", "))?;
    for (spec, info) in adapters.iter().zip(&plan.adapters) {
        writeln!(
            out,
            "  rank {:>4}: {:>6} pages  {:>8.1} MiB",
            spec.rank,
            info.pages,
            gib(info.pages) * 1024.0
        )?;
    }
    let total_pages: u64 = plan.pages.iter().map(|&p| u64::from(p)).sum();
    writeln!(
        out,
        "alloc metadata: 8 bytes + 1 bit per page, {NODE_SLOT_BYTES} bytes per node slot; \
         {:.1} MiB for all {total_pages} pages and as many node slots",
        (total_pages as f64 * (8.125 + NODE_SLOT_BYTES as f64)) / f64::from(1u32 << 20)
    )
}

#[cfg(test)]
mod tests {
    use fastlibra_kernels::checkpoint::locate;

    use super::*;

    fn args(model: &str) -> PlanArgs {
        PlanArgs {
            model: model.into(),
            gpu: "h100-80g".into(),
            config: None,
            ranks: vec![8, 16],
        }
    }

    #[test]
    fn a_preset_still_plans_in_bf16() {
        let text = plan_text(&args("llama3-8b")).expect("plan");
        assert!(
            text.starts_with("model llama3-8b (tensor parallel 1) on h100-80g\n"),
            "{text}"
        );
        assert!(text.contains("KV per token per GPU: 128.0 KiB"), "{text}");
        assert!(!text.contains("checkpoint"));
    }

    #[test]
    fn an_unknown_model_names_the_presets_and_the_path_rule() {
        let err = plan_text(&args("no/such/model.gguf"))
            .expect_err("unknown")
            .to_string();
        assert!(
            err.contains("llama3-8b") && err.contains("checkpoint file or folder"),
            "{err}"
        );
    }

    #[test]
    fn the_real_checkpoint_gives_the_shape_kv_and_pages() {
        let Some(path) = locate::smollm2() else {
            let file = locate::model_dir()
                .unwrap_or_default()
                .join(locate::SMOLLM2_FILE);
            assert!(
                !locate::model_required(),
                "FASTLIBRA_REQUIRE_MODEL=1 but {} is missing; run scripts/fetch-model.sh",
                file.display()
            );
            eprintln!("skip plan --model: {} not found", file.display());
            return;
        };
        let text = plan_text(&args(&path.display().to_string())).expect("plan");
        println!("{text}");
        assert!(
            text.contains("30 layers, hidden 576, 9 heads / 3 KV heads of 64, FFN 1536"),
            "{text}"
        );
        assert!(text.contains("134515008 parameters"), "{text}");
        // 2 × 30 layers × 3 KV heads × 64 × 4 bytes = 45 KiB per token; 16 tokens per block.
        assert!(
            text.contains("KV per token per GPU: 45.0 KiB; block: 16 tokens = 0.70 MiB"),
            "{text}"
        );
        // 134,515,008 f32 weights = 0.5 GiB out of HBM.
        assert!(text.contains("weights (0.5 GiB)"), "{text}");
    }
}
