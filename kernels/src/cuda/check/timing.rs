//! Timing on a stream with CUDA events (device time, not host time).

use cudarc::driver::CudaStream;
use cudarc::driver::sys::CUevent_flags;

use crate::cuda::device::CudaDevice;
use crate::cuda::error::{Result, driver};

/// Milliseconds of device time between the work queued on `stream` before and after `f`;
/// waits for the end event.
pub(crate) fn time_on<T>(
    dev: &CudaDevice,
    stream: &CudaStream,
    f: impl FnOnce() -> Result<T>,
) -> Result<(f64, T)> {
    let ev = || {
        dev.context()
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(driver("timing event"))
    };
    let (start, end) = (ev()?, ev()?);
    start.record(stream).map_err(driver("event record"))?;
    let out = f()?;
    end.record(stream).map_err(driver("event record"))?;
    let ms = start.elapsed_ms(&end).map_err(driver("event elapsed"))?;
    Ok((f64::from(ms), out))
}
