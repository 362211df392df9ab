//! The devices one engine shard owns: a GPU's HBM and compute, its PCIe links to pinned host
//! memory, and the NVMe drive behind the host.
//!
//! Datasheet numbers are peak figures; the cost model applies its efficiency factors on top
//! (see [`crate::cost::CostParams`]). PCIe and NVMe figures are what a tuned transfer reaches in
//! practice, not the raw link rate, since that is what a copy of a few MiB actually sees.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Decimal gigabyte, as datasheets count HBM and bandwidth.
const GB: u64 = 1_000_000_000;
/// Binary gibibyte, as host memory is sized.
const GIB: u64 = 1 << 30;
/// One tera-FLOP per second.
const TFLOPS: u64 = 1_000_000_000_000;

/// Peak numbers of one GPU and the links around it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSpec {
    /// Preset or user-given name, for reports.
    pub name: String,
    /// HBM capacity of one GPU, bytes (datasheet figure; the memory planner subtracts weights,
    /// activations and the CUDA context).
    pub hbm_bytes: u64,
    /// Peak HBM bandwidth, bytes per second.
    pub hbm_bandwidth_bytes_per_s: u64,
    /// Dense (no sparsity) bf16 tensor-core throughput, FLOP per second.
    pub bf16_dense_flops_per_s: u64,
    /// Host → device copy bandwidth from pinned memory, bytes per second.
    pub h2d_bandwidth_bytes_per_s: u64,
    /// Fixed cost of one host → device copy (launch and DMA set-up), nanoseconds.
    pub h2d_latency_ns: u64,
    /// Device → host copy bandwidth into pinned memory, bytes per second.
    pub d2h_bandwidth_bytes_per_s: u64,
    /// Fixed cost of one device → host copy, nanoseconds.
    pub d2h_latency_ns: u64,
    /// NVMe read bandwidth (large O_DIRECT reads at queue depth), bytes per second.
    pub nvme_read_bandwidth_bytes_per_s: u64,
    /// Latency of one NVMe read, nanoseconds.
    pub nvme_read_latency_ns: u64,
    /// NVMe write bandwidth, bytes per second.
    pub nvme_write_bandwidth_bytes_per_s: u64,
    /// Latency of one NVMe write, nanoseconds.
    pub nvme_write_latency_ns: u64,
    /// Pinned host memory available to this GPU's host tier, bytes (0: no host tier).
    pub host_memory_bytes: u64,
    /// NVMe spill space available to this GPU's NVMe tier, bytes (0: no NVMe tier).
    pub nvme_bytes: u64,
}

/// The CLI names of the GPU presets (`h800-80g` is an alias of `h100-80g`).
pub const GPU_PRESETS: [&str; 4] = ["a100-80g", "h100-80g", "h800-80g", "h200"];

/// PCIe and NVMe numbers shared by the presets.
struct Links {
    pcie_bytes_per_s: u64,
}

/// PCIe Gen4 x16: about 32 GB/s per direction raw (16 GT/s × 16 lanes, 128b/130b); pinned
/// `cudaMemcpyAsync` typically reaches about 25 GB/s (assumption from common `bandwidthTest`
/// results; measure your machine and override).
const PCIE_GEN4_X16: Links = Links {
    pcie_bytes_per_s: 25 * GB,
};

/// PCIe Gen5 x16: about 64 GB/s per direction raw; about 50 GB/s in practice (DESIGN §9).
const PCIE_GEN5_X16: Links = Links {
    pcie_bytes_per_s: 50 * GB,
};

/// Copy launch plus DMA set-up: a small pinned `cudaMemcpyAsync` completes in roughly 5–10 µs;
/// we charge 10 µs per transfer (assumption; transfers are coalesced into runs of pages, so
/// this matters only for tiny copies).
const PCIE_LATENCY_NS: u64 = 10_000;

/// One PCIe Gen4 datacenter NVMe drive per GPU, Samsung PM9A3 class: 6.9 GB/s sequential read
/// and 4.1 GB/s sequential write (its datasheet's figures for the larger capacities). Latency
/// per request: 80 µs read, 20 µs write (assumption: typical datasheet 4 KiB QD1 orders of
/// magnitude; writes land in a power-loss-protected cache). DESIGN §9 asks for what `fio` with
/// O_DIRECT measures on the real disk: override these with it.
const NVME_READ_BYTES_PER_S: u64 = 6_900_000_000;
const NVME_WRITE_BYTES_PER_S: u64 = 4_100_000_000;
const NVME_READ_LATENCY_NS: u64 = 80_000;
const NVME_WRITE_LATENCY_NS: u64 = 20_000;
/// NVMe spill space per GPU: a 1 TiB slice of the server's drives (assumption; DGX H100 has
/// 8 × 3.84 TB of data NVMe for 8 GPUs).
const NVME_BYTES_PER_GPU: u64 = 1 << 40;

