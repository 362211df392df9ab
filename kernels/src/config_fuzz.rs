//! The fuzzing entry of the hardware configuration: one function that the `hardware_toml`
//! fuzz target and the stable corpus replay (`kernels/tests/fuzz_corpus.rs`) both call.

use crate::{AdapterLoad, HardwareConfig, Link};

/// Applies `data` (lossy UTF-8) as TOML overrides to the `llama3-8b` / `h100-80g` presets.
/// When it validates, the cost model must build and its functions must neither panic nor
/// overflow: zero work costs nothing, more work never costs less, and a transfer costs at
/// least its latency. Returns whether the configuration validated; panics on a violated
/// property (that is the fuzzer's signal).
pub fn hardware_toml(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let base = HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("the presets exist");
    let Ok(config) = base.with_toml(&text) else {
        return false;
    };
    let cost = config
        .cost_model()
        .expect("a validated configuration builds a cost model");
    let overhead = config.cost.step_overhead_ns;
    assert_eq!(cost.prefill_ns(0, 0), 0);
    assert_eq!(cost.decode_step_ns(0, u64::MAX), 0);
    let mut last = 0;
    for (n, c) in [
        (1, 0),
        (1, 4096),
        (1000, 4096),
        (32_768, 1 << 20),
        (u32::MAX, u32::MAX),
    ] {
        let t = cost.prefill_ns(n, c);
        assert!(
            t >= overhead && t >= last,
            "prefill {n} after {c}: {t} < {last}"
        );
        last = t;
    }
    let mut last = 0;
    for (batch, context) in [(1, 0), (1, 4096), (64, 1 << 18), (u32::MAX, u64::MAX)] {
        let t = cost.decode_step_ns(batch, context);
        assert!(
            t >= overhead && t >= last,
            "decode {batch}, {context}: {t} < {last}"
        );
        last = t;
    }
    let small = [AdapterLoad {
        rank: 16,
        tokens: 100,
    }];
    let huge = [AdapterLoad {
        rank: u32::MAX,
        tokens: u32::MAX,
    }; 3];
    assert!(cost.lora_ns(&huge) >= cost.lora_ns(&small));
    for link in [Link::H2D, Link::D2H, Link::NvmeRead, Link::NvmeWrite] {
        assert_eq!(cost.transfer_ns(link, 0), 0);
        let mut last = cost.link_latency_ns(link);
        for bytes in [1, 4096, 1 << 30, u64::MAX] {
            let t = cost.transfer_ns(link, bytes);
            assert!(t >= last, "{link:?} {bytes} bytes: {t} < {last}");
            last = t;
        }
    }
    true
}
