//! The serving runtime end to end, in process: a tiny random model with a byte-level
//! tokenizer (always runs) on one glommio shard — greedy output equals the model's own greedy
//! decoding, the same seed gives the same tokens, dropping a stream cancels it and leaves no
//! pin, adapters load, reload (a new version, whose KV is never mixed with the old) and
//! unload, overload is refused, a drain finishes what runs, and a shard that panics fails its
//! requests and refuses new ones instead of hanging them.

mod online_support;

use std::sync::Arc;
use std::time::Duration;

use fastlibra_kernels::sampling::{FinishReason, SamplingParams};
use fastlibra_runtime::engine::PolicyKind;
use fastlibra_runtime::online::{
    AdapterError, OnlineRuntime, ServeBackend, ServeOptions, SubmitError, TokenEvent, start_with,
};
use online_support::*;

const TIERS: [u64; 3] = [2 << 20, 4 << 20, 8 << 20];

fn tiny_runtime(
    tweak: impl FnOnce(&mut ServeOptions),
) -> (Arc<OnlineRuntime>, Arc<fastlibra_kernels::cpu::CpuModel>) {
    let (model, tokenizer) = tiny();
    let mut o = options(std::path::Path::new("tiny"), TIERS);
    tweak(&mut o);
    let runtime = start_with(model.clone(), tokenizer, &o).expect("start");
    (runtime, model)
}

fn prompt(seed: u32, n: u32) -> Vec<u32> {
    (0..n).map(|i| 3 + (seed * 31 + i * 7) % 256).collect()
}

#[test]
fn greedy_tokens_stream_and_equal_the_models_own_greedy_decoding() {
    let (rt, model) = tiny_runtime(|_| {});
    let stops = rt.model().tokenizer.eot_tokens().to_vec();
    for (i, len) in [5u32, 17, 40].into_iter().enumerate() {
        let p = prompt(i as u32, len);
        let got = generate(rt.as_ref(), request(None, &p, greedy(12)));
        let want = direct_greedy(&model, None, &p, 12, &stops);
        assert_eq!(got.failed, None);
        assert_eq!(got.tokens, want, "prompt of {len}");
        let usage = got.usage.expect("usage");
        assert_eq!(usage.prompt_tokens, len);
        assert_eq!(usage.completion_tokens as usize, want.len());
        let finish = if want.len() == 12 && !stops.contains(want.last().unwrap()) {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        assert_eq!(got.finish, Some(finish));
    }
    // The same prompt again: its KV comes from the prefix cache, the tokens stay the same.
    let p = prompt(2, 40);
    let again = generate(rt.as_ref(), request(Some("base"), &p, greedy(12)));
    assert_eq!(again.tokens, direct_greedy(&model, None, &p, 12, &stops));
    assert!(
        again.usage.unwrap().cached_tokens >= 32,
        "{:?}",
        again.usage
    );
    let s = wait_idle(rt.as_ref(), 4);
    assert_eq!(s.requests_finished, 4);
    assert_eq!(s.time_to_first_token.count(), 4);
    assert!(s.prefix_cache_hits >= 32 && s.prefix_cache_queries == 5 + 17 + 40 + 40);
    assert_eq!(s.prompt_tokens, 5 + 17 + 40 + 40);
}

#[test]
fn the_same_seed_gives_the_same_tokens() {
    let (rt, _) = tiny_runtime(|_| {});
    let params = |seed| SamplingParams {
        temperature: 1.0,
        seed: Some(seed),
        max_tokens: 16,
        ..SamplingParams::default()
    };
    let p = prompt(9, 20);
    let a = generate(rt.as_ref(), request(None, &p, params(42)));
    let b = generate(rt.as_ref(), request(None, &p, params(42)));
    assert!(!a.tokens.is_empty());
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.text, b.text);
    wait_idle(rt.as_ref(), 2);
}

#[test]
fn dropping_a_stream_cancels_the_request_and_releases_its_pins() {
    let (rt, _) = tiny_runtime(|_| {});
    let p = prompt(3, 30);
    let mut stream = rt
        .submit(request(
            None,
            &p,
            SamplingParams {
                max_tokens: 400,
                stop_token_ids: Vec::new(),
                ..greedy(400)
            },
        ))
        .unwrap();
    let first = futures_lite::future::block_on(stream.next());
    assert!(matches!(first, Some(TokenEvent::Token(_))), "{first:?}");
    drop(stream);
    // One dropped before anything arrived, too.
    drop(rt.submit(request(None, &p, greedy(50))).unwrap());
    let s = wait_idle(rt.as_ref(), 2);
    assert_eq!(s.requests_cancelled, 2, "{s:?}");
    // The runtime still serves.
    let again = generate(rt.as_ref(), request(None, &p, greedy(3)));
    assert_eq!(again.tokens.len(), 3);
}

