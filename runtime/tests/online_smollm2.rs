//! The serving runtime on the real SmolLM2 checkpoint with two PEFT adapters of its shape:
//! greedy output equals the CPU model's own greedy decoding (base and adapters), the same
//! seed gives the same text, a dropped stream leaves no pin. Skips with one line when the
//! model is missing; fails under `FASTLIBRA_REQUIRE_MODEL=1`.

mod online_support;

use fastlibra_kernels::checkpoint::Checkpoint;
use fastlibra_kernels::cpu::CpuModel;
use fastlibra_kernels::sampling::SamplingParams;
use fastlibra_runtime::online::{TokenEvent, start};
use online_support::*;

#[test]
fn smollm2_serves_base_and_adapters_as_the_model_computes_them() {
    let Some(path) = smollm2("smollm2_serves_base_and_adapters_as_the_model_computes_them") else {
        return;
    };
    let checkpoint = Checkpoint::open_shared(&path).expect("checkpoint");
    let model = CpuModel::from_checkpoint(&checkpoint).expect("model");
    let config = model.config().clone();
    let dir = Scratch::new("smollm2");
    let (a, b) = (dir.0.join("a"), dir.0.join("b"));
    write_adapter(&config, &a, 8, 1);
    write_adapter(&config, &b, 16, 2);
    let mut o = options(&path, [96 << 20, 64 << 20, 64 << 20]);
    o.lora_modules = vec![("a".into(), a.clone()), ("b".into(), b.clone())];
    let rt = start(&o).expect("start");
    let tokenizer = rt.model().tokenizer.clone();
    let stops = tokenizer.eot_tokens().to_vec();
    let prompt = tokenizer
        .encode("The capital of France is", false)
        .expect("encode");
    let base = generate(rt.as_ref(), request(None, &prompt, greedy(6)));
    assert_eq!(base.failed, None);
    assert_eq!(base.tokens, direct_greedy(&model, None, &prompt, 6, &stops));
    assert!(!base.text.is_empty());
    for (name, dir) in [("a", &a), ("b", &b)] {
        let got = generate(rt.as_ref(), request(Some(name), &prompt, greedy(6)));
        let lora = read_lora(&config, dir);
        assert_eq!(
            got.tokens,
            direct_greedy(&model, Some(&lora), &prompt, 6, &stops),
            "adapter {name}"
        );
    }
    let seeded = SamplingParams {
        temperature: 0.8,
        seed: Some(3),
        max_tokens: 6,
        ..SamplingParams::default()
    };
    let x = generate(rt.as_ref(), request(Some("a"), &prompt, seeded.clone()));
    let y = generate(rt.as_ref(), request(Some("a"), &prompt, seeded));
    assert_eq!((x.tokens, x.text), (y.tokens, y.text));
    let mut stream = rt
        .submit(request(Some("b"), &prompt, greedy(64)))
        .expect("submit");
    let first = futures_lite::future::block_on(stream.next());
    assert!(matches!(first, Some(TokenEvent::Token(_))));
    drop(stream);
    let s = wait_idle(rt.as_ref(), 6);
    assert_eq!(s.requests_cancelled, 1);
    assert_eq!(s.requests_finished, 5);
}
