//! The synthetic model's weights on the device, and adapters loaded into pool pages.

use cudarc::driver::CudaSlice;

use super::device::{CudaDevice, Kernels};
use super::error::{Result, driver, invalid};
use super::lora_pages::{LoraStreamLayout, lora_stream};
use super::pool::DevicePagePool;
use crate::cpu::{CpuLora, CpuModel, CpuModelConfig};

/// One decoder layer's weights on the device (row-major `input × output`, as on the CPU).
pub(crate) struct DeviceLayer {
    pub attn_norm: CudaSlice<f32>,
    /// q, k, v, o.
    pub attn: [CudaSlice<f32>; 4],
    pub ffn_norm: CudaSlice<f32>,
    pub gate: CudaSlice<f32>,
    pub up: CudaSlice<f32>,
    pub down: CudaSlice<f32>,
}

/// The synthetic Llama-shaped model of [`CpuModel`] on a GPU: the same weights, the same
/// arithmetic in fp32, KV in pages of a [`DevicePagePool`] laid out like a
/// [`KvArena`](crate::cpu::KvArena), adapters in pages of the same pool.
pub struct CudaModel {
    pub(crate) config: CpuModelConfig,
    pub(crate) kernels: Kernels,
    pub(crate) embed: CudaSlice<f32>,
    pub(crate) layers: Vec<DeviceLayer>,
    pub(crate) final_norm: CudaSlice<f32>,
    pub(crate) lm_head: CudaSlice<f32>,
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
    /// Uploads `cpu`'s weights and compiles the kernels for its head width.
    pub fn from_cpu(dev: &CudaDevice, cpu: &CpuModel) -> Result<Self> {
        let c = cpu.config().clone();
        let kernels = dev.load_kernels(c.head_dim)?;
        let up = |v: &Vec<f32>| dev.compute.clone_htod(v).map_err(driver("weight upload"));
        let layers = cpu
            .layers
            .iter()
            .map(|w| {
                Ok(DeviceLayer {
                    attn_norm: up(&w.attn_norm)?,
                    attn: [
                        up(&w.attn[0])?,
                        up(&w.attn[1])?,
                        up(&w.attn[2])?,
                        up(&w.attn[3])?,
                    ],
                    ffn_norm: up(&w.ffn_norm)?,
                    gate: up(&w.gate)?,
                    up: up(&w.up)?,
                    down: up(&w.down)?,
                })
            })
            .collect::<Result<_>>()?;
        let model = CudaModel {
            embed: up(&cpu.embed)?,
            final_norm: up(&cpu.final_norm)?,
            lm_head: up(&cpu.lm_head)?,
            layers,
            kernels,
            config: c,
            poison: false,
        };
        dev.compute.synchronize().map_err(driver("weight upload"))?;
        Ok(model)
    }

    /// The model's shape.
    pub fn config(&self) -> &CpuModelConfig {
        &self.config
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
