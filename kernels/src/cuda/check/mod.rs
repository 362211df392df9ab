//! The GPU checks behind `fastlibra cuda check` and `scripts/gpu-check.sh`: the kernels against
//! the CPU reference, page-swap bandwidth against a plain pinned copy, the overlap of swap-ins
//! with compute, a calibration of the simulator's cost model, and ([`real_model`]) a real
//! checkpoint's logits and greedy tokens against the CPU path. Each needs a GPU; without a
//! driver [`run_all`] returns [`CudaError::NoDriver`](super::CudaError::NoDriver).

mod calibrate;
mod kernels;
pub mod real_model;
mod report;
mod swap;
mod timing;

pub use calibrate::Calibration;
pub use kernels::{KernelCheck, max_abs_diff};
pub use real_model::RealModelCheck;
pub use report::Report;
pub use swap::{Bandwidth, Overlap};

use super::device::CudaDevice;
use super::error::Result;

/// Runs every check on device 0. `quick` uses smaller sizes (a smoke run).
pub fn run_all(quick: bool) -> Result<Report> {
    let dev = CudaDevice::open(0)?;
    let kernels = kernels::run(&dev)?;
    let bandwidth = swap::bandwidth(&dev, quick)?;
    let overlap = swap::overlap(&dev, quick)?;
    let calibration = calibrate::run(&dev, &bandwidth, quick)?;
    let (free, total) = dev.memory()?;
    Ok(Report {
        device: dev.name().to_string(),
        sm: dev.sm(),
        memory_total_bytes: total as u64,
        memory_free_bytes: free as u64,
        kernels,
        bandwidth,
        overlap,
        calibration,
        real_model: None,
    })
}
