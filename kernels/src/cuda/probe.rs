//! Probes for the two shared libraries the backend loads at run time, done before the first
//! cudarc call: cudarc's loader panics when a library is missing, and a missing GPU must be an
//! error value, not a panic. The probes try the same file names cudarc tries.

use super::error::{CudaError, Result};

/// Whether the CUDA driver (`libcuda.so*`) can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only dlopens the library under cudarc's candidate names (running its
    // initialisers, which the driver library permits) and drops the handle.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether NVRTC (`libnvrtc.so*`) can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: as for `driver_present`.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// `Ok` when the driver can be loaded, [`CudaError::NoDriver`] otherwise.
pub fn require_driver() -> Result<()> {
    if driver_present() {
        Ok(())
    } else {
        Err(CudaError::NoDriver)
    }
}

/// `Ok` when NVRTC can be loaded, [`CudaError::NoNvrtc`] otherwise.
pub fn require_nvrtc() -> Result<()> {
    if nvrtc_present() {
        Ok(())
    } else {
        Err(CudaError::NoNvrtc)
    }
}

/// Runs `f`, turning a panic from inside cudarc (a library that loaded but lacks a symbol) into
/// a [`CudaError::Driver`] of operation `op`. A second guard behind the probes above.
pub(crate) fn guarded<T>(op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic in the CUDA library loader".into());
        Err(CudaError::Driver { op, message })
    })
}
