//! TOML overrides and every kind of bad configuration.

use fastlibra_kernels::{ConfigError, HardwareConfig, LoraTarget, ModelSpec};

fn base() -> HardwareConfig {
    HardwareConfig::from_presets("llama3-8b", "h100-80g").expect("presets")
}

fn field_error(text: &str) -> &'static str {
    match base().with_toml(text) {
        Err(ConfigError::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField for {text:?}, got {other:?}"),
    }
}

#[test]
fn empty_file_keeps_presets() {
    assert_eq!(base().with_toml("").expect("empty is fine"), base());
}

#[test]
fn overrides_apply_and_missing_keys_keep_presets() {
    let text = r#"
        [model]
        tensor_parallel = 2
        [gpu]
        hbm_bandwidth_bytes_per_s = 3.0e12
        host_memory_bytes = 0
        nvme_read_latency_ns = 100000
        [cost]
        prefill_flops_efficiency = 0.5
        step_overhead_ns = 0
        lora_targets = ["q_proj", "v_proj"]
    "#;
    let c = base().with_toml(text).expect("valid");
    assert_eq!(c.model.tensor_parallel, 2);
    assert_eq!(c.model.layers, 32);
    assert_eq!(c.gpu.hbm_bandwidth_bytes_per_s, 3_000_000_000_000);
    assert_eq!(c.gpu.host_memory_bytes, 0);
    assert_eq!(c.gpu.nvme_read_latency_ns, 100_000);
    assert_eq!(c.gpu.bf16_dense_flops_per_s, 989_000_000_000_000);
    assert_eq!(c.cost.prefill_flops_efficiency, 0.5);
    assert_eq!(c.cost.step_overhead_ns, 0);
    assert!(c.cost.lora_targets.contains(LoraTarget::V));
    assert!(!c.cost.lora_targets.contains(LoraTarget::K));
    assert!(c.cost_model().is_ok());
}

#[test]
fn preset_key_switches_the_base_and_shape_changes_recompute_params() {
    let c = base()
        .with_toml("[model]\npreset = \"llama2-7b\"\n[gpu]\npreset = \"a100-80g\"")
        .expect("valid");
    assert_eq!(c.model, ModelSpec::llama2_7b());
    assert_eq!(c.gpu.name, "a100-80g");

    let c = base().with_toml("[model]\nlayers = 16").expect("valid");
    assert_eq!(c.model.params, c.model.params_from_shape());
    assert!(c.model.params < ModelSpec::llama3_8b().params);
    let c = base()
        .with_toml("[model]\nlayers = 16\nparams = 1000")
        .expect("valid");
    assert_eq!(c.model.params, 1000);
}

