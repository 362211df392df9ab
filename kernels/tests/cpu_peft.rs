//! PEFT adapters on the CPU model: the conversion transposes PEFT's factors, and an adapter
//! that went through pages computes exactly what the original does.

use fastlibra_kernels::cpu::{CpuLora, CpuModel, CpuModelConfig, KvArena};
use fastlibra_kernels::model::{LoraTarget, LoraTargets};
use fastlibra_kernels::peft::{Adapter, AdapterShape, Matrix, WeightDtype};

fn shape(rank: u32, targets: LoraTargets) -> AdapterShape {
    AdapterShape {
        rank,
        alpha: 16.0,
        targets,
        dtype: WeightDtype::F32,
    }
}

fn value(layer: u32, target: LoraTarget, m: Matrix, i: usize) -> f32 {
    let t = target as u32 as f32;
    let salt = if m == Matrix::A { 0.37 } else { 0.11 };
    ((layer as f32 + 1.0) * 0.013 + t * 0.007 + i as f32 * salt).sin() * 0.05
}

#[test]
fn conversion_transposes_peft_factors() {
    let config = CpuModelConfig::default();
    let spec = config.model_spec();
    let rank = 4;
    let adapter =
        Adapter::from_fn(&spec, shape(rank, LoraTargets::ATTENTION), value).expect("valid");
    let lora = CpuLora::from_adapter(&config, &adapter).expect("attention adapter");
    assert_eq!(lora.rank(), rank as usize);
    assert_eq!(lora.scale(), 16.0 / rank as f32);
    let (input, output) = config.attention_dims()[1];
    let peft = adapter.pair(2, LoraTarget::K).expect("k");
    let ours = lora.pair(2, LoraTarget::K).expect("layer 2 k");
    for i in 0..input {
        for j in 0..rank as usize {
            assert_eq!(ours.a[i * rank as usize + j], peft.a()[j * input + i]);
        }
    }
    for j in 0..rank as usize {
        for o in 0..output {
            assert_eq!(ours.b[j * output + o], peft.b()[o * rank as usize + j]);
        }
    }
}

#[test]
fn paged_adapter_computes_the_same_logits() {
    let config = CpuModelConfig::default();
    let model = CpuModel::random(config.clone(), 7).expect("model");
    let adapter = Adapter::from_fn(
        &config.model_spec(),
        shape(8, LoraTargets::ATTENTION),
        value,
    )
    .expect("valid");
    let paged = adapter.paged(64 * 1024).expect("pages");
    let back = paged.to_adapter().expect("reassembled");
    let a = CpuLora::from_adapter(&config, &adapter).expect("original");
    let b = CpuLora::from_adapter(&config, &back).expect("from pages");
    let tokens: Vec<u32> = (0..20).map(|i| (i * 37) % 1024).collect();
    let mut arena = KvArena::for_model(&config, 16, 4).expect("arena");
    let with_a = model
        .prefill(&mut arena, &tokens, &[0, 1], 0, Some(&a))
        .expect("prefill");
    let with_b = model
        .prefill(&mut arena, &tokens, &[2, 3], 0, Some(&b))
        .expect("prefill");
    let base = model
        .prefill(&mut arena, &tokens, &[0, 1], 0, None)
        .expect("prefill");
    assert_eq!(with_a, with_b);
    assert_ne!(with_a, base, "the adapter changes the output");
}

#[test]
fn mlp_targets_are_converted_and_change_the_output() {
    let config = CpuModelConfig::default();
    let model = CpuModel::random(config.clone(), 7).expect("model");
    let spec = config.model_spec();
    let all = Adapter::from_fn(&spec, shape(2, LoraTargets::ALL_LINEAR), value).expect("valid");
    let lora = CpuLora::from_adapter(&config, &all).expect("all seven targets");
    assert_eq!(lora.targets(), LoraTargets::ALL_LINEAR);
    let (input, output) = config.projection_dims(LoraTarget::Down);
    let peft = all.pair(1, LoraTarget::Down).expect("down");
    let ours = lora.pair(1, LoraTarget::Down).expect("down");
    assert_eq!((peft.input(), peft.output()), (input, output));
    assert_eq!(ours.a[3 * 2 + 1], peft.a()[input + 3]);
    assert_eq!(ours.b[output + 5], peft.b()[5 * 2 + 1]);

    // An adapter on the MLP alone changes the logits, and so does each of its projections.
    let tokens: Vec<u32> = (0..12).map(|i| (i * 41) % 1024).collect();
    let mut arena = KvArena::for_model(&config, 16, 1).expect("arena");
    let base = model
        .prefill(&mut arena, &tokens, &[0], 0, None)
        .expect("base");
    for targets in [
        LoraTargets::NONE.with(LoraTarget::Gate),
        LoraTargets::NONE.with(LoraTarget::Up),
        LoraTargets::NONE.with(LoraTarget::Down),
    ] {
        let adapter = Adapter::from_fn(&spec, shape(4, targets), value).expect("valid");
        let lora = CpuLora::from_adapter(&config, &adapter).expect("mlp adapter");
        assert_eq!(lora.targets(), targets);
        assert!(lora.pair(0, LoraTarget::Q).is_none());
        let adapted = model
            .prefill(&mut arena, &tokens, &[0], 0, Some(&lora))
            .expect("adapted");
        assert_ne!(adapted, base, "{targets:?} changes the output");
    }
}

#[test]
fn an_adapter_for_another_shape_is_refused_with_a_reason() {
    let config = CpuModelConfig::default();
    let wider = CpuModelConfig {
        ffn: 640,
        ..config.clone()
    };
    let adapter = Adapter::from_fn(
        &wider.model_spec(),
        shape(2, LoraTargets::NONE.with(LoraTarget::Up)),
        value,
    )
    .expect("valid");
    let err = CpuLora::from_adapter(&config, &adapter).expect_err("other FFN width");
    assert!(err.to_string().contains("layer 0 up"), "{err}");
}
