//! The real runtime with `--backend cuda`: on a machine with a GPU, every policy serves the
//! same workload as `real_cpu.rs` with HBM pages, pinned host pages, copy streams and compute
//! on the GPU, and `verify` recomputes on the CPU reference. Without a GPU those tests print
//! why they skip, and the tests of the no-GPU paths (a typed error, the CPU fallback) run.

mod real_common;

use fastlibra_kernels::cuda::{CudaDevice, WeightPrecision};
use fastlibra_runtime::real::device::{DeviceChoice, EMULATED};
use fastlibra_runtime::real::{RealError, RunOptions, run_real};
use real_common::{assert_sound, options, workload};

const CUDA: DeviceChoice = DeviceChoice::Cuda {
    ordinal: 0,
    weights: WeightPrecision::F32,
};

/// Why the GPU tests skip on this machine, or `None` when device 0 opens.
fn no_gpu() -> Option<String> {
    CudaDevice::open(0).err().map(|e| e.to_string())
}

fn cuda_options() -> RunOptions {
    RunOptions {
        device: CUDA,
        ..options()
    }
}

#[test]
fn every_policy_serves_from_gpu_pages_and_verifies() {
    if let Some(why) = no_gpu() {
        eprintln!("skipping: {why}");
        return;
    }
    let w = workload(6, 12);
    for policy in ["fastlibra", "vllm", "slora"] {
        let run = run_real(&w, policy, &cuda_options()).expect("run on the GPU");
        assert!(run.fallback.is_none());
        assert_ne!(run.device, EMULATED);
        assert_sound(&run, &w);
        assert!(
            run.result.stats.bytes.h2d > 0,
            "{policy}: adapters swapped in"
        );
    }
    // bf16 GEMM weights: verified against the fp32 recompute within 1e-2.
    let bf16 = RunOptions {
        device: DeviceChoice::Cuda {
            ordinal: 0,
            weights: WeightPrecision::Bf16,
        },
        ..options()
    };
    let run = run_real(&w, "fastlibra", &bf16).expect("bf16 run on the GPU");
    assert_sound(&run, &w);
}

#[test]
fn without_a_gpu_cuda_is_a_clear_error_or_an_announced_fallback() {
    let Some(why) = no_gpu() else {
        eprintln!("skipping: this machine has a GPU; the no-GPU paths cannot be shown here");
        return;
    };
    let w = workload(2, 2);
    match run_real(&w, "fastlibra", &cuda_options()) {
        Err(RealError::Cuda(e)) => {
            assert!(e.is_unavailable(), "{e}");
            assert_eq!(e.to_string(), why);
        }
        other => panic!("expected a CUDA error, got {:?}", other.map(|r| r.device)),
    }
    let fallback = RunOptions {
        cuda_fallback: true,
        ..cuda_options()
    };
    let run = run_real(&w, "fastlibra", &fallback).expect("falls back to the CPU");
    assert_eq!(run.fallback.as_deref(), Some(why.as_str()));
    assert_eq!(run.device, EMULATED);
    assert_sound(&run, &w);
}
