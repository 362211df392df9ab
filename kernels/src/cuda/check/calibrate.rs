//! Calibration of the simulator's cost model: prefill time by token count, decode step time
//! by batch, H2D/D2H bandwidth, written in the hardware TOML format of [`crate::config`].

use super::swap::Bandwidth;
use super::timing::time_on;
use crate::cpu::{CpuModel, CpuModelConfig};
use crate::cuda::device::CudaDevice;
use crate::cuda::error::Result;
use crate::cuda::forward::CudaSeq;
use crate::cuda::model::CudaModel;
use crate::cuda::pool::DevicePagePool;
use crate::cuda::sched::Direction;

/// Measured times and the cost-model constants derived from them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// `(new tokens, ms)` of one prefill of the synthetic model from an empty cache.
    pub prefill_ms: Vec<(usize, f64)>,
    /// `(batch, context tokens per sequence, ms)` of one decode step.
    pub decode_ms: Vec<(usize, usize, f64)>,
    /// Host → device, pinned, bytes per second.
    pub h2d_bytes_per_s: f64,
    /// Device → host, pinned, bytes per second.
    pub d2h_bytes_per_s: f64,
}

const BT: usize = 16;

pub(crate) fn run(dev: &CudaDevice, bandwidth: &[Bandwidth], quick: bool) -> Result<Calibration> {
    let config = CpuModelConfig::default();
    let model = CudaModel::from_cpu(dev, &CpuModel::random(config.clone(), 9)?)?;
    let prefill_lens: &[usize] = if quick {
        &[128, 512]
    } else {
        &[128, 512, 1024, 2048]
    };
    let batches: &[usize] = if quick { &[1, 8] } else { &[1, 8, 32] };
    let ctx = 512usize;
    let max_pages = prefill_lens
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .div_ceil(BT)
        .max(batches.iter().max().copied().unwrap_or(1) * (ctx + 1).div_ceil(BT));
    let mut pool = DevicePagePool::new(dev, max_pages, config.page_floats(BT))?;
    let mut prefill_ms = Vec::new();
    for &n in prefill_lens {
        let tokens: Vec<u32> = (0..n as u32).map(|t| t % config.vocab as u32).collect();
        let table: Vec<u32> = (0..n.div_ceil(BT) as u32).collect();
        let seq = [CudaSeq {
            tokens: &tokens,
            block_table: &table,
            start_pos: 0,
            lora: None,
        }];
        model.forward_batch(dev, &mut pool, BT, &seq)?;
        let (ms, _) = time_on(dev, &dev.compute, || {
            model.forward_batch(dev, &mut pool, BT, &seq)
        })?;
        prefill_ms.push((n, ms));
    }
    let mut decode_ms = Vec::new();
    let per_seq = (ctx + 1).div_ceil(BT);
    for &b in batches {
        // The context's pages hold whatever the prefills left: finite values, timing only.
        let tables: Vec<Vec<u32>> = (0..b)
            .map(|s| {
                (0..per_seq as u32)
                    .map(|p| (s * per_seq) as u32 + p)
                    .collect()
            })
            .collect();
        let tok = [1u32];
        let seqs: Vec<CudaSeq<'_>> = tables
            .iter()
            .map(|t| CudaSeq {
                tokens: &tok,
                block_table: t,
                start_pos: ctx,
                lora: None,
            })
            .collect();
        model.forward_batch(dev, &mut pool, BT, &seqs)?;
        let (ms, _) = time_on(dev, &dev.compute, || {
            model.forward_batch(dev, &mut pool, BT, &seqs)
        })?;
        decode_ms.push((b, ctx, ms));
    }
    let rate = |d: Direction| {
        bandwidth
            .iter()
            .find(|b| b.direction == d)
            .map(|b| b.plain_bytes_per_s)
            .unwrap_or(0.0)
    };
    Ok(Calibration {
        prefill_ms,
        decode_ms,
        h2d_bytes_per_s: rate(Direction::H2d),
        d2h_bytes_per_s: rate(Direction::D2h),
    })
}

