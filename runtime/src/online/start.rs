//! Starting the serving runtime: the checkpoint and its tokenizer, the base and start-up
//! adapters, the cost hints, then one glommio executor per shard, each building its shard
//! (engine, device tiers, page file) on its own core before `start` returns.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use fastlibra_kernels::LoraTargets;
use fastlibra_kernels::checkpoint::Checkpoint;
use fastlibra_kernels::cpu::{CpuModel, CpuModelConfig};
use fastlibra_kernels::peft::{Adapter, AdapterShape, WeightDtype};
use fastlibra_kernels::tokenizer::Tokenizer;
use glommio::{LocalExecutorBuilder, Placement};

use super::api::{ModelInfo, ServeBackend, ServeOptions};
use super::metrics::Published;
use super::registry::Registry;
use super::runtime::{Counters, OnlineRuntime, ShardLink};
use super::shard_loop::{ShardLoop, shard_main, table};
use crate::real::calibrate::spill_and_costs;
use crate::real::device::{DeviceChoice, cuda_cost_hints};
use crate::real::router::Router;
use crate::real::runner::{PREFILL_TOKEN_BUDGET, SPILL_MARGIN};
use crate::real::shard::BLOCK_TOKENS;
use crate::real::{Clock, RealError, Shard, ShardConfig, SourceAdapter};

/// io_uring queue depth of each page file.
const QUEUE_DEPTH: u32 = 32;

/// Opens `options.model` (GGUF file or Hugging Face folder) with its tokenizer and starts
/// the runtime on it.
pub fn start(options: &ServeOptions) -> Result<Arc<dyn ServeBackend>, RealError> {
    let checkpoint = Checkpoint::open_shared(&options.model)?;
    let tokenizer = match &checkpoint.gguf {
        Some(file) => Tokenizer::from_gguf(file),
        None => Tokenizer::from_hf_folder(&options.model),
    }
    .map_err(|e| RealError::Config(format!("{}: tokenizer: {e}", options.model.display())))?;
    let model = CpuModel::from_checkpoint(&checkpoint)?;
    let runtime = start_with(Arc::new(model), Arc::new(tokenizer), options)?;
    Ok(runtime)
}

/// Starts the runtime on a model already in memory (`options.model` only names it). The
/// model's vocabulary must be the tokenizer's.
pub fn start_with(
    model: Arc<CpuModel>,
    tokenizer: Arc<Tokenizer>,
    options: &ServeOptions,
) -> Result<Arc<OnlineRuntime>, RealError> {
    let config = model.config().clone();
    check_options(options, &config, &tokenizer)?;
    let page_bytes = (config.page_floats(BLOCK_TOKENS as usize) * 4) as u64;
    let pages = tier_pages(options, page_bytes)?;
    let mut cuda_costs = None;
    if let DeviceChoice::Cuda { ordinal, weights } = options.device {
        cuda_costs = Some(cuda_cost_hints(ordinal, weights, &model, BLOCK_TOKENS as usize)?.0);
    }
    let served_name = served_name(options);
    let mut adapters = vec![base_adapter(&config, &served_name, page_bytes)?];
    for (name, dir) in &options.lora_modules {
        let source = SourceAdapter::load(&config, dir, options.max_lora_rank, page_bytes)?;
        adapters.push(Arc::new(SourceAdapter {
            name: name.clone(),
            ..source
        }));
    }
    if matches!(options.device, DeviceChoice::Cuda { .. }) {
        adapters = adapters
            .iter()
            .map(|a| a.for_cuda(&config, page_bytes))
            .collect::<Result<_, _>>()?;
    }
    let (spill, costs) = spill_and_costs(options.spill_dir.as_deref(), &model, cuda_costs)?;
    let shard_config = ShardConfig {
        policy: options.policy,
        pages,
        queue_depth: QUEUE_DEPTH,
        verify: false,
        faults: None,
        check_invariants: false,
        costs,
        max_batch: options.max_num_seqs,
        prefill_token_budget: PREFILL_TOKEN_BUDGET,
        max_waiting: options.max_waiting,
        // The engine counts the base model's adapter 0; vLLM's bound counts LoRAs only.
        max_cpu_loras: options.max_cpu_loras.map(|n| n.saturating_add(1)),
        device: options.device,
    };
    let shards = options.shards as usize;
    let counters = Arc::new(Counters::new(shards));
    let published = Arc::new(Published::new(shards));
    let mut links = Vec::with_capacity(shards);
    let mut threads = Vec::with_capacity(shards);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let clock = Clock::start();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for s in 0..shards {
        let (requests_tx, requests) = tokio::sync::mpsc::channel(options.max_waiting as usize);
        let (control_tx, control) = tokio::sync::mpsc::unbounded_channel();
        links.push(ShardLink {
            requests: requests_tx,
            control: control_tx,
        });
        let (config, model, adapters) = (shard_config.clone(), model.clone(), adapters.clone());
        let (tokenizer, counters, published) =
            (tokenizer.clone(), counters.clone(), published.clone());
        let spill_path = spill.path().to_path_buf();
        let ready = ready_tx.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(s % cores))
            .name(&format!("serve-{s}"))
            .spawn(move || async move {
                let shard = match Shard::new(&config, model, &adapters, &spill_path) {
                    Ok(mut shard) => {
                        shard.prefault();
                        shard
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!("shard {s}: {e}")));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                drop(ready);
                let lp = ShardLoop {
                    shard,
                    index: s,
                    clock,
                    table: table(tokenizer, counters, s),
                    requests,
                    control,
                    published,
                };
                shard_main(lp).await;
            })
            .map_err(|e| RealError::Runtime(format!("starting shard {s}: {e}")))?;
        threads.push(handle);
    }
    drop(ready_tx);
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(RealError::Runtime(e)),
            Err(_) => return Err(RealError::Runtime("a shard stopped during start-up".into())),
        }
    }
    let max_adapter_pages = adapters.iter().map(|a| a.info().pages).max().unwrap_or(1);
    let info = ModelInfo {
        served_name,
        path: options.model.clone(),
        tokenizer,
        max_model_len: max_model_len(options, &config, pages[0], max_adapter_pages),
        block_tokens: BLOCK_TOKENS,
        hbm_pages: u64::from(pages[0]) * shards as u64,
        max_loras: options.max_loras,
        max_lora_rank: options.max_lora_rank,
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let mut registry = Registry::default();
    for (i, (name, dir)) in options.lora_modules.iter().enumerate() {
        let rank = adapters[i + 1].paged.layout.shape.rank;
        registry.add(i as u32 + 1, name, dir.clone(), rank, info.created_unix_s);
    }
    Ok(Arc::new(OnlineRuntime {
        info,
        model: config,
        page_bytes,
        device: options.device,
        links,
        router: Router::new(options.shards, SPILL_MARGIN),
        counters,
        published,
        registry: Mutex::new(registry),
        adapter_lock: Mutex::new(()),
        max_waiting: u64::from(options.max_waiting),
        draining: AtomicBool::new(false),
        threads: Mutex::new(threads),
        _spill: spill,
    }))
}

