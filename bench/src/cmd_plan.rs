//! `fastlibra plan`: the memory plan of a model on a GPU — the page size derived from the
//! model's KV geometry, pages per tier, adapter sizes, and what the page and node metadata of
//! `fastlibra-alloc` costs at that size.

use std::path::PathBuf;

use clap::Args;
use fastlibra_alloc::node::NODE_SLOT_BYTES;
use fastlibra_kernels::HardwareConfig;
use fastlibra_runtime::sim::plan::{ACTIVATION_RESERVE_BYTES, BLOCK_TOKENS, MemoryPlan};
use fastlibra_runtime::workload::AdapterSpec;

/// Arguments of `fastlibra plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Base model preset: llama3-8b, llama2-7b, llama2-13b, codellama-34b, llama3-70b.
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

/// Prints the memory plan.
pub fn run(args: PlanArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut hardware = HardwareConfig::from_presets(&args.model, &args.gpu)?;
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
    let g = plan.geometry;
    let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
    let gib = |pages: u32| f64::from(pages) * g.page_bytes as f64 / f64::from(1u32 << 30);
    println!(
        "model {} (tensor parallel {}) on {}",
        hardware.model.name, hardware.model.tensor_parallel, hardware.gpu.name
    );
    println!(
        "KV per token per GPU: {:.1} KiB; block: {BLOCK_TOKENS} tokens = {:.2} MiB = {} page(s)",
        hardware.model.kv_bytes_per_token_per_gpu() as f64 / 1024.0,
        mib(g.block_bytes()),
        g.pages_per_block
    );
    println!(
        "page: {} bytes ({:.2} MiB)",
        g.page_bytes,
        mib(g.page_bytes)
    );
    println!(
        "HBM pool: 0.9 × HBM − weights ({:.1} GiB) − activation reserve ({:.1} GiB)",
        hardware.model.weight_bytes_per_gpu() as f64 / f64::from(1u32 << 30),
        ACTIVATION_RESERVE_BYTES as f64 / f64::from(1u32 << 30)
    );
    for (name, pages) in ["hbm", "host", "nvme"].iter().zip(plan.pages) {
        println!("  {name:<5} {pages:>10} pages  {:>9.1} GiB", gib(pages));
    }
    let targets: Vec<&str> = hardware
        .cost
        .lora_targets
        .iter()
        .map(|t| t.name())
        .collect();
    println!("adapters (LoRA on {}):", targets.join(", "));
    for (spec, info) in adapters.iter().zip(&plan.adapters) {
        println!(
            "  rank {:>4}: {:>6} pages  {:>8.1} MiB",
            spec.rank,
            info.pages,
            gib(info.pages) * 1024.0
        );
    }
    let total_pages: u64 = plan.pages.iter().map(|&p| u64::from(p)).sum();
    println!(
        "alloc metadata: 8 bytes + 1 bit per page, {NODE_SLOT_BYTES} bytes per node slot; \
         {:.1} MiB for all {total_pages} pages and as many node slots",
        (total_pages as f64 * (8.125 + NODE_SLOT_BYTES as f64)) / f64::from(1u32 << 20)
    );
    Ok(())
}
