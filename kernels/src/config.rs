//! Hardware configuration: presets by name, overridden field by field from a TOML file.
//!
//! ```toml
//! [model]
//! preset = "llama3-8b"        # optional: start from another preset than the command line's
//! tensor_parallel = 2         # any ModelSpec field
//!
//! [gpu]
//! hbm_bandwidth_bytes_per_s = 3.0e12   # integers or floats; any GpuSpec field
//! host_memory_bytes = 0                # no host tier
//!
//! [cost]
//! prefill_flops_efficiency = 0.5       # any CostParams field
//! lora_targets = ["q", "k", "v", "o", "gate", "up", "down"]
//! ```
//!
//! A missing table or key keeps the preset's value. Changing the model's shape without giving
//! `params` recomputes the parameter count from the shape, and changing `hidden_size` or
//! `attention_heads` without giving `head_dim` recomputes it as their quotient. An unknown key is an error (a typo must
//! not silently fall back to a default), and so is a value that makes no sense: a zero or
//! negative size, count or bandwidth, an efficiency outside (0, 1], a non-integer count. Each
//! such error names the field as `table.key`.

use std::path::Path;

use serde::Deserialize;

use crate::cost::{CostModel, CostParams};
use crate::gpu::GpuSpec;
use crate::model::{LoraTarget, LoraTargets, ModelSpec};

/// Everything that can be wrong with a hardware configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// No model preset has this name.
    #[error("unknown model preset `{name}`; valid names: {valid}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// No GPU preset has this name.
    #[error("unknown GPU preset `{name}`; valid names: {valid}")]
    UnknownGpu {
        /// The name asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// The file is not valid TOML for this schema (syntax, an unknown key, a wrong type).
    #[error("invalid hardware configuration: {message}")]
    Parse {
        /// The TOML parser's message, which names the line and key.
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read hardware configuration {path}: {message}")]
    Read {
        /// The path given.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// A field has a value that makes no sense.
    #[error("`{field}` must be {requirement}, got {value}")]
    InvalidField {
        /// The field, as `table.key`.
        field: &'static str,
        /// What it must be.
        requirement: &'static str,
        /// What it was.
        value: String,
    },
    /// A LoRA target name is not one of q, k, v, o, gate, up, down.
    #[error("unknown LoRA target `{name}` in `cost.lora_targets`; valid names: {valid}")]
    UnknownLoraTarget {
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
}

/// A model, a GPU and the cost parameters: everything the simulator's device model needs.
#[derive(Clone, Debug, PartialEq)]
pub struct HardwareConfig {
    /// The base model.
    pub model: ModelSpec,
    /// The GPU (per TP rank).
    pub gpu: GpuSpec,
    /// Efficiencies and overheads.
    pub cost: CostParams,
}

impl HardwareConfig {
    /// The presets with these CLI names and default cost parameters.
    pub fn from_presets(model: &str, gpu: &str) -> Result<HardwareConfig, ConfigError> {
        Ok(HardwareConfig {
            model: ModelSpec::preset(model)?,
            gpu: GpuSpec::preset(gpu)?,
            cost: CostParams::default(),
        })
    }

    /// Applies the overrides in TOML text (see the module doc) and checks the result.
    pub fn with_toml(self, text: &str) -> Result<HardwareConfig, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            message: e.to_string(),
        })?;
        let mut config = self;
        if let Some(m) = file.model {
            config.model = m.apply(config.model)?;
        }
        if let Some(g) = file.gpu {
            config.gpu = g.apply(config.gpu)?;
        }
        if let Some(c) = file.cost {
            config.cost = c.apply(config.cost)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file and applies it (see [`HardwareConfig::with_toml`]).
    pub fn with_toml_file(self, path: &Path) -> Result<HardwareConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.with_toml(&text)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_model(&self.model)?;
        validate_gpu(&self.gpu)?;
        validate_cost(&self.cost)
    }

    /// The cost model of this configuration.
    pub fn cost_model(&self) -> Result<CostModel, ConfigError> {
        CostModel::new(self.model.clone(), self.gpu.clone(), self.cost.clone())
    }
}

fn invalid(field: &'static str, requirement: &'static str, value: impl ToString) -> ConfigError {
    ConfigError::InvalidField {
        field,
        requirement,
        value: value.to_string(),
    }
}

fn positive(field: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(field, "positive", value));
    }
    Ok(())
}

