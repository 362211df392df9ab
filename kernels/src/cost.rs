//! How long things take on a modelled GPU: prefill, decode, mixed iterations, LoRA overhead and
//! link transfers, as pure functions of a [`ModelSpec`], a [`GpuSpec`] and [`CostParams`].
//!
//! No clock is read; every answer is whole nanoseconds (rounded up). All work is per GPU: under
//! tensor parallelism FLOPs, weight bytes and KV bytes are divided by the TP degree (KV by
//! heads per GPU); collectives (NVLink all-reduce) are not charged.
//!
//! ## Formulas
//!
//! One forward pass (an *iteration*) is bounded by compute or by HBM traffic, whichever is
//! slower (a roofline), plus LoRA work and a fixed per-step overhead:
//!
//! ```text
//! step_ns     = max(compute_ns, memory_ns) + lora_ns + step_overhead_ns
//! compute_ns  = FLOPs / TP / (bf16_dense_flops_per_s × prefill_flops_efficiency)
//! memory_ns   = bytes / (hbm_bandwidth_bytes_per_s × decode_bandwidth_efficiency)
//! FLOPs       = Σ_tokens 2 × matmul_params                          (linear layers)
//!             + Σ_prefill_chunks 4 × L × d_attn × n × (c + n/2)     (causal attention)
//!             + Σ_decode 4 × L × d_attn × c_i                       (one query per sequence)
//! bytes       = weight_bytes_per_gpu + (Σ context read + new tokens written) × KV/token/GPU
//! ```
//!
//! with `L` layers, `d_attn = heads × head_dim`, a chunk of `n` new tokens after `c` cached
//! ones. `matmul_params` leaves out the input embedding table (a lookup). A large prefill is
//! compute-bound (Llama-3-8B, 1,000 tokens on H100: about 26 ms); a decode step is bound by
//! reading the weights once plus the KV of every sequence (Llama-3-8B on H100: about 6 ms).
//!
//! LoRA (Punica BGMV/SGMV, S-LoRA): for the distinct adapters in a batch, the shrink/expand
//! kernels read each adapter's weights once and do `2 × r × Σ(in + out) × L` FLOPs per token of
//! that adapter; they run after the base GEMMs, so their time adds:
//!
//! ```text
//! lora_ns = max(Σ adapter bytes / (HBM bw × decode eff), Σ LoRA FLOPs / (peak × lora eff))
//!         + distinct_adapters × lora_adapter_overhead_ns
//! ```
//!
//! A transfer over a link costs `latency + bytes / bandwidth` (zero bytes cost nothing).

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::gpu::GpuSpec;
use crate::model::{LoraTargets, ModelSpec};

/// Efficiency factors and overheads of the cost model. Every default is an assumption stated
/// here; override them in the `[cost]` table of a configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostParams {
    /// Fraction of the dense bf16 peak that prefill GEMMs reach. Default 0.6: large bf16 GEMMs
    /// on A100/H100 run at 60–70 % of peak, and a whole prefill (norms, attention, sampling
    /// included) somewhat below that.
    pub prefill_flops_efficiency: f64,
    /// Fraction of peak HBM bandwidth a memory-bound step reaches. Default 0.85: streaming
    /// kernels reach 85–90 % of peak on A100/H100.
    pub decode_bandwidth_efficiency: f64,
    /// Fixed cost of one iteration (scheduling, kernel launches, sampling), nanoseconds.
    /// Default 500 µs (assumption for an engine with CUDA graphs).
    pub step_overhead_ns: u64,
    /// Fraction of the bf16 peak the LoRA shrink/expand kernels reach: they are skinny GEMMs
    /// (one dimension is the rank). Default 0.3 (assumption).
    pub lora_flops_efficiency: f64,
    /// Extra cost per distinct adapter in a batch (segment set-up in SGMV), nanoseconds.
    /// Default 5 µs (assumption; set 0 to charge only bytes and FLOPs).
    pub lora_adapter_overhead_ns: u64,
    /// The projections adapters carry weights for. Default: all linear layers (q, k, v, o,
    /// gate, up, down), PEFT's `target_modules="all-linear"`, the common choice for task
    /// adapters today and the size DESIGN quotes (rank 16 on Llama-3-8B ≈ 80 MiB). With
    /// attention only, a hundred adapters of rank 32–64 would fit in a fifth of an 80 GB GPU
    /// and adapter caching would hardly matter.
    pub lora_targets: LoraTargets,
}

impl Default for CostParams {
    fn default() -> Self {
        CostParams {
            prefill_flops_efficiency: 0.6,
            decode_bandwidth_efficiency: 0.85,
            step_overhead_ns: 500_000,
            lora_flops_efficiency: 0.3,
            lora_adapter_overhead_ns: 5_000,
            lora_targets: LoraTargets::ALL_LINEAR,
        }
    }
}