fn with_links(
    name: &str,
    hbm_bytes: u64,
    hbm_bandwidth_bytes_per_s: u64,
    bf16_dense_flops_per_s: u64,
    links: Links,
    host_memory_bytes: u64,
) -> GpuSpec {
    GpuSpec {
        name: name.to_string(),
        hbm_bytes,
        hbm_bandwidth_bytes_per_s,
        bf16_dense_flops_per_s,
        h2d_bandwidth_bytes_per_s: links.pcie_bytes_per_s,
        h2d_latency_ns: PCIE_LATENCY_NS,
        d2h_bandwidth_bytes_per_s: links.pcie_bytes_per_s,
        d2h_latency_ns: PCIE_LATENCY_NS,
        nvme_read_bandwidth_bytes_per_s: NVME_READ_BYTES_PER_S,
        nvme_read_latency_ns: NVME_READ_LATENCY_NS,
        nvme_write_bandwidth_bytes_per_s: NVME_WRITE_BYTES_PER_S,
        nvme_write_latency_ns: NVME_WRITE_LATENCY_NS,
        host_memory_bytes,
        nvme_bytes: NVME_BYTES_PER_GPU,
    }
}

impl GpuSpec {
    /// NVIDIA A100 80GB SXM (A100 datasheet): 80 GB HBM2e at 2,039 GB/s, 312 TFLOPS dense
    /// bf16, PCIe Gen4 x16. Host tier: 128 GiB per GPU (a DGX A100 has 1 TB of system memory
    /// for 8 GPUs).
    pub fn a100_80g() -> GpuSpec {
        with_links(
            "a100-80g",
            80 * GB,
            2_039 * GB,
            312 * TFLOPS,
            PCIE_GEN4_X16,
            128 * GIB,
        )
    }

    /// NVIDIA H100 SXM5 80GB (H100 datasheet): 80 GB HBM3 at 3.35 TB/s, 989 TFLOPS dense bf16
    /// (1,979 with sparsity), PCIe Gen5 x16. Host tier: 256 GiB per GPU (a DGX H100 has 2 TB
    /// for 8 GPUs).
    ///
    /// The H800 SXM is the same GPU for everything modelled here (HBM, bf16 rate, PCIe); it
    /// differs in NVLink bandwidth (400 GB/s instead of 900 GB/s) and FP64 rate, and this model
    /// does not charge NVLink collectives.
    pub fn h100_80g() -> GpuSpec {
        with_links(
            "h100-80g",
            80 * GB,
            3_350 * GB,
            989 * TFLOPS,
            PCIE_GEN5_X16,
            256 * GIB,
        )
    }

    /// NVIDIA H800 SXM 80GB: the H100 numbers under its own name (see [`GpuSpec::h100_80g`]).
    pub fn h800_80g() -> GpuSpec {
        GpuSpec {
            name: "h800-80g".to_string(),
            ..GpuSpec::h100_80g()
        }
    }

    /// NVIDIA H200 SXM (H200 datasheet): 141 GB HBM3e at 4.8 TB/s, 989 TFLOPS dense bf16 (the
    /// same Hopper compute as H100), PCIe Gen5 x16. Host tier: 256 GiB per GPU (DGX H200 has
    /// 2 TB for 8 GPUs).
    pub fn h200() -> GpuSpec {
        with_links(
            "h200",
            141 * GB,
            4_800 * GB,
            989 * TFLOPS,
            PCIE_GEN5_X16,
            256 * GIB,
        )
    }

    /// The preset with this CLI name (see [`GPU_PRESETS`]).
    pub fn preset(name: &str) -> Result<GpuSpec, ConfigError> {
        match name {
            "a100-80g" => Ok(GpuSpec::a100_80g()),
            "h100-80g" => Ok(GpuSpec::h100_80g()),
            "h800-80g" => Ok(GpuSpec::h800_80g()),
            "h200" => Ok(GpuSpec::h200()),
            _ => Err(ConfigError::UnknownGpu {
                name: name.to_string(),
                valid: GPU_PRESETS.join(", "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_and_h800_matches_h100() {
        for name in GPU_PRESETS {
            let gpu = GpuSpec::preset(name).expect("preset");
            assert_eq!(gpu.name, name);
        }
        let h800 = GpuSpec::h800_80g();
        let h100 = GpuSpec::h100_80g();
        assert_eq!(
            GpuSpec {
                name: h100.name.clone(),
                ..h800
            },
            h100
        );
    }

    #[test]
    fn unknown_gpu_lists_valid_names() {
        let msg = GpuSpec::preset("tpu-v5").expect_err("unknown").to_string();
        for name in GPU_PRESETS {
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn datasheet_numbers() {
        assert_eq!(
            GpuSpec::a100_80g().hbm_bandwidth_bytes_per_s,
            2_039_000_000_000
        );
        assert_eq!(
            GpuSpec::h100_80g().bf16_dense_flops_per_s,
            989_000_000_000_000
        );
        assert_eq!(GpuSpec::h200().hbm_bytes, 141_000_000_000);
    }
}
