//! The CUDA backend against the CPU reference, on a GPU. Without a CUDA driver every test
//! prints why it skipped and returns; the no-driver path itself is checked to be a clean error.

use fastlibra_kernels::cuda::{CudaDevice, CudaError, check, probe};

/// The device, or `None` after printing why the test is skipped.
fn device_or_skip() -> Option<CudaDevice> {
    match CudaDevice::open(0) {
        Ok(dev) => Some(dev),
        Err(CudaError::NoDriver) => {
            println!("skipped: no CUDA driver found (libcuda.so.1 not loadable)");
            None
        }
        Err(e) => panic!("CUDA driver present but the device did not open: {e}"),
    }
}

#[test]
fn opening_a_device_without_a_driver_is_a_typed_error_not_a_panic() {
    let opened = std::panic::catch_unwind(|| CudaDevice::open(0).map(|_| ()));
    let result = opened.expect("CudaDevice::open panicked");
    if !probe::driver_present() {
        assert_eq!(result, Err(CudaError::NoDriver));
        assert_eq!(
            CudaError::NoDriver.to_string(),
            "no CUDA driver found (libcuda.so.1 not loadable)"
        );
    }
}

#[test]
fn kernels_match_the_cpu_reference_on_a_mixed_adapter_batch() {
    if device_or_skip().is_none() {
        return;
    }
    let report = check::run_all(true).expect("GPU checks ran");
    println!("{}", report.summary());
    assert!(
        report.kernels.passed,
        "prefill {:.3e}, decode {:.3e}, bf16 prefill {:.3e}, bf16 decode {:.3e}, gather/scatter exact {}",
        report.kernels.prefill_rel_error,
        report.kernels.decode_rel_error,
        report.kernels.bf16_prefill_rel_error,
        report.kernels.bf16_decode_rel_error,
        report.kernels.gather_scatter_exact
    );
}
