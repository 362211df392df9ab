//! A [`CpuModel`]'s weights on the device (the synthetic model's or a real checkpoint's), and
//! adapters loaded into pool pages.

use cudarc::driver::CudaSlice;

use super::device::{CudaDevice, Kernels};
use super::error::{CudaError, Result, driver, invalid};
use super::lora_pages::{LoraStreamLayout, lora_stream};
use super::pool::DevicePagePool;
use crate::cpu::{CpuLora, CpuModel, CpuModelConfig};
use crate::model::LoraTargets;

/// How the GEMM weights (q, k, v, o, gate, up, down, LM head) are stored on the device. The
/// embeddings, the norms, the adapters, the KV pages and every activation stay fp32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum WeightPrecision {
    /// fp32: the same numbers as the CPU reference.
    #[default]
    F32,
    /// bf16 (rounded to nearest even), widened to fp32 inside the GEMM: half the weight
    /// bytes read per step, within 1e-2 of the fp32 reference.
    Bf16,
}

/// A GEMM weight matrix on the device, row-major `input × output`.
pub(crate) enum DeviceWeight {
    F32(CudaSlice<f32>),
    /// bf16 bit patterns.
    Bf16(CudaSlice<u16>),
}

/// One decoder layer's weights on the device (row-major `input × output`, as on the CPU).
pub(crate) struct DeviceLayer {
    pub attn_norm: CudaSlice<f32>,
    /// q, k, v, o.
    pub attn: [DeviceWeight; 4],
    pub ffn_norm: CudaSlice<f32>,
    pub gate: DeviceWeight,
    pub up: DeviceWeight,
    pub down: DeviceWeight,
}

/// A [`CpuModel`] on a GPU, the synthetic one or a real checkpoint's
/// ([`CpuModel::from_checkpoint`]): the same weights, the same arithmetic in fp32, KV in pages
/// of a [`DevicePagePool`] laid out like a [`KvArena`](crate::cpu::KvArena), adapters in
/// pages of the same pool. Any shape [`check_supported`](super::check_supported) accepts.
pub struct CudaModel {
    pub(crate) config: CpuModelConfig,
    pub(crate) kernels: Kernels,
    pub(crate) embed: CudaSlice<f32>,
    pub(crate) layers: Vec<DeviceLayer>,
    pub(crate) final_norm: CudaSlice<f32>,
    pub(crate) lm_head: DeviceWeight,
    pub(crate) precision: WeightPrecision,
    /// Fill every scratch and output buffer with NaN before each pass (checked runs).
    pub poison: bool,
}

/// An adapter resident in pool pages: what a [`CudaSeq`](super::CudaSeq) names.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceLora {
    /// Pool pages holding the adapter's stream, in stream order.
    pub pages: Vec<u32>,
    /// Where each factor lies in a rank slice.
    pub layout: LoraStreamLayout,
    /// `lora_alpha / r`.
    pub scale: f32,
}

impl CudaModel {
    /// Uploads `cpu`'s weights in fp32 and compiles the kernels for its head width.
    pub fn from_cpu(dev: &CudaDevice, cpu: &CpuModel) -> Result<Self> {
        Self::from_cpu_with(dev, cpu, WeightPrecision::F32)
    }