fn fraction(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if !(value > 0.0 && value <= 1.0) {
        return Err(invalid(field, "in (0, 1]", value));
    }
    Ok(())
}

/// Checks a model: every size and count positive, the derived byte sizes fitting in 64 bits,
/// KV heads dividing the attention heads, and the tensor-parallel degree dividing the
/// attention heads (Megatron's head split).
pub fn validate_model(m: &ModelSpec) -> Result<(), ConfigError> {
    positive("model.layers", m.layers.into())?;
    positive("model.hidden_size", m.hidden_size.into())?;
    positive("model.attention_heads", m.attention_heads.into())?;
    positive("model.kv_heads", m.kv_heads.into())?;
    positive("model.head_dim", m.head_dim.into())?;
    positive("model.intermediate_size", m.intermediate_size.into())?;
    positive("model.vocab_size", m.vocab_size.into())?;
    positive("model.dtype_bytes", m.dtype_bytes.into())?;
    positive("model.params", m.params)?;
    positive("model.tensor_parallel", m.tensor_parallel.into())?;
    if !sizes_fit(m) {
        return Err(too_large());
    }
    if m.attention_heads.checked_rem(m.kv_heads) != Some(0) {
        return Err(invalid(
            "model.kv_heads",
            "a divisor of model.attention_heads",
            m.kv_heads,
        ));
    }
    if m.attention_heads.checked_rem(m.tensor_parallel) != Some(0) {
        return Err(invalid(
            "model.tensor_parallel",
            "a divisor of model.attention_heads",
            m.tensor_parallel,
        ));
    }
    Ok(())
}

fn too_large() -> ConfigError {
    invalid(
        "model",
        "a shape whose parameter count and byte sizes fit in 64 bits",
        "an overflowing shape",
    )
}

/// [`ModelSpec::params_from_shape`] with checked arithmetic: `None` on overflow.
fn checked_params_from_shape(m: &ModelSpec) -> Option<u64> {
    let h = u64::from(m.hidden_size);
    let mut per_layer = h.checked_mul(2)?;
    for t in LoraTarget::ALL {
        let (input, output) = m.projection_dims(t);
        per_layer = per_layer.checked_add(input.checked_mul(output)?)?;
    }
    let embeddings = u64::from(m.vocab_size).checked_mul(h)?.checked_mul(2)?;
    embeddings
        .checked_add(u64::from(m.layers).checked_mul(per_layer)?)?
        .checked_add(h)
}

/// Whether every size the cost model derives from `m` fits in a `u64`: the weight bytes, the
/// KV bytes per token and the LoRA bytes per rank on all linear layers (the largest target
/// set; per-GPU sizes are smaller).
fn sizes_fit(m: &ModelSpec) -> bool {
    let dtype = u64::from(m.dtype_bytes);
    let kv = [m.layers, m.kv_heads, m.head_dim]
        .into_iter()
        .try_fold(2 * dtype, |acc, v| acc.checked_mul(u64::from(v)));
    let lora_per_layer = LoraTarget::ALL.into_iter().try_fold(0u64, |acc, t| {
        let (input, output) = m.projection_dims(t);
        acc.checked_add(input.checked_add(output)?)
    });
    let lora = lora_per_layer
        .and_then(|l| l.checked_mul(u64::from(m.layers)))
        .and_then(|l| l.checked_mul(dtype));
    kv.is_some() && lora.is_some() && m.params.checked_mul(dtype).is_some()
}

