//! Compilation of the kernel module to PTX through NVRTC, the one path both the device and the
//! GPU-less compile check use.

use cudarc::nvrtc::{CompileOptions, Ptx};

use super::error::{CudaError, Result};
use super::probe::{guarded, require_nvrtc};
use super::source::ModuleSource;

/// Compiles `source` to PTX for the virtual architecture `compute_{sm}` (e.g. `sm = 90`).
/// Fails with [`CudaError::NoNvrtc`] when NVRTC cannot be loaded and with
/// [`CudaError::Compile`], carrying the compiler log, when the source does not compile.
pub fn compile_ptx(source: &ModuleSource, sm: u32) -> Result<Ptx> {
    require_nvrtc()?;
    let options = CompileOptions {
        options: vec![
            format!("--gpu-architecture=compute_{sm}"),
            "--std=c++17".into(),
            "-lineinfo".into(),
        ],
        name: Some(format!("{}.cu", source.name)),
        ..Default::default()
    };
    guarded("nvrtc", || {
        cudarc::nvrtc::compile_ptx_with_opts(&source.text, options).map_err(|e| {
            let (message, log) = match &e {
                cudarc::nvrtc::CompileError::CompileError { nvrtc, log, .. } => {
                    (format!("{nvrtc:?}"), log.to_string_lossy().into_owned())
                }
                other => (format!("{other:?}"), String::new()),
            };
            CudaError::Compile {
                module: source.name.clone(),
                message,
                log,
            }
        })
    })
}
