//! Adapters as the runtime holds them: PEFT adapters of the CPU model's shapes, the bytes of
//! their pages (what moves between tiers), and the weights a verifier recomputes with.

use std::path::Path;
use std::sync::Arc;

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

    /// The same weights as f32 on all four attention projections (zeros where this adapter
    /// has none), paged: the layout the CUDA kernels read from HBM pages
    /// ([`fastlibra_kernels::cuda::lora_stream`]). An adapter already in that form is
    /// returned as it is.
    pub fn for_cuda(
        self: &Arc<Self>,
        config: &CpuModelConfig,
        page_bytes: u64,
    ) -> Result<Arc<SourceAdapter>, RealError> {
        let shape = self.paged.layout.shape;
        if shape.dtype == WeightDtype::F32 && shape.targets == LoraTargets::ATTENTION {
            return Ok(self.clone());
        }
        if let Some(t) = shape
            .targets
            .iter()
            .find(|t| !LoraTargets::ATTENTION.contains(*t))
        {
            return Err(RealError::Adapter {
                name: self.name.clone(),
                source: Box::new(PeftError::Paging(format!(
                    "the CUDA kernels adapt q, k, v and o only; the adapter also targets {}",
                    t.name()
                ))),
            });
        }
        let original = self
            .paged
            .to_adapter()
            .map_err(|source| adapter_error(&self.name, source))?;
        let f32_shape = AdapterShape {
            dtype: WeightDtype::F32,
            targets: LoraTargets::ATTENTION,
            ..shape
        };
        let adapter = Adapter::from_fn(&config.model_spec(), f32_shape, |layer, target, m, i| {
            original
                .pair(layer as usize, target)
                .map_or(0.0, |p| match m {
                    Matrix::A => p.a()[i],
                    Matrix::B => p.b()[i],
                })
        })
        .map_err(|source| adapter_error(&self.name, source))?;
        SourceAdapter::from_adapter(config, &self.name, &adapter, page_bytes).map(Arc::new)
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

#[cfg(test)]
mod tests {
    use fastlibra_kernels::LoraTarget;
    use fastlibra_kernels::cuda::lora_stream;

    use super::*;

    fn config() -> CpuModelConfig {
        CpuModelConfig::tiny()
    }

    /// The bytes the CUDA kernels read from an adapter's HBM pages are the bytes the runtime
    /// pages and moves between tiers.
    fn assert_pages_are_the_kernel_stream(config: &CpuModelConfig, source: &SourceAdapter) {
        let page_floats = config.page_floats(16);
        let (_, stream) = lora_stream(config, &source.lora, page_floats);
        let pages: Vec<u8> = source.paged.pages.concat();
        let stream_bytes: Vec<u8> = stream.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(pages.len(), stream_bytes.len(), "page count");
        assert!(
            pages == stream_bytes,
            "page bytes differ from the kernel stream"
        );
    }

    #[test]
    fn f32_attention_adapters_are_paged_as_the_cuda_kernels_read_them() {
        let c = config();
        let page_bytes = (c.page_floats(16) * 4) as u64;
        let a = Arc::new(SourceAdapter::random(&c, "a", 8, 3, page_bytes).unwrap());
        assert_pages_are_the_kernel_stream(&c, &a);
        let same = a.for_cuda(&c, page_bytes).unwrap();
        assert!(Arc::ptr_eq(&a, &same), "already in the kernels' layout");
    }

    #[test]
    fn bf16_adapters_on_some_targets_are_repaged_for_cuda() {
        let c = config();
        let spec = c.model_spec();
        let page_bytes = (c.page_floats(16) * 4) as u64;
        let shape = AdapterShape {
            rank: 4,
            alpha: 8.0,
            targets: LoraTargets::NONE.with(LoraTarget::Q).with(LoraTarget::V),
            dtype: WeightDtype::BF16,
        };
        let mut n = 0u32;
        let adapter = Adapter::from_fn(&spec, shape, |_, _, _, _| {
            n += 1;
            (n % 17) as f32 / 64.0 - 0.125
        })
        .unwrap();
        let source = Arc::new(SourceAdapter::from_adapter(&c, "qv", &adapter, page_bytes).unwrap());
        let cuda = source.for_cuda(&c, page_bytes).unwrap();
        assert_pages_are_the_kernel_stream(&c, &cuda);
        // Same weights: the CPU view of both is identical, a projection the source leaves
        // out being zeros in the kernels' stream.
        assert_eq!(source.lora.scale(), cuda.lora.scale());
        assert_eq!(source.lora.rank(), cuda.lora.rank());
        for layer in 0..c.layers {
            for t in [LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O] {
                let b = cuda.lora.pair(layer, t).expect("all four in the stream");
                match source.lora.pair(layer, t) {
                    Some(a) => assert_eq!(a, b),
                    None => assert!(b.a.iter().chain(&b.b).all(|v| *v == 0.0)),
                }
            }
        }
    }
}
