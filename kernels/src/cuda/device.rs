//! One GPU: its context, the compute stream and the two copy streams, and the kernels
//! compiled for it.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream};

use super::error::{CudaError, Result, driver};
use super::nvrtc::compile_ptx;
use super::probe::{guarded, require_driver};
use super::source::{KERNEL_NAMES, ModuleSource};

/// The oldest driver this build accepts: CUDA 12.0 (`cuDriverGetVersion` = 12000).
const MIN_DRIVER_VERSION: i32 = 12_000;

/// A CUDA context on one device with its three streams: `compute` runs kernels, `h2d` and
/// `d2h` carry page copies so swap-ins and swap-outs overlap compute and each other.
/// Cross-stream order is explicit (events, see [`CopyEngine`](super::CopyEngine)); cudarc's
/// automatic per-buffer event tracking is turned off, since it would serialise every copy into
/// the one page pool with every kernel reading it.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    /// Kernels run here.
    pub compute: Arc<CudaStream>,
    /// Host → device page copies.
    pub h2d: Arc<CudaStream>,
    /// Device → host page copies.
    pub d2h: Arc<CudaStream>,
    name: String,
    sm: u32,
}

/// The kernels of one module, by name.
pub struct Kernels {
    head_dim: usize,
    funcs: Vec<(&'static str, CudaFunction)>,
}

impl Kernels {
    /// The kernel `name` (one of [`KERNEL_NAMES`]).
    pub fn get(&self, name: &str) -> Result<&CudaFunction> {
        self.funcs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .ok_or_else(|| super::error::invalid(format!("no kernel named {name}")))
    }

    /// Head width the attention kernel was built for.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }
}

impl CudaDevice {
    /// Opens device `ordinal`. Without a driver this is [`CudaError::NoDriver`] (no panic);
    /// a driver older than CUDA 12.0 is [`CudaError::OldDriver`].
    pub fn open(ordinal: usize) -> Result<Self> {
        require_driver()?;
        guarded("device open", || Self::open_loaded(ordinal))
    }

    fn open_loaded(ordinal: usize) -> Result<Self> {
        cudarc::driver::result::init().map_err(driver("cuInit"))?;
        let mut version = 0i32;
        // SAFETY: cuDriverGetVersion only writes the int it is given.
        unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) }
            .result()
            .map_err(driver("cuDriverGetVersion"))?;
        if version < MIN_DRIVER_VERSION {
            let v = |x: i32| format!("{}.{}", x / 1000, x % 1000 / 10);
            return Err(CudaError::OldDriver {
                found: v(version),
                needed: v(MIN_DRIVER_VERSION),
            });
        }
        let count = CudaContext::device_count().map_err(driver("cuDeviceGetCount"))?;
        let count = usize::try_from(count).unwrap_or(0);
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(driver("context creation"))?;
        // SAFETY: no buffer exists yet, and every cross-stream dependency of this backend is
        // an explicit event wait.
        unsafe { ctx.disable_event_tracking() };
        let stream = |op| ctx.new_stream().map_err(driver(op));
        let (compute, h2d, d2h) = (
            stream("compute stream")?,
            stream("h2d stream")?,
            stream("d2h stream")?,
        );
        let name = ctx.name().map_err(driver("device name"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("compute capability"))?;
        let sm = u32::try_from(major * 10 + minor).unwrap_or(0);
        Ok(CudaDevice {
            ctx,
            compute,
            h2d,
            d2h,
            name,
            sm,
        })
    }

    /// The device's name, e.g. `NVIDIA H200`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Compute capability as one number (`90` for sm_90).
    pub fn sm(&self) -> u32 {
        self.sm
    }

    /// The context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Free and total device memory, bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx.bind_to_thread().map_err(driver("bind context"))?;
        cudarc::driver::result::mem_get_info().map_err(driver("cuMemGetInfo"))
    }

    /// Compiles the kernel module for heads of `head_dim` with NVRTC for this device's
    /// architecture and loads every kernel of [`KERNEL_NAMES`].
    pub fn load_kernels(&self, head_dim: usize) -> Result<Kernels> {
        let ptx = compile_ptx(&ModuleSource::for_head_dim(head_dim), self.sm)?;
        let module = self.ctx.load_module(ptx).map_err(driver("module load"))?;
        let funcs = KERNEL_NAMES
            .iter()
            .map(|&n| Ok((n, module.load_function(n).map_err(driver("function load"))?)))
            .collect::<Result<_>>()?;
        Ok(Kernels { head_dim, funcs })
    }

    /// Waits on the host until every stream is idle (tests and measurements only; the serving
    /// path orders streams with events).
    pub fn synchronize(&self) -> Result<()> {
        for s in [&self.compute, &self.h2d, &self.d2h] {
            s.synchronize().map_err(driver("stream synchronize"))?;
        }
        Ok(())
    }
}