#[test]
fn adapters_load_reload_and_unload() {
    let (rt, model) = tiny_runtime(|_| {});
    let config = model.config().clone();
    let dir = Scratch::new("adapters");
    let (a1, a2) = (dir.0.join("a1"), dir.0.join("a2"));
    write_adapter(&config, &a1, 4, 1);
    write_adapter(&config, &a2, 8, 2);
    let stops = rt.model().tokenizer.eot_tokens().to_vec();
    let p = prompt(5, 36);

    let listing = rt.load_adapter("tuned", &a1).expect("load");
    assert_eq!((listing.version, listing.rank), (1, 4));
    let got = generate(rt.as_ref(), request(Some("tuned"), &p, greedy(10)));
    let lora1 = read_lora(&config, &a1);
    assert_eq!(
        got.tokens,
        direct_greedy(&model, Some(&lora1), &p, 10, &stops)
    );
    let base = direct_greedy(&model, None, &p, 10, &stops);
    assert_ne!(got.tokens, base, "the adapter changes the output");

    // New weights under the same name: a new version; the old version's KV of this very
    // prompt is never served under it.
    let listing = rt.load_adapter("tuned", &a2).expect("reload");
    assert_eq!((listing.version, listing.rank), (2, 8));
    let got = generate(rt.as_ref(), request(Some("tuned"), &p, greedy(10)));
    let lora2 = read_lora(&config, &a2);
    assert_eq!(
        got.tokens,
        direct_greedy(&model, Some(&lora2), &p, 10, &stops)
    );
    assert_eq!(
        got.usage.unwrap().cached_tokens,
        0,
        "no KV of version 1 reused"
    );
    assert_eq!(rt.adapters().len(), 1);

    // Bad folders register nothing.
    let missing = rt.load_adapter("other", &dir.0.join("nope")).unwrap_err();
    assert!(
        matches!(missing, AdapterError::Invalid { .. }),
        "{missing:?}"
    );
    let not_peft = rt.load_adapter("other", &dir.0).unwrap_err();
    assert!(
        matches!(not_peft, AdapterError::Invalid { .. }),
        "{not_peft:?}"
    );
    let base_name = rt.load_adapter("base", &a1).unwrap_err();
    assert!(matches!(base_name, AdapterError::BadName { .. }));
    assert_eq!(rt.adapters().len(), 1);

    // Unloading while a request runs: it finishes; new ones are refused.
    let running = rt.submit(request(Some("tuned"), &p, greedy(20))).unwrap();
    rt.unload_adapter("tuned").expect("unload");
    let err = rt
        .submit(request(Some("tuned"), &p, greedy(2)))
        .unwrap_err();
    assert_eq!(err, SubmitError::UnknownAdapter("tuned".into()));
    let finished = collect(running);
    assert_eq!(finished.failed, None);
    assert!(finished.usage.is_some());
    assert!(rt.adapters().is_empty());
    assert!(matches!(
        rt.unload_adapter("tuned"),
        Err(AdapterError::NotFound(_))
    ));
    // Loaded again later: a fresh adapter, served as before.
    rt.load_adapter("tuned", &a1).expect("load again");
    let got = generate(rt.as_ref(), request(Some("tuned"), &p, greedy(10)));
    assert_eq!(
        got.tokens,
        direct_greedy(&model, Some(&lora1), &p, 10, &stops)
    );
    wait_idle(rt.as_ref(), 4);
}

#[test]
fn bad_requests_are_refused_before_they_reach_a_shard() {
    let (rt, _) = tiny_runtime(|o| o.max_model_len = Some(64));
    let err = |r| rt.submit(r).unwrap_err();
    assert!(matches!(
        err(request(None, &[], greedy(4))),
        SubmitError::Invalid(_)
    ));
    assert!(matches!(
        err(request(None, &[100_000], greedy(4))),
        SubmitError::Invalid(_)
    ));
    assert!(matches!(
        err(request(Some("nope"), &[5], greedy(4))),
        SubmitError::UnknownAdapter(_)
    ));
    assert_eq!(
        err(request(None, &prompt(1, 60), greedy(10))),
        SubmitError::TooLong {
            prompt_tokens: 60,
            max_tokens: 10,
            max_model_len: 64
        }
    );
    let mut bad = greedy(4);
    bad.top_p = 0.0;
    assert!(matches!(
        err(request(None, &[5], bad)),
        SubmitError::Invalid(_)
    ));
}

