//! The sampler's properties: greedy is the argmax, top-k 1 is greedy, a seed replays a
//! request, temperature → 0 is greedy, top-p keeps the smallest set reaching p, sampled
//! frequencies follow the softmax, log-probabilities are the log-softmax of the raw logits;
//! and every bad parameter or logit row is a clear error.

use fastlibra_kernels::sampling::{Sampler, SamplingError, SamplingParams};
use proptest::prelude::*;

fn params(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k,
        top_p,
        seed: Some(seed),
        ..SamplingParams::default()
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// softmax(logits / t) in f64.
fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = logits
        .iter()
        .map(|&l| ((f64::from(l) - f64::from(max)) / t).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}

fn logits_strategy() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-30.0f32..30.0, 1..400)
}

/// Logits with distinct values at least 0.1 apart, in a random order.
fn distinct_logits() -> impl Strategy<Value = Vec<f32>> {
    (2usize..300).prop_flat_map(|n| {
        Just((0..n).map(|i| i as f32 * 0.1 - 10.0).collect::<Vec<_>>()).prop_shuffle()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn greedy_is_argmax(logits in logits_strategy(), seed: u64) {
        let mut s = Sampler::new(&SamplingParams { seed: Some(seed), ..SamplingParams::greedy() }).unwrap();
        prop_assert_eq!(s.sample(&logits).unwrap().id, argmax(&logits));
    }

    #[test]
    fn top_k_one_is_greedy(logits in logits_strategy(), t in 0.1f32..5.0, p in 0.05f32..1.0, seed: u64) {
        let mut s = Sampler::new(&params(t, 1, p, seed)).unwrap();
        prop_assert_eq!(s.sample(&logits).unwrap().id, argmax(&logits));
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens(rows in prop::collection::vec(logits_strategy(), 1..20), t in 0.2f32..3.0,
                                           k in 0usize..50, p in 0.1f32..1.0, seed: u64) {
        let run = || {
            let mut s = Sampler::new(&params(t, k, p, seed)).unwrap();
            rows.iter().map(|r| s.sample(r).unwrap()).collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn temperature_near_zero_is_greedy(logits in distinct_logits(), seed: u64) {
        let mut s = Sampler::new(&params(1e-3, 0, 1.0, seed)).unwrap();
        prop_assert_eq!(s.sample(&logits).unwrap().id, argmax(&logits));
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p(logits in logits_strategy(), t in 0.2f32..3.0, p in 0.05f32..1.0) {
        let mut s = Sampler::new(&params(t, 0, p, 1)).unwrap();
        let kept = s.candidates(&logits).unwrap();
        let probs = softmax(&logits, f64::from(t));
        let mass: f64 = kept.iter().map(|&(id, _)| probs[id as usize]).sum();
        // The sampler's weights are f32: allow their rounding at the boundary.
        prop_assert!(mass >= f64::from(p) - 1e-5, "kept mass {} < p {}", mass, p);
        let without_last = mass - probs[kept.last().unwrap().0 as usize];
        prop_assert!(without_last < f64::from(p) + 1e-5, "not minimal: {} without the last", without_last);
        let renormalised: f64 = kept.iter().map(|&(_, q)| q).sum();
        prop_assert!((renormalised - 1.0).abs() < 1e-9);
        // Most likely first.
        prop_assert!(kept.windows(2).all(|w| logits[w[0].0 as usize] >= logits[w[1].0 as usize]));
    }

    #[test]
    fn top_k_keeps_the_k_most_likely(logits in logits_strategy(), k in 1usize..40) {
        let mut s = Sampler::new(&params(1.0, k, 1.0, 1)).unwrap();
        let kept = s.candidates(&logits).unwrap();
        prop_assert_eq!(kept.len(), k.min(logits.len()));
        let lowest_kept = kept.iter().map(|&(id, _)| logits[id as usize]).fold(f32::INFINITY, f32::min);
        let dropped_above = logits.iter().enumerate()
            .filter(|(i, _)| !kept.iter().any(|&(id, _)| id as usize == *i))
            .any(|(_, &l)| l > lowest_kept);
        prop_assert!(!dropped_above);
    }

    #[test]
    fn the_sampled_token_is_a_candidate(logits in logits_strategy(), t in 0.2f32..3.0, k in 0usize..30,
                                        p in 0.05f32..1.0, seed: u64) {
        let mut s = Sampler::new(&params(t, k, p, seed)).unwrap();
        let kept = s.candidates(&logits).unwrap();
        let id = s.sample(&logits).unwrap().id;
        prop_assert!(kept.iter().any(|&(c, _)| c == id));
    }

    #[test]
    fn logprobs_are_the_log_softmax_of_the_raw_logits(logits in logits_strategy(), n in 1usize..20, seed: u64) {
        let mut s = Sampler::new(&SamplingParams { logprobs: Some(n), temperature: 0.7, seed: Some(seed), ..SamplingParams::default() }).unwrap();
        let out = s.sample(&logits).unwrap();
        let probs = softmax(&logits, 1.0);
        let want = probs[out.id as usize].ln();
        prop_assert!((f64::from(out.logprob.unwrap()) - want).abs() < 1e-4);
        prop_assert_eq!(out.top_logprobs.len(), n.min(logits.len()));
        prop_assert_eq!(out.top_logprobs[0].id, argmax(&logits));
        prop_assert!(out.top_logprobs.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        for t in &out.top_logprobs {
            prop_assert!((f64::from(t.logprob) - probs[t.id as usize].ln()).abs() < 1e-4);
        }
    }
}

#[test]
fn sampled_frequencies_follow_the_softmax() {
    let logits = [1.0f32, 2.0, 0.0, 2.5, -1.0];
    for (t, k, p) in [(1.0, 0, 1.0), (0.5, 0, 1.0), (1.0, 3, 1.0), (1.0, 0, 0.8)] {
        let mut s = Sampler::new(&params(t, k, p, 42)).unwrap();
        let want = s.candidates(&logits).unwrap();
        let n = 40_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[s.sample(&logits).unwrap().id as usize] += 1;
        }
        for (id, &c) in counts.iter().enumerate() {
            let q = want
                .iter()
                .find(|&&(w, _)| w as usize == id)
                .map_or(0.0, |&(_, q)| q);
            let freq = c as f64 / n as f64;
            assert!(
                (freq - q).abs() < 0.01,
                "t={t} k={k} p={p} token {id}: {freq} vs {q}"
            );
        }
    }
}

#[test]
fn log_probabilities_only_when_asked_for() {
    let logits = [0.5f32, 1.5, -2.0];
    let mut s = Sampler::new(&params(1.0, 0, 1.0, 9)).unwrap();
    let out = s.sample(&logits).unwrap();
    assert!(out.logprob.is_none() && out.top_logprobs.is_empty());
    let mut s = Sampler::new(&SamplingParams {
        logprobs: Some(0),
        ..params(1.0, 0, 1.0, 9)
    })
    .unwrap();
    let out = s.sample(&logits).unwrap();
    assert!(out.logprob.is_some() && out.top_logprobs.is_empty());
}

#[test]
fn different_seeds_give_different_streams() {
    let logits = vec![0.0f32; 100];
    let run = |seed| {
        let mut s = Sampler::new(&params(1.0, 0, 1.0, seed)).unwrap();
        (0..50)
            .map(|_| s.sample(&logits).unwrap().id)
            .collect::<Vec<_>>()
    };
    assert_ne!(run(1), run(2));
}

#[test]
fn masked_tokens_are_never_chosen() {
    let mut logits = vec![f32::NEG_INFINITY; 10];
    logits[7] = -3.0;
    logits[2] = -3.5;
    let mut s = Sampler::new(&params(2.0, 0, 1.0, 3)).unwrap();
    for _ in 0..200 {
        let id = s.sample(&logits).unwrap().id;
        assert!(id == 7 || id == 2);
    }
}

#[test]
fn bad_parameters_name_the_field() {
    let base = SamplingParams::default();
    let cases: Vec<(SamplingParams, &str)> = vec![
        (
            SamplingParams {
                temperature: -0.5,
                ..base.clone()
            },
            "temperature",
        ),
        (
            SamplingParams {
                temperature: f32::NAN,
                ..base.clone()
            },
            "temperature",
        ),
        (
            SamplingParams {
                top_p: 0.0,
                ..base.clone()
            },
            "top_p",
        ),
        (
            SamplingParams {
                top_p: 1.5,
                ..base.clone()
            },
            "top_p",
        ),
        (
            SamplingParams {
                max_tokens: 0,
                ..base.clone()
            },
            "max_tokens",
        ),
        (
            SamplingParams {
                logprobs: Some(21),
                ..base.clone()
            },
            "logprobs",
        ),
        (
            SamplingParams {
                stop: vec![String::new()],
                ..base.clone()
            },
            "stop",
        ),
        (
            SamplingParams {
                stop: vec!["x".into(); 17],
                ..base.clone()
            },
            "stop",
        ),
    ];
    for (p, field) in cases {
        let err = Sampler::new(&p).expect_err(field);
        assert!(
            matches!(err, SamplingError::InvalidParam { field: f, .. } if f == field),
            "{err}"
        );
        assert!(err.to_string().contains(field));
    }
    let p = SamplingParams {
        stop_token_ids: vec![10],
        ..base
    };
    assert!(p.validate_for_vocab(11).is_ok());
    let err = p.validate_for_vocab(10).unwrap_err();
    assert!(err.to_string().contains("stop_token_ids"), "{err}");
}

#[test]
fn bad_logits_are_errors_not_panics() {
    let mut s = Sampler::new(&params(1.0, 0, 0.9, 1)).unwrap();
    assert!(matches!(s.sample(&[]), Err(SamplingError::EmptyLogits)));
    assert!(matches!(
        s.sample(&[0.0, f32::NAN]),
        Err(SamplingError::NonFiniteLogit { index: 1, .. })
    ));
    assert!(matches!(
        s.sample(&[f32::INFINITY]),
        Err(SamplingError::NonFiniteLogit { index: 0, .. })
    ));
    assert!(matches!(
        s.sample(&[f32::NEG_INFINITY; 3]),
        Err(SamplingError::NoCandidates)
    ));
    let mut g = Sampler::new(&SamplingParams::greedy()).unwrap();
    assert!(matches!(
        g.sample(&[f32::NAN]),
        Err(SamplingError::NonFiniteLogit { .. })
    ));
}