impl Calibration {
    /// The calibration as a hardware TOML for the simulator (`--hardware FILE` with presets
    /// `llama3-8b` and `h200`): the synthetic model's shape, the measured PCIe bandwidths, and
    /// efficiencies that make the cost model reproduce the largest measured prefill and decode
    /// step on the H200 preset's peak numbers. Raw measurements are kept as comments.
    pub fn to_toml(&self, device: &str) -> String {
        let c = CpuModelConfig::default();
        let spec = c.model_spec();
        let gpu = crate::gpu::GpuSpec::preset("h200");
        let (peak_flops, hbm_bw) = gpu
            .ok()
            .map(|g| {
                (
                    g.bf16_dense_flops_per_s as f64,
                    g.hbm_bandwidth_bytes_per_s as f64,
                )
            })
            .unwrap_or((989e12, 4.8e12));
        let clamp = |x: f64| {
            if x.is_finite() {
                x.clamp(1e-6, 1.0)
            } else {
                1.0
            }
        };
        let linear = 2.0 * spec.matmul_params() as f64;
        let prefill_eff = self.prefill_ms.last().map_or(1.0, |&(n, ms)| {
            clamp(linear * n as f64 / (ms / 1e3) / peak_flops)
        });
        let decode_eff = self.decode_ms.last().map_or(1.0, |&(b, ctx, ms)| {
            let bytes = spec.weight_bytes_per_gpu() as f64
                + (b * (ctx + 1)) as f64 * spec.kv_bytes_per_token_per_gpu() as f64;
            clamp(bytes / (ms / 1e3) / hbm_bw)
        });
        let mut t = format!("# fastlibra cuda check calibration, measured on {device}\n");
        t.push_str(
            "# synthetic model (fp32), not Llama: efficiencies are of this model's kernels\n",
        );
        for (n, ms) in &self.prefill_ms {
            t.push_str(&format!("# prefill {n} tokens: {ms:.3} ms\n"));
        }
        for (b, ctx, ms) in &self.decode_ms {
            t.push_str(&format!(
                "# decode step batch {b} context {ctx}: {ms:.3} ms\n"
            ));
        }
        t.push_str(&format!(
            "\n[model]\nname = \"{}\"\nlayers = {}\nhidden_size = {}\nattention_heads = {}\nkv_heads = {}\nhead_dim = {}\nintermediate_size = {}\nvocab_size = {}\ndtype_bytes = {}\nparams = {}\ntensor_parallel = 1\n",
            spec.name, spec.layers, spec.hidden_size, spec.attention_heads, spec.kv_heads, spec.head_dim,
            spec.intermediate_size, spec.vocab_size, spec.dtype_bytes, spec.params
        ));
        let bw = |x: f64| {
            if x.is_finite() && x >= 1.0 {
                x.round() as u64
            } else {
                1
            }
        };
        t.push_str(&format!(
            "\n[gpu]\nh2d_bandwidth_bytes_per_s = {}\nd2h_bandwidth_bytes_per_s = {}\n",
            bw(self.h2d_bytes_per_s),
            bw(self.d2h_bytes_per_s)
        ));
        t.push_str(&format!(
            "\n[cost]\nprefill_flops_efficiency = {prefill_eff:.6e}\ndecode_bandwidth_efficiency = {decode_eff:.6e}\n"
        ));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HardwareConfig;

    #[test]
    fn calibration_toml_is_a_valid_hardware_config() {
        let cal = Calibration {
            prefill_ms: vec![(128, 0.8), (2048, 9.5)],
            decode_ms: vec![(1, 512, 0.4), (32, 512, 0.9)],
            h2d_bytes_per_s: 52.1e9,
            d2h_bytes_per_s: 49.7e9,
        };
        let text = cal.to_toml("test GPU");
        let hw = HardwareConfig::from_presets("llama3-8b", "h200")
            .and_then(|h| h.with_toml(&text))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(hw.gpu.h2d_bandwidth_bytes_per_s, 52_100_000_000);
        assert_eq!(hw.model.layers, 4);
        assert!(hw.cost.prefill_flops_efficiency > 0.0 && hw.cost.prefill_flops_efficiency <= 1.0);
        assert!(hw.cost_model().is_ok());
    }
}