/// A data path between memory tiers; each direction is a separate, full-duplex link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Link {
    /// Pinned host memory → HBM over PCIe.
    H2D,
    /// HBM → pinned host memory over PCIe.
    D2H,
    /// NVMe → host memory.
    NvmeRead,
    /// Host memory → NVMe.
    NvmeWrite,
}

/// A chunk of one request's prefill inside an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PrefillChunk {
    /// Tokens computed in this iteration.
    pub new_tokens: u32,
    /// Tokens already in the KV cache before them (a matched prefix or earlier chunks).
    pub context_tokens_before: u32,
}

/// The tokens one adapter contributes to an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AdapterLoad {
    /// The adapter's rank.
    pub rank: u32,
    /// Tokens of this adapter in the iteration (prefill tokens plus one per decoding sequence).
    pub tokens: u32,
}

/// What one iteration of continuous batching computes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Iteration<'a> {
    /// Prefill chunks (chunked prefill allows several, each part of a request).
    pub prefill: &'a [PrefillChunk],
    /// Sequences generating one token each.
    pub decode_batch: u32,
    /// Sum of the context lengths of the decoding sequences.
    pub decode_context_tokens: u64,
    /// One entry per distinct adapter in the batch (empty: base model only).
    pub adapters: &'a [AdapterLoad],
}

/// The cost model of one model on one GPU (or one TP group of GPUs).
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    model: ModelSpec,
    gpu: GpuSpec,
    params: CostParams,
}

const NS_PER_S: f64 = 1e9;

fn ceil_ns(seconds: f64) -> u64 {
    // Inputs are validated positive and finite; `as` saturates anyway.
    (seconds * NS_PER_S).ceil() as u64
}

impl CostModel {
    /// Builds a cost model after checking every field (see [`crate::config`] for the rules).
    pub fn new(
        model: ModelSpec,
        gpu: GpuSpec,
        params: CostParams,
    ) -> Result<CostModel, ConfigError> {
        crate::config::validate_model(&model)?;
        crate::config::validate_gpu(&gpu)?;
        crate::config::validate_cost(&params)?;
        Ok(CostModel { model, gpu, params })
    }

    /// The model.
    pub fn model(&self) -> &ModelSpec {
        &self.model
    }

    /// The GPU.
    pub fn gpu(&self) -> &GpuSpec {
        &self.gpu
    }

    /// The efficiency parameters.
    pub fn params(&self) -> &CostParams {
        &self.params
    }

    fn tp(&self) -> f64 {
        f64::from(self.model.tensor_parallel.max(1))
    }

    fn attention_width(&self) -> f64 {
        f64::from(self.model.attention_heads) * f64::from(self.model.head_dim)
    }

    /// FLOPs of a prefill chunk on the whole model (all TP ranks together):
    /// `2 × matmul_params × n + 4 × L × d_attn × n × (c + n/2)`.
    pub fn prefill_flops(&self, new_tokens: u32, context_tokens_before: u32) -> f64 {
        let n = f64::from(new_tokens);
        let c = f64::from(context_tokens_before);
        let linear = 2.0 * self.model.matmul_params() as f64 * n;
        let attention =
            4.0 * f64::from(self.model.layers) * self.attention_width() * n * (c + n / 2.0);
        linear + attention
    }

    /// FLOPs of one decode step on the whole model: `2 × matmul_params × batch +
    /// 4 × L × d_attn × total_context`.
    pub fn decode_flops(&self, batch: u32, total_context_tokens: u64) -> f64 {
        let linear = 2.0 * self.model.matmul_params() as f64 * f64::from(batch);
        let attention = 4.0
            * f64::from(self.model.layers)
            * self.attention_width()
            * total_context_tokens as f64;
        linear + attention
    }

    fn compute_s(&self, flops: f64) -> f64 {
        flops
            / self.tp()
            / (self.gpu.bf16_dense_flops_per_s as f64 * self.params.prefill_flops_efficiency)
    }

    fn hbm_s(&self, bytes: f64) -> f64 {
        bytes
            / (self.gpu.hbm_bandwidth_bytes_per_s as f64 * self.params.decode_bandwidth_efficiency)
    }