#[test]
fn more_waiting_requests_than_the_bound_are_refused_as_overload() {
    let (rt, _) = tiny_runtime(|o| o.max_waiting = 3);
    let mut streams = Vec::new();
    let mut overloaded = 0;
    for i in 0..64 {
        match rt.submit(request(None, &prompt(i, 200), greedy(30))) {
            Ok(s) => streams.push(s),
            Err(SubmitError::Overloaded { retry_after_s, .. }) => {
                assert!(retry_after_s > 0);
                overloaded += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        overloaded > 0,
        "64 requests at once never overloaded a bound of 3"
    );
    let taken = streams.len() as u64;
    drop(streams);
    wait_idle(rt.as_ref(), taken);
}

#[test]
fn a_drain_finishes_what_runs_and_then_refuses_new_requests() {
    let (rt, _) = tiny_runtime(|_| {});
    let streams: Vec<_> = (0..3)
        .map(|i| rt.submit(request(None, &prompt(i, 20), greedy(8))).unwrap())
        .collect();
    let report = rt.drain(Duration::from_secs(30));
    assert_eq!((report.finished, report.cancelled), (3, 0), "{report:?}");
    for s in streams {
        let c = collect(s);
        assert_eq!(c.failed, None);
        assert_eq!(c.tokens.len(), c.usage.unwrap().completion_tokens as usize);
    }
    assert_eq!(
        rt.submit(request(None, &[5], greedy(2))).unwrap_err(),
        SubmitError::ShuttingDown
    );
}

#[test]
fn a_drain_past_its_deadline_cancels_what_is_left() {
    let (rt, _) = tiny_runtime(|_| {});
    let stream = rt
        .submit(request(None, &prompt(4, 20), greedy(2000)))
        .unwrap();
    // A zero deadline: the tiny model decodes 2,000 tokens in a few milliseconds, so any
    // positive deadline races the request's own end.
    let report = rt.drain(Duration::ZERO);
    assert_eq!(report.cancelled, 1, "{report:?}");
    let c = collect(stream);
    assert!(c.failed.is_some(), "{c:?}");
}

#[test]
fn two_shards_serve_adapters_routed_by_name() {
    let (rt, model) = tiny_runtime(|o| o.shards = 2);
    let config = model.config().clone();
    let dir = Scratch::new("shards");
    let stops = rt.model().tokenizer.eot_tokens().to_vec();
    let mut loras = Vec::new();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let path = dir.0.join(name);
        write_adapter(&config, &path, 4, 10 + i as u64);
        rt.load_adapter(name, &path).expect("load");
        loras.push(read_lora(&config, &path));
    }
    let streams: Vec<_> = (0..8)
        .map(|i| {
            let name = ["a", "b", "c", "d"][i % 4];
            let p = prompt(i as u32, 24);
            (
                i,
                p.clone(),
                rt.submit(request(Some(name), &p, greedy(6))).unwrap(),
            )
        })
        .collect();
    for (i, p, s) in streams {
        let got = collect(s);
        let want = direct_greedy(&model, Some(&loras[i % 4]), &p, 6, &stops);
        assert_eq!(got.tokens, want, "request {i}");
    }
    let s = wait_idle(rt.as_ref(), 8);
    assert_eq!(s.pages[0].total, 2 * 256, "two shards' HBM");
}

#[test]
fn a_stop_token_ends_the_request_early() {
    let (rt, model) = tiny_runtime(|_| {});
    let stops = rt.model().tokenizer.eot_tokens().to_vec();
    let p = prompt(11, 24);
    let full = direct_greedy(&model, None, &p, 16, &stops);
    assert!(full.len() > 4, "the model stopped at once: {full:?}");
    let stop = full[3];
    let first = full.iter().position(|&t| t == stop).unwrap();
    let params = SamplingParams {
        stop_token_ids: vec![stop],
        ..greedy(16)
    };
    let got = generate(rt.as_ref(), request(None, &p, params));
    assert_eq!(got.tokens, full[..=first].to_vec());
    assert_eq!(got.finish, Some(FinishReason::Stop));
    assert_eq!(got.usage.unwrap().completion_tokens as usize, first + 1);
    let s = wait_idle(rt.as_ref(), 1);
    assert_eq!(s.generation_tokens as usize, first + 1);
}

#[test]
fn log_probabilities_come_with_each_token_when_asked_for() {
    let (rt, _) = tiny_runtime(|_| {});
    let params = SamplingParams {
        logprobs: Some(3),
        ..greedy(4)
    };
    let mut stream = rt.submit(request(None, &prompt(2, 10), params)).unwrap();
    let steps = futures_lite::future::block_on(async {
        let mut steps = Vec::new();
        while let Some(event) = stream.next().await {
            if let TokenEvent::Token(step) = event {
                steps.push(step);
            }
        }
        steps
    });
    assert!(!steps.is_empty());
    for step in &steps {
        let lp = step
            .token
            .logprob
            .expect("the chosen token's log-probability");
        assert_eq!(step.token.top_logprobs.len(), 3);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(step.token.top_logprobs[0].id, step.token.id);
        assert!(lp <= 0.0 && (lp - step.token.top_logprobs[0].logprob).abs() < 1e-6);
    }
    wait_idle(rt.as_ref(), 1);
}

#[test]
fn a_shard_that_panics_fails_its_requests_and_refuses_new_ones_without_hanging() {
    let (rt, model) = tiny_runtime(|_| {});
    assert_eq!(rt.health(), Ok(()));
    let serving = rt.snapshot().shards_serving;
    assert!(
        !serving.is_empty() && serving.iter().all(|&up| up),
        "{serving:?}"
    );
    let max_tokens = rt.model().max_model_len as usize - 20;
    let long = || SamplingParams {
        stop_token_ids: Vec::new(),
        ..greedy(max_tokens)
    };
    let mut running = rt.submit(request(None, &prompt(1, 20), long())).unwrap();
    let first = futures_lite::future::block_on(running.next());
    assert!(matches!(first, Some(TokenEvent::Token(_))), "{first:?}");
    let queued = rt.submit(request(None, &prompt(2, 20), long())).unwrap();
    rt.inject_shard_panic(0);
    for (name, stream) in [("running", running), ("queued", queued)] {
        let c = collect(stream);
        let failed = c
            .failed
            .clone()
            .unwrap_or_else(|| panic!("{name} did not fail: {c:?}"));
        assert!(failed.contains("panicked"), "{name}: {failed}");
        assert!(c.tokens.len() < max_tokens, "{name} ran to its end");
    }
    let refused = rt.submit(request(None, &prompt(3, 20), greedy(4)));
    assert!(
        matches!(&refused, Err(SubmitError::ShardFailed { shard: 0, reason }) if reason.contains("panicked")),
        "{refused:?}"
    );
    let health = rt.health().unwrap_err();
    assert!(
        health.contains("shard 0") && health.contains("panicked"),
        "{health}"
    );
    let serving = rt.snapshot().shards_serving;
    assert!(!serving[0], "{serving:?}");
    let dir = Scratch::new("panic");
    write_adapter(model.config(), &dir.0, 4, 3);
    assert!(matches!(
        rt.load_adapter("late", &dir.0),
        Err(AdapterError::Runtime(_))
    ));
    let started = std::time::Instant::now();
    rt.drain(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the drain waited on the dead shard"
    );
}

#[test]
fn max_cpu_loras_bounds_the_adapters_cached_in_host_memory_and_hbm() {
    let (rt, model) = tiny_runtime(|o| {
        o.policy = PolicyKind::Vllm;
        o.max_cpu_loras = Some(1);
    });
    let lora_pages = |s: &fastlibra_runtime::online::RuntimeSnapshot| {
        (s.pages[0].lora + s.pages[1].lora, s.pages[2].lora)
    };
    // The shard publishes its gauges after it has handled a message; wait for a snapshot
    // that shows what the test waits for.
    let settled = |what: &str, ok: &dyn Fn(&fastlibra_runtime::online::RuntimeSnapshot) -> bool| {
        let start = std::time::Instant::now();
        loop {
            let s = rt.snapshot();
            if ok(&s) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{what}: {s:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let (base, on_disk) = lora_pages(&settled("first publication", &|s| s.invariant_checks > 0));
    assert_eq!(on_disk, 0);
    let dir = Scratch::new("cpu-loras");
    let names = ["a", "b", "c"];
    for (i, name) in names.iter().enumerate() {
        let path = dir.0.join(name);
        write_adapter(model.config(), &path, 4, 20 + i as u64);
        rt.load_adapter(name, &path).expect("load");
    }
    // The cache holds the base model's adapter and one more: the first fits, the other two
    // wait on disk.
    let s = settled("one adapter cached, two on disk", &|s| {
        let (cached, on_disk) = lora_pages(s);
        cached > base && on_disk == 2 * (cached - base)
    });
    let one = lora_pages(&s).0 - base;
    for (i, name) in names.iter().cycle().take(6).enumerate() {
        let got = generate(
            rt.as_ref(),
            request(Some(name), &prompt(i as u32, 20), greedy(4)),
        );
        assert_eq!(got.failed, None, "{name}");
        // Two of the four adapters (the base model's among them) cached, two on disk.
        let now = lora_pages(&wait_idle(rt.as_ref(), i as u64 + 1));
        assert!(
            now == (base + one, 2 * one) || now == (2 * one, base + one),
            "after a request of {name}: {now:?} pages (one adapter {one}, the base {base})"
        );
    }
}
