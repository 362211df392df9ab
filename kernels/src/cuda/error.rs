//! The typed errors of the CUDA backend. A missing driver or NVRTC is an error value, never a
//! panic, so the binary runs everything else on a machine without a GPU.

use thiserror::Error;

use super::sched::SchedError;
use crate::cpu::CpuError;

/// Why the CUDA backend could not start, compile, allocate or run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CudaError {
    /// `libcuda.so.1` (the driver) cannot be loaded: no GPU driver on this machine.
    #[error("no CUDA driver found (libcuda.so.1 not loadable)")]
    NoDriver,
    /// NVRTC cannot be loaded, so no kernel can be compiled.
    #[error(
        "NVRTC not found (libnvrtc.so, .so.12 not loadable); put the folder holding libnvrtc.so* \
         on LD_LIBRARY_PATH (see docs/cuda.md)"
    )]
    NoNvrtc,
    /// The driver is older than the CUDA API this build talks to.
    #[error("CUDA driver {found} is too old; this build needs {needed} or newer")]
    OldDriver {
        /// The driver's CUDA version as `major.minor`.
        found: String,
        /// The oldest it accepts.
        needed: String,
    },
    /// No device with this ordinal.
    #[error("no CUDA device {ordinal} ({count} found)")]
    NoDevice {
        /// The ordinal asked for.
        ordinal: usize,
        /// Devices present.
        count: usize,
    },
    /// A driver call failed.
    #[error("CUDA {op} failed: {message}")]
    Driver {
        /// What was being done.
        op: &'static str,
        /// The driver's error name and text.
        message: String,
    },
    /// A device or pinned host allocation did not fit.
    #[error("out of {memory} memory: {what} needs {bytes} bytes")]
    OutOfMemory {
        /// `device` or `pinned host`.
        memory: &'static str,
        /// What was being allocated.
        what: &'static str,
        /// Bytes asked for.
        bytes: u64,
    },
    /// NVRTC rejected a kernel source.
    #[error("NVRTC could not compile {module}: {message}\n{log}")]
    Compile {
        /// The kernel module (file) name.
        module: String,
        /// NVRTC's error.
        message: String,
        /// The compiler log.
        log: String,
    },
    /// A batch or shape the model cannot run (same checks as the CPU backend).
    #[error(transparent)]
    Batch(#[from] CpuError),
    /// A page copy request the scheduler refused.
    #[error(transparent)]
    Sched(#[from] SchedError),
    /// A model shape or adapter the CUDA kernels cannot run (the CPU backend may): names what.
    #[error("the CUDA kernels cannot run this model: {what}")]
    Unsupported {
        /// What the kernels lack, and the value that needs it.
        what: String,
    },
    /// An argument out of range (a page id outside the pool, a size that overflows).
    #[error("invalid CUDA request: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

impl CudaError {
    /// Whether this machine simply has no usable GPU (no driver, an old driver, no such
    /// device, no NVRTC), as opposed to a GPU that failed: what a fallback to the CPU backend
    /// may paper over.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CudaError::NoDriver
                | CudaError::NoNvrtc
                | CudaError::OldDriver { .. }
                | CudaError::NoDevice { .. }
        )
    }
}

/// Result of the CUDA backend.
pub type Result<T, E = CudaError> = std::result::Result<T, E>;

/// Maps a driver error of operation `op` to a [`CudaError`] (out-of-memory kept apart).
pub(crate) fn driver(op: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> CudaError {
    move |e| CudaError::Driver {
        op,
        message: format!("{e:?}"),
    }
}

/// Maps a failed allocation of `bytes` to [`CudaError::OutOfMemory`] when the driver says so.
pub(crate) fn alloc_error(
    memory: &'static str,
    what: &'static str,
    bytes: u64,
) -> impl FnOnce(cudarc::driver::DriverError) -> CudaError {
    move |e| {
        if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            CudaError::OutOfMemory {
                memory,
                what,
                bytes,
            }
        } else {
            driver("allocation")(e)
        }
    }
}

/// An [`CudaError::Invalid`] with `reason`.
pub(crate) fn invalid(reason: impl Into<String>) -> CudaError {
    CudaError::Invalid {
        reason: reason.into(),
    }
}