    /// Uploads `cpu`'s weights with the GEMM weights in `precision`, and compiles the kernels
    /// for its head width. A shape the kernels cannot run is [`CudaError::Unsupported`],
    /// before anything is uploaded.
    pub fn from_cpu_with(
        dev: &CudaDevice,
        cpu: &CpuModel,
        precision: WeightPrecision,
    ) -> Result<Self> {
        let c = cpu.config().clone();
        super::check_supported(&c)?;
        let kernels = dev.load_kernels(c.head_dim)?;
        let up = |v: &[f32]| dev.compute.clone_htod(v).map_err(driver("weight upload"));
        let weight = |v: &[f32]| -> Result<DeviceWeight> {
            Ok(match precision {
                WeightPrecision::F32 => DeviceWeight::F32(up(v)?),
                WeightPrecision::Bf16 => DeviceWeight::Bf16(
                    dev.compute
                        .clone_htod(&bf16_bits(v))
                        .map_err(driver("weight upload"))?,
                ),
            })
        };
        let layers = cpu
            .layers
            .iter()
            .map(|w| {
                Ok(DeviceLayer {
                    attn_norm: up(&w.attn_norm)?,
                    attn: [
                        weight(&w.attn[0].to_input_major())?,
                        weight(&w.attn[1].to_input_major())?,
                        weight(&w.attn[2].to_input_major())?,
                        weight(&w.attn[3].to_input_major())?,
                    ],
                    ffn_norm: up(&w.ffn_norm)?,
                    gate: weight(&w.gate.to_input_major())?,
                    up: weight(&w.up.to_input_major())?,
                    down: weight(&w.down.to_input_major())?,
                })
            })
            .collect::<Result<_>>()?;
        let model = CudaModel {
            // Row-major `vocab × hidden`, gathered by token; a tied LM head is uploaded again
            // below in the GEMM's `hidden × vocab` layout.
            embed: up(cpu.embed.as_slice())?,
            final_norm: up(&cpu.final_norm)?,
            lm_head: weight(&cpu.lm_head.to_input_major())?,
            layers,
            kernels,
            config: c,
            precision,
            poison: false,
        };
        dev.compute.synchronize().map_err(driver("weight upload"))?;
        Ok(model)
    }

    /// The model's shape.
    pub fn config(&self) -> &CpuModelConfig {
        &self.config
    }

    /// How its GEMM weights are stored.
    pub fn precision(&self) -> WeightPrecision {
        self.precision
    }

    /// Pool pages of `page_floats` an adapter of rank `rank` takes.
    pub fn lora_pages(&self, rank: usize, page_floats: usize) -> usize {
        LoraStreamLayout::new(&self.config, rank).pages(page_floats)
    }

    /// Writes `lora` into pool pages `pages` (as many as [`CudaModel::lora_pages`] says) and
    /// returns its handle.
    pub fn load_lora(
        &self,
        dev: &CudaDevice,
        pool: &mut DevicePagePool,
        lora: &CpuLora,
        pages: &[u32],
    ) -> Result<DeviceLora> {
        if let Some(t) = lora
            .targets()
            .iter()
            .find(|t| !LoraTargets::ATTENTION.contains(*t))
        {
            return Err(CudaError::Unsupported {
                what: format!(
                    "LoRA on {}: the kernels adapt q, k, v and o only (the CPU backend adapts all seven projections)",
                    t.name()
                ),
            });
        }
        let pf = pool.page_floats();
        let (layout, stream) = lora_stream(&self.config, lora, pf);
        if pages.len() != layout.pages(pf) {
            return Err(invalid(format!(
                "adapter needs {} pages, {} given",
                layout.pages(pf),
                pages.len()
            )));
        }
        for (page, chunk) in pages.iter().zip(stream.chunks(pf)) {
            pool.write_pages(dev, *page, chunk)?;
        }
        Ok(DeviceLora {
            pages: pages.to_vec(),
            layout,
            scale: lora.scale(),
        })
    }
}

/// `v` rounded to bf16 (nearest, ties to even; NaN stays NaN), as bit patterns.
pub(crate) fn bf16_bits(v: &[f32]) -> Vec<u16> {
    v.iter()
        .map(|&x| half::bf16::from_f32(x).to_bits())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_bits_round_to_nearest_and_widen_back_by_a_shift() {
        let v = [1.0f32, -2.5, 1.0 + 1.0 / 256.0, 3.0e-3, f32::NAN];
        let bits = bf16_bits(&v);
        // What the kernel does to widen: the bits become the top half of an fp32.
        let back: Vec<f32> = bits
            .iter()
            .map(|&b| f32::from_bits(u32::from(b) << 16))
            .collect();
        assert_eq!(back[0], 1.0);
        assert_eq!(back[1], -2.5);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to even (1.0).
        assert_eq!(back[2], 1.0);
        assert!((back[3] - 3.0e-3).abs() / 3.0e-3 < 1.0 / 128.0);
        assert!(back[4].is_nan());
    }
}
