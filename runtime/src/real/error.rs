//! What can stop the real runtime, each with the context a user needs to act on it.

use std::path::PathBuf;

use fastlibra_kernels::checkpoint::CheckpointError;
use fastlibra_kernels::cpu::CpuError;
use fastlibra_kernels::cuda::CudaError;
use fastlibra_kernels::peft::PeftError;

use crate::engine::EngineError;
use crate::io::IoError;

/// Errors of the real runtime.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// A setting is out of range or inconsistent.
    #[error("invalid runtime setting: {0}")]
    Config(String),
    /// The NVMe tier's page file could not be set up or failed outside a page operation.
    #[error("NVMe tier: {0}")]
    Io(#[from] IoError),
    /// The spill folder could not be made or used.
    #[error("spill folder {path}: {source}")]
    Spill {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An adapter could not be loaded or does not fit the model.
    #[error("adapter {name}: {source}")]
    Adapter {
        /// Adapter name or folder.
        name: String,
        /// Why.
        source: Box<PeftError>,
    },
    /// The model checkpoint could not be opened (the error names the file and the field).
    #[error("model: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The CPU model refused an input (a bug if it ever happens during a run).
    #[error("CPU backend: {0}")]
    Cpu(#[from] CpuError),
    /// The CUDA device could not be opened or used (no driver, an old driver, out of device
    /// memory, a kernel that does not compile, a failed launch or copy).
    #[error("CUDA backend: {0}")]
    Cuda(#[from] CudaError),
    /// The engine refused an input from the driver (a bug if it ever happens).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// A shard or the front could not be started or stopped.
    #[error("runtime: {0}")]
    Runtime(String),
}
