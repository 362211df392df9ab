//! A request's generation loop: stop tokens, stop strings held back while they may be
//! starting, `max_tokens`, and streaming that never splits a character. Runs on a small
//! byte-level tokenizer, with one-hot logits that force each token.

mod tokenizer_support;

use fastlibra_kernels::sampling::{FinishReason, Generation, SamplingError, SamplingParams, Step};
use fastlibra_kernels::tokenizer::Tokenizer;
use tokenizer_support::vocabs::{byte_id, byte_level_vocab};

fn tokenizer() -> Tokenizer {
    Tokenizer::from_vocab(&byte_level_vocab(Some("smollm"), &[])).expect("build")
}

fn one_hot(t: &Tokenizer, id: u32) -> Vec<f32> {
    let mut logits = vec![0.0; t.vocab_size()];
    logits[id as usize] = 10.0;
    logits
}

/// Forces `ids` through a greedy generation and returns every step.
fn run(t: &Tokenizer, params: &SamplingParams, ids: &[u32]) -> Vec<Step> {
    let mut g = Generation::new(t, params, &[]).expect("generation");
    let mut steps = Vec::new();
    for &id in ids {
        let step = g.step(t, &one_hot(t, id)).expect("step");
        assert_eq!(step.token.id, id);
        let done = step.finish.is_some();
        steps.push(step);
        if done {
            break;
        }
    }
    steps
}

fn bytes(text: &str) -> Vec<u32> {
    text.bytes().map(byte_id).collect()
}

fn joined(steps: &[Step]) -> String {
    steps.iter().map(|s| s.text.as_str()).collect()
}

fn greedy(max_tokens: usize, stop: &[&str]) -> SamplingParams {
    SamplingParams {
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        ..SamplingParams::greedy()
    }
}

#[test]
fn an_end_of_turn_token_stops_without_its_text() {
    let t = tokenizer();
    for eot in [2, 0] {
        let mut ids = bytes("hi");
        ids.push(eot);
        ids.extend(bytes("never"));
        let steps = run(&t, &greedy(100, &[]), &ids);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[2].finish, Some(FinishReason::Stop));
        assert_eq!(joined(&steps), "hi");
    }
}

#[test]
fn extra_stop_token_ids_stop_too() {
    let t = tokenizer();
    let params = SamplingParams {
        stop_token_ids: vec![byte_id(b'!')],
        ..greedy(100, &[])
    };
    let steps = run(&t, &params, &bytes("yes!no"));
    assert_eq!(
        (joined(&steps).as_str(), steps.last().unwrap().finish),
        ("yes", Some(FinishReason::Stop))
    );
}

#[test]
fn a_stop_string_is_held_back_then_cut() {
    let t = tokenizer();
    let steps = run(
        &t,
        &greedy(100, &["\nUser:"]),
        &bytes("ok\nUse it\nUser: more"),
    );
    assert_eq!(steps.last().unwrap().finish, Some(FinishReason::Stop));
    assert_eq!(joined(&steps), "ok\nUse it");
    // While "\nUse" might start the stop string, nothing of it is shown.
    let shown_after_use: String = steps[..6].iter().map(|s| s.text.as_str()).collect();
    assert_eq!(shown_after_use, "ok");
}

#[test]
fn max_tokens_ends_with_length_and_flushes_held_text() {
    let t = tokenizer();
    let steps = run(&t, &greedy(4, &["xyz"]), &bytes("abcxy and more"));
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[3].finish, Some(FinishReason::Length));
    assert_eq!(
        joined(&steps),
        "abcx",
        "the held 'x' is released at the end"
    );
}

#[test]
fn streamed_text_never_splits_a_character() {
    let t = tokenizer();
    let text = "é 😀 日本 👨‍👩‍👧";
    let mut ids = bytes(text);
    ids.push(2);
    let steps = run(&t, &greedy(100, &[]), &ids);
    for s in &steps {
        assert!(!s.text.contains('\u{FFFD}'), "{:?}", s.text);
    }
    assert_eq!(joined(&steps), text);
    // The four bytes of 😀 come out on its last byte.
    let emoji_at = text.find('😀').unwrap();
    assert!(
        steps[emoji_at..emoji_at + 3]
            .iter()
            .all(|s| s.text.is_empty())
    );
    assert_eq!(steps[emoji_at + 3].text, "😀");
}

#[test]
fn a_finished_generation_takes_no_more_tokens() {
    let t = tokenizer();
    let mut g = Generation::new(&t, &greedy(1, &[]), &[]).unwrap();
    assert_eq!(
        g.step(&t, &one_hot(&t, byte_id(b'a'))).unwrap().finish,
        Some(FinishReason::Length)
    );
    assert!(matches!(
        g.step(&t, &one_hot(&t, byte_id(b'b'))),
        Err(SamplingError::Finished)
    ));
    assert_eq!(g.finished(), Some(FinishReason::Length));
}

#[test]
fn parameters_are_checked_against_the_vocabulary() {
    let t = tokenizer();
    let params = SamplingParams {
        stop_token_ids: vec![t.vocab_size() as u32],
        ..SamplingParams::default()
    };
    let err = Generation::new(&t, &params, &[]).unwrap_err();
    assert!(err.to_string().contains("stop_token_ids"), "{err}");
    let g = Generation::new(
        &t,
        &SamplingParams {
            stop_token_ids: vec![7],
            ..SamplingParams::default()
        },
        &[],
    )
    .unwrap();
    assert_eq!(g.stop_token_ids(), &[0, 2, 7]);
}

#[test]
fn logits_of_the_wrong_kind_are_errors() {
    let t = tokenizer();
    let mut g = Generation::new(&t, &SamplingParams::default(), &[]).unwrap();
    let mut logits = one_hot(&t, 5);
    logits[3] = f32::NAN;
    assert!(matches!(
        g.step(&t, &logits),
        Err(SamplingError::NonFiniteLogit { index: 3, .. })
    ));
    // A row that is not one logit per token is refused before sampling.
    let mut wide = vec![0.0; t.vocab_size() + 5];
    wide[t.vocab_size() + 2] = 9.0;
    let mut g = Generation::new(&t, &SamplingParams::greedy(), &[]).unwrap();
    assert!(matches!(
        g.step(&t, &wide),
        Err(SamplingError::LogitsLength { .. })
    ));
    // A token chosen elsewhere that is outside the vocabulary cannot be detokenised.
    let mut sampler = fastlibra_kernels::sampling::Sampler::new(&SamplingParams::greedy()).unwrap();
    let outside = sampler.sample(&wide).unwrap();
    assert!(matches!(
        g.accept(&t, outside),
        Err(SamplingError::Tokenizer(_))
    ));
    assert_eq!(g.generated(), 0);
}