/// Checks a GPU: capacity, bandwidths and FLOP rate positive (latencies may be zero, and
/// `host_memory_bytes` may be zero to disable the host tier).
pub fn validate_gpu(g: &GpuSpec) -> Result<(), ConfigError> {
    positive("gpu.hbm_bytes", g.hbm_bytes)?;
    positive("gpu.hbm_bandwidth_bytes_per_s", g.hbm_bandwidth_bytes_per_s)?;
    positive("gpu.bf16_dense_flops_per_s", g.bf16_dense_flops_per_s)?;
    positive("gpu.h2d_bandwidth_bytes_per_s", g.h2d_bandwidth_bytes_per_s)?;
    positive("gpu.d2h_bandwidth_bytes_per_s", g.d2h_bandwidth_bytes_per_s)?;
    positive(
        "gpu.nvme_read_bandwidth_bytes_per_s",
        g.nvme_read_bandwidth_bytes_per_s,
    )?;
    positive(
        "gpu.nvme_write_bandwidth_bytes_per_s",
        g.nvme_write_bandwidth_bytes_per_s,
    )
}

/// Checks cost parameters: efficiencies in (0, 1] (overheads may be zero).
pub fn validate_cost(c: &CostParams) -> Result<(), ConfigError> {
    fraction("cost.prefill_flops_efficiency", c.prefill_flops_efficiency)?;
    fraction(
        "cost.decode_bandwidth_efficiency",
        c.decode_bandwidth_efficiency,
    )?;
    fraction("cost.lora_flops_efficiency", c.lora_flops_efficiency)
}

/// A number as TOML writes it: `3350000000000` or `3.35e12`.
#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// A non-negative whole number (floats must be integral, e.g. `80e9`).
    fn to_u64(self, field: &'static str) -> Result<u64, ConfigError> {
        let requirement = "a non-negative whole number";
        match self {
            Num::Int(i) => u64::try_from(i).map_err(|_| invalid(field, requirement, i)),
            Num::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(f as u64),
            Num::Float(f) => Err(invalid(field, requirement, f)),
        }
    }

    fn to_u32(self, field: &'static str) -> Result<u32, ConfigError> {
        let value = self.to_u64(field)?;
        u32::try_from(value).map_err(|_| invalid(field, "at most 4294967295", value))
    }
}