fn check_options(
    options: &ServeOptions,
    config: &CpuModelConfig,
    tokenizer: &Tokenizer,
) -> Result<(), RealError> {
    let bad = |m: String| Err(RealError::Config(m));
    if options.shards == 0 {
        return bad("at least one shard (core) is needed".into());
    }
    if options.max_num_seqs == 0 || options.max_waiting == 0 {
        return bad("--max-num-seqs and the waiting bound must be at least 1".into());
    }
    if options.max_lora_rank == 0 {
        return bad("--max-lora-rank must be at least 1".into());
    }
    if tokenizer.vocab_size() != config.vocab {
        return bad(format!(
            "the tokenizer has {} tokens, the model's vocabulary {}",
            tokenizer.vocab_size(),
            config.vocab
        ));
    }
    let mut names: Vec<&str> = options
        .lora_modules
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return bad(format!("--lora-modules names `{}` twice", w[0]));
    }
    if names
        .iter()
        .any(|n| n.is_empty() || *n == served_name(options))
    {
        return bad("--lora-modules: an adapter's name is empty or the base model's".into());
    }
    Ok(())
}

/// Pages of each tier from its size; HBM must hold at least a few blocks.
fn tier_pages(options: &ServeOptions, page_bytes: u64) -> Result<[u32; 3], RealError> {
    let mut pages = [0u32; 3];
    for (i, bytes) in options.tier_bytes.iter().enumerate() {
        pages[i] = u32::try_from(bytes / page_bytes).unwrap_or(u32::MAX);
    }
    if pages[0] < 8 || pages[1] < 2 || pages[2] < 2 {
        return Err(RealError::Config(format!(
            "tiers of {:?} bytes hold {pages:?} pages of {page_bytes} B (one KV block); \
             HBM needs at least 8, host and NVMe at least 2",
            options.tier_bytes
        )));
    }
    Ok(pages)
}

/// The served name: given, or the checkpoint's file stem or folder name.
fn served_name(options: &ServeOptions) -> String {
    options.served_model_name.clone().unwrap_or_else(|| {
        let path: &Path = &options.model;
        let stem = if path.is_dir() {
            path.file_name()
        } else {
            path.file_stem()
        };
        stem.map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned())
    })
}

/// The context limit: asked for, the checkpoint's, and what one request can hold in HBM
/// alone (the engine's `fits_alone`: 90 % of HBM, less the policy's LoRA region or the
/// largest adapter).
fn max_model_len(
    options: &ServeOptions,
    config: &CpuModelConfig,
    hbm_pages: u32,
    adapter_pages: u32,
) -> u32 {
    let capacity = f64::from(hbm_pages) * 0.9;
    let kv_pages = match options.policy.knobs(None).lora_fraction {
        Some(f) => (capacity * (1.0 - f)).floor(),
        None => (capacity - f64::from(adapter_pages)).floor(),
    }
    .max(0.0) as u32;
    let fits = kv_pages.saturating_mul(BLOCK_TOKENS);
    let asked = options.max_model_len.unwrap_or(config.context_len as u32);
    asked.min(config.context_len as u32).min(fits)
}

/// The base model as adapter 0: rank 1 on q, k, v and o, all zeros (its LoRA term adds
/// exact zeros).
fn base_adapter(
    config: &CpuModelConfig,
    name: &str,
    page_bytes: u64,
) -> Result<Arc<SourceAdapter>, RealError> {
    let shape = AdapterShape {
        rank: 1,
        alpha: 1.0,
        targets: LoraTargets::ATTENTION,
        dtype: WeightDtype::F32,
    };
    let adapter = Adapter::from_fn(&config.model_spec(), shape, |_, _, _, _| 0.0).map_err(|e| {
        RealError::Adapter {
            name: name.to_string(),
            source: Box::new(e),
        }
    })?;
    Ok(Arc::new(SourceAdapter::from_adapter(
        config, name, &adapter, page_bytes,
    )?))
}
