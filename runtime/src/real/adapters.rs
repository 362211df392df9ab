//! Adapters as the runtime holds them: PEFT adapters of the CPU model's shapes, the bytes of
//! their pages (what moves between tiers), and the weights a verifier recomputes with.

use std::path::Path;

use fastlibra_kernels::cpu::{CpuLora, CpuModelConfig};
use fastlibra_kernels::model::LoraTargets;
use fastlibra_kernels::peft::{
    Adapter, AdapterShape, Matrix, PagedAdapter, PeftError, WeightDtype, load_peft,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::RealError;
use crate::engine::AdapterInfo;

/// One adapter version: its pages and its weights.
#[derive(Debug)]
pub struct SourceAdapter {
    /// Name (a workload's adapter name, or the folder it was loaded from).
    pub name: String,
    /// The pages written into the host or NVMe tier at registration.
    pub paged: PagedAdapter,
    /// The same weights, for recomputing from scratch (`--verify`).
    pub lora: CpuLora,
}

impl SourceAdapter {
    /// Random weights of real shapes (q, k, v, o of the CPU model, f32, `alpha = rank`):
    /// `A` uniform with variance `1/in`, `B` with variance `1/(4·rank)` (PEFT initialises `B`
    /// to zero, which would make every adapter the identity).
    pub fn random(
        config: &CpuModelConfig,
        name: &str,
        rank: u32,
        seed: u64,
        page_bytes: u64,
    ) -> Result<SourceAdapter, RealError> {
        let spec = config.model_spec();
        let shape = AdapterShape {
            rank,
            alpha: rank as f32,
            targets: LoraTargets::ATTENTION,
            dtype: WeightDtype::F32,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let adapter = Adapter::from_fn(&spec, shape, |_, target, m, _| {
            let (input, _) = spec.projection_dims(target);
            let var = match m {
                Matrix::A => 1.0 / input as f64,
                Matrix::B => 1.0 / (4.0 * f64::from(rank)),
            };
            let half_width = (3.0 * var).sqrt();
            rng.random_range(-half_width..half_width) as f32
        })
        .map_err(|source| adapter_error(name, source))?;
        SourceAdapter::from_adapter(config, name, &adapter, page_bytes)
    }

    /// Loads a PEFT folder (`adapter_config.json` + `adapter_model.safetensors`) and checks it
    /// against the CPU model, with a rank of at most `max_rank`.
    pub fn load(
        config: &CpuModelConfig,
        dir: &Path,
        max_rank: u32,
        page_bytes: u64,
    ) -> Result<SourceAdapter, RealError> {
        let name = dir.display().to_string();
        let adapter =
            load_peft(dir, &config.model_spec()).map_err(|source| adapter_error(&name, source))?;
        if adapter.rank() > max_rank {
            return Err(RealError::Adapter {
                name,
                source: Box::new(PeftError::Paging(format!(
                    "rank {} is over the configured maximum {max_rank}",
                    adapter.rank()
                ))),
            });
        }
        SourceAdapter::from_adapter(config, &name, &adapter, page_bytes)
    }

    /// Pages `adapter` and converts it for the CPU model.
    pub fn from_adapter(
        config: &CpuModelConfig,
        name: &str,
        adapter: &Adapter,
        page_bytes: u64,
    ) -> Result<SourceAdapter, RealError> {
        let paged = adapter
            .paged(page_bytes)
            .map_err(|source| adapter_error(name, source))?;
        let lora = CpuLora::from_adapter(config, adapter).map_err(|e| RealError::Adapter {
            name: name.to_string(),
            source: Box::new(PeftError::Paging(e.to_string())),
        })?;
        Ok(SourceAdapter {
            name: name.to_string(),
            paged,
            lora,
        })
    }

    /// What the engine needs to know: rank and pages.
    pub fn info(&self) -> AdapterInfo {
        AdapterInfo {
            rank: self.paged.layout.shape.rank,
            pages: self.paged.pages.len() as u32,
        }
    }
}

fn adapter_error(name: &str, source: PeftError) -> RealError {
    RealError::Adapter {
        name: name.to_string(),
        source: Box::new(source),
    }
}