/// Sets `$target.$field` from `$over.$field` when present, converting with `$conv`.
macro_rules! set {
    ($over:ident, $target:ident, $table:literal, $conv:ident, $($field:ident),+) => {
        $(
            if let Some(v) = $over.$field {
                $target.$field = v.$conv(concat!($table, ".", stringify!($field)))?;
            }
        )+
    };
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    model: Option<ModelOverride>,
    gpu: Option<GpuOverride>,
    cost: Option<CostOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelOverride {
    preset: Option<String>,
    name: Option<String>,
    layers: Option<Num>,
    hidden_size: Option<Num>,
    attention_heads: Option<Num>,
    kv_heads: Option<Num>,
    head_dim: Option<Num>,
    intermediate_size: Option<Num>,
    vocab_size: Option<Num>,
    dtype_bytes: Option<Num>,
    params: Option<Num>,
    tensor_parallel: Option<Num>,
}

impl ModelOverride {
    fn apply(self, base: ModelSpec) -> Result<ModelSpec, ConfigError> {
        let mut m = match &self.preset {
            Some(name) => ModelSpec::preset(name)?,
            None => base,
        };
        if let Some(name) = self.name {
            m.name = name;
        }
        let width_changed = self.hidden_size.is_some() || self.attention_heads.is_some();
        let shape_changed = width_changed
            || [self.layers, self.kv_heads, self.head_dim]
                .iter()
                .chain([&self.intermediate_size, &self.vocab_size])
                .any(Option::is_some);
        set!(
            self,
            m,
            "model",
            to_u32,
            layers,
            hidden_size,
            attention_heads
        );
        set!(
            self,
            m,
            "model",
            to_u32,
            kv_heads,
            head_dim,
            intermediate_size
        );
        set!(
            self,
            m,
            "model",
            to_u32,
            vocab_size,
            dtype_bytes,
            tensor_parallel
        );
        set!(self, m, "model", to_u64, params);
        if width_changed && self.head_dim.is_none() && m.attention_heads > 0 {
            m.head_dim = m.hidden_size / m.attention_heads;
        }
        if shape_changed && self.params.is_none() {
            m.params = checked_params_from_shape(&m).ok_or_else(too_large)?;
        }
        Ok(m)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuOverride {
    preset: Option<String>,
    name: Option<String>,
    hbm_bytes: Option<Num>,
    hbm_bandwidth_bytes_per_s: Option<Num>,
    bf16_dense_flops_per_s: Option<Num>,
    h2d_bandwidth_bytes_per_s: Option<Num>,
    h2d_latency_ns: Option<Num>,
    d2h_bandwidth_bytes_per_s: Option<Num>,
    d2h_latency_ns: Option<Num>,
    nvme_read_bandwidth_bytes_per_s: Option<Num>,
    nvme_read_latency_ns: Option<Num>,
    nvme_write_bandwidth_bytes_per_s: Option<Num>,
    nvme_write_latency_ns: Option<Num>,
    host_memory_bytes: Option<Num>,
    nvme_bytes: Option<Num>,
}

impl GpuOverride {
    fn apply(self, base: GpuSpec) -> Result<GpuSpec, ConfigError> {
        let mut g = match &self.preset {
            Some(name) => GpuSpec::preset(name)?,
            None => base,
        };
        if let Some(name) = self.name {
            g.name = name;
        }
        set!(self, g, "gpu", to_u64, hbm_bytes, hbm_bandwidth_bytes_per_s);
        set!(self, g, "gpu", to_u64, bf16_dense_flops_per_s);
        set!(
            self,
            g,
            "gpu",
            to_u64,
            h2d_bandwidth_bytes_per_s,
            h2d_latency_ns
        );
        set!(
            self,
            g,
            "gpu",
            to_u64,
            d2h_bandwidth_bytes_per_s,
            d2h_latency_ns
        );
        set!(
            self,
            g,
            "gpu",
            to_u64,
            nvme_read_bandwidth_bytes_per_s,
            nvme_read_latency_ns,
            nvme_write_bandwidth_bytes_per_s,
            nvme_write_latency_ns,
            host_memory_bytes,
            nvme_bytes
        );
        Ok(g)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostOverride {
    prefill_flops_efficiency: Option<Num>,
    decode_bandwidth_efficiency: Option<Num>,
    step_overhead_ns: Option<Num>,
    lora_flops_efficiency: Option<Num>,
    lora_adapter_overhead_ns: Option<Num>,
    lora_targets: Option<Vec<String>>,
}

impl CostOverride {
    fn apply(self, base: CostParams) -> Result<CostParams, ConfigError> {
        let mut c = base;
        let float = |v: Option<Num>, old: f64| v.map_or(old, Num::as_f64);
        c.prefill_flops_efficiency =
            float(self.prefill_flops_efficiency, c.prefill_flops_efficiency);
        c.decode_bandwidth_efficiency = float(
            self.decode_bandwidth_efficiency,
            c.decode_bandwidth_efficiency,
        );
        c.lora_flops_efficiency = float(self.lora_flops_efficiency, c.lora_flops_efficiency);
        set!(
            self,
            c,
            "cost",
            to_u64,
            step_overhead_ns,
            lora_adapter_overhead_ns
        );
        if let Some(names) = self.lora_targets {
            c.lora_targets =
                LoraTargets::from_names(&names).map_err(|name| ConfigError::UnknownLoraTarget {
                    name,
                    valid: LoraTarget::ALL.map(LoraTarget::name).join(", "),
                })?;
            if c.lora_targets.is_empty() {
                return Err(invalid("cost.lora_targets", "non-empty", "[]"));
            }
        }
        Ok(c)
    }
}