#[test]
fn unknown_keys_and_tables_are_errors() {
    for text in [
        "[model]\nlayerz = 3",
        "[gpu]\nhbm_gb = 80",
        "[cost]\nefficiency = 0.5",
        "[network]\nbandwidth = 1",
    ] {
        match base().with_toml(text) {
            Err(ConfigError::Parse { message }) => {
                assert!(message.contains("unknown"), "{message}")
            }
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }
}

#[test]
fn wrong_types_and_bad_syntax_are_parse_errors() {
    for text in [
        "[model]\nlayers = \"many\"",
        "[gpu\n",
        "[cost]\nlora_targets = \"q\"",
    ] {
        assert!(
            matches!(base().with_toml(text), Err(ConfigError::Parse { .. })),
            "{text}"
        );
    }
}

#[test]
fn nonsense_values_name_their_field() {
    assert_eq!(field_error("[model]\nlayers = 0"), "model.layers");
    assert_eq!(field_error("[model]\nlayers = -3"), "model.layers");
    assert_eq!(field_error("[model]\nlayers = 2.5"), "model.layers");
    assert_eq!(field_error("[model]\nkv_heads = 5"), "model.kv_heads");
    assert_eq!(
        field_error("[model]\ntensor_parallel = 0"),
        "model.tensor_parallel"
    );
    assert_eq!(
        field_error("[model]\ntensor_parallel = 3"),
        "model.tensor_parallel"
    );
    assert_eq!(
        field_error("[model]\nhidden_size = 5000000000"),
        "model.hidden_size"
    );
    assert_eq!(field_error("[gpu]\nhbm_bytes = 0"), "gpu.hbm_bytes");
    assert_eq!(
        field_error("[gpu]\nhbm_bandwidth_bytes_per_s = -1e12"),
        "gpu.hbm_bandwidth_bytes_per_s"
    );
    assert_eq!(
        field_error("[gpu]\nh2d_bandwidth_bytes_per_s = 0"),
        "gpu.h2d_bandwidth_bytes_per_s"
    );
    assert_eq!(
        field_error("[gpu]\nnvme_write_bandwidth_bytes_per_s = 0"),
        "gpu.nvme_write_bandwidth_bytes_per_s"
    );
    assert_eq!(
        field_error("[gpu]\nd2h_latency_ns = -5"),
        "gpu.d2h_latency_ns"
    );
    assert_eq!(
        field_error("[cost]\nprefill_flops_efficiency = 0"),
        "cost.prefill_flops_efficiency"
    );
    assert_eq!(
        field_error("[cost]\ndecode_bandwidth_efficiency = 1.5"),
        "cost.decode_bandwidth_efficiency"
    );
    assert_eq!(
        field_error("[cost]\nlora_flops_efficiency = nan"),
        "cost.lora_flops_efficiency"
    );
    assert_eq!(
        field_error("[cost]\nstep_overhead_ns = -1"),
        "cost.step_overhead_ns"
    );
    assert_eq!(
        field_error("[cost]\nlora_targets = []"),
        "cost.lora_targets"
    );
    let msg = base()
        .with_toml("[model]\nlayers = 0")
        .expect_err("invalid")
        .to_string();
    assert!(
        msg.contains("model.layers") && msg.contains("positive"),
        "{msg}"
    );
}

#[test]
fn unknown_names_list_the_valid_ones() {
    match base().with_toml("[model]\npreset = \"llama9\"") {
        Err(ConfigError::UnknownModel { name, valid }) => {
            assert_eq!(name, "llama9");
            assert!(valid.contains("llama3-70b"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        HardwareConfig::from_presets("llama3-8b", "v100"),
        Err(ConfigError::UnknownGpu { .. })
    ));
    match base().with_toml("[cost]\nlora_targets = [\"q\", \"lm_head\"]") {
        Err(ConfigError::UnknownLoraTarget { name, valid }) => {
            assert_eq!(name, "lm_head");
            assert!(valid.contains("gate"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_file_is_a_read_error() {
    let err = base()
        .with_toml_file(std::path::Path::new("no/such/hardware.toml"))
        .expect_err("missing file");
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

/// Fuzz regression (`hardware_toml`, empty input): on the presets, a prefill of `u32::MAX`
/// tokens saturated the roofline time to `u64::MAX` and adding the step overhead overflowed.
#[test]
fn extreme_work_on_presets_saturates_instead_of_overflowing() {
    let cost = base().cost_model().expect("presets");
    assert_eq!(cost.prefill_ns(u32::MAX, u32::MAX), u64::MAX);
    assert_eq!(cost.decode_step_ns(u32::MAX, u64::MAX), u64::MAX);
    let huge = [fastlibra_kernels::AdapterLoad {
        rank: u32::MAX,
        tokens: u32::MAX,
    }; 3];
    assert_eq!(cost.lora_ns(&huge), u64::MAX);
}

/// Fuzz regression (`fuzz/corpus/hardware_toml/overflowing-shape`): a shape whose parameter
/// count or byte sizes do not fit in 64 bits overflowed while recomputing `params`; it is an
/// error naming the model.
#[test]
fn overflowing_shape_is_an_error_not_a_panic() {
    let text = "[model]\nlayers = 4294967295\nhidden_size = 4294967295\nattention_heads = 1\n\
                kv_heads = 1\nintermediate_size = 4294967295\nvocab_size = 4294967295\n";
    assert_eq!(field_error(text), "model");
    // A shape that fits, with `params` given, but whose weight bytes overflow.
    let text = "[model]\nparams = 9.0e18\ndtype_bytes = 4\n";
    assert_eq!(field_error(text), "model");
    let text = "[model]\nlayers = 4294967295\nkv_heads = 4294967295\nattention_heads = 4294967295\n\
                head_dim = 4294967295\nparams = 1\n";
    assert_eq!(field_error(text), "model");
}

/// Fuzz regression (`fuzz/corpus/hardware_toml/valid-huge-overheads-tiny-gpu`): valid but
/// extreme overheads and a one-byte-per-second GPU saturate instead of overflowing.
#[test]
fn huge_overheads_saturate() {
    let text = "[gpu]\nhbm_bandwidth_bytes_per_s = 1\nbf16_dense_flops_per_s = 1\n\
                [cost]\nstep_overhead_ns = 9.0e18\nlora_adapter_overhead_ns = 9.0e18\n";
    let cost = base()
        .with_toml(text)
        .expect("valid")
        .cost_model()
        .expect("valid");
    assert_eq!(cost.prefill_ns(1, 0), u64::MAX);
    let loads = [fastlibra_kernels::AdapterLoad { rank: 1, tokens: 1 }; 3];
    assert_eq!(cost.lora_ns(&loads), u64::MAX);
}