    /// Time of one iteration: prefill chunks and a decode batch in one forward pass, plus LoRA
    /// work and the step overhead. An iteration with nothing in it costs nothing.
    pub fn iteration_ns(&self, iteration: &Iteration<'_>) -> u64 {
        if iteration.prefill.iter().all(|c| c.new_tokens == 0) && iteration.decode_batch == 0 {
            return 0;
        }
        let mut flops = self.decode_flops(iteration.decode_batch, iteration.decode_context_tokens);
        let mut kv_tokens =
            iteration.decode_context_tokens as f64 + f64::from(iteration.decode_batch);
        for chunk in iteration.prefill {
            flops += self.prefill_flops(chunk.new_tokens, chunk.context_tokens_before);
            kv_tokens += f64::from(chunk.context_tokens_before) + f64::from(chunk.new_tokens);
        }
        let bytes = self.model.weight_bytes_per_gpu() as f64
            + kv_tokens * self.model.kv_bytes_per_token_per_gpu() as f64;
        let base_s = self.compute_s(flops).max(self.hbm_s(bytes));
        // Saturating: huge but valid configurations (a whole-second overhead, a tiny GPU) must
        // not overflow.
        ceil_ns(base_s)
            .saturating_add(self.lora_ns(iteration.adapters))
            .saturating_add(self.params.step_overhead_ns)
    }

    /// Time of an iteration that only prefills `new_tokens` after `context_tokens_before`
    /// cached tokens, base model only: the FLOPs at `prefill_flops_efficiency` of the bf16
    /// peak, but never less than one read of the weights (the roofline), plus the step
    /// overhead. Also the cost of recomputing lost KV.
    pub fn prefill_ns(&self, new_tokens: u32, context_tokens_before: u32) -> u64 {
        let chunk = [PrefillChunk {
            new_tokens,
            context_tokens_before,
        }];
        self.iteration_ns(&Iteration {
            prefill: &chunk,
            ..Iteration::default()
        })
    }

    /// Time of an iteration that only decodes: `batch` sequences whose contexts sum to
    /// `total_context_tokens`, base model only.
    pub fn decode_step_ns(&self, batch: u32, total_context_tokens: u64) -> u64 {
        self.iteration_ns(&Iteration {
            decode_batch: batch,
            decode_context_tokens: total_context_tokens,
            ..Iteration::default()
        })
    }

    /// Extra time the LoRA kernels add to an iteration (see the module doc).
    pub fn lora_ns(&self, adapters: &[AdapterLoad]) -> u64 {
        if adapters.is_empty() {
            return 0;
        }
        let targets = self.params.lora_targets;
        let bytes_per_rank = self.model.lora_bytes_per_rank_per_gpu(targets) as f64;
        let dtype = f64::from(self.model.dtype_bytes.max(1));
        // Elements of one rank on the whole model = its MACs per token.
        let macs_per_rank_token = self.model.lora_bytes_per_rank(targets) as f64 / dtype;
        let (mut bytes, mut flops) = (0.0, 0.0);
        for a in adapters {
            bytes += f64::from(a.rank) * bytes_per_rank;
            flops += 2.0 * f64::from(a.rank) * f64::from(a.tokens) * macs_per_rank_token;
        }
        let compute_s = flops
            / self.tp()
            / (self.gpu.bf16_dense_flops_per_s as f64 * self.params.lora_flops_efficiency);
        let overhead = (adapters.len() as u64).saturating_mul(self.params.lora_adapter_overhead_ns);
        ceil_ns(self.hbm_s(bytes).max(compute_s)).saturating_add(overhead)
    }

    /// Bandwidth of a link, bytes per second.
    pub fn link_bandwidth_bytes_per_s(&self, link: Link) -> u64 {
        match link {
            Link::H2D => self.gpu.h2d_bandwidth_bytes_per_s,
            Link::D2H => self.gpu.d2h_bandwidth_bytes_per_s,
            Link::NvmeRead => self.gpu.nvme_read_bandwidth_bytes_per_s,
            Link::NvmeWrite => self.gpu.nvme_write_bandwidth_bytes_per_s,
        }
    }

    /// Fixed cost of one transfer on a link, nanoseconds.
    pub fn link_latency_ns(&self, link: Link) -> u64 {
        match link {
            Link::H2D => self.gpu.h2d_latency_ns,
            Link::D2H => self.gpu.d2h_latency_ns,
            Link::NvmeRead => self.gpu.nvme_read_latency_ns,
            Link::NvmeWrite => self.gpu.nvme_write_latency_ns,
        }
    }

    /// Time to move `bytes` over `link` as one transfer: `latency + ceil(bytes / bandwidth)`;
    /// zero bytes cost nothing.
    pub fn transfer_ns(&self, link: Link, bytes: u64) -> u64 {
        if bytes == 0 {
            return 0;
        }
        let bandwidth = u128::from(self.link_bandwidth_bytes_per_s(link).max(1));
        let wire_ns = (u128::from(bytes) * 1_000_000_000).div_ceil(bandwidth);
        self.link_latency_ns(link)
            .saturating_add(u64::try_from(wire_ns).unwrap_or(u64::MAX))
    }
}
