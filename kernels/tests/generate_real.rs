//! `fastlibra_kernels::generate` on the real SmolLM2 checkpoint (F32 file): greedy generation
//! gives llama.cpp's greedy tokens, a seed makes sampling reproducible, a chat message renders
//! to the ids llama.cpp was given, and a prompt that does not fit the context is refused
//! before any arithmetic.
//!
//! Missing model or reference file: a failure under `FASTLIBRA_REQUIRE_MODEL=1`, a skip line
//! otherwise.

mod refs_support;

use fastlibra_kernels::generate::{GenerateError, LoadedModel, Prompt, generate};
use fastlibra_kernels::sampling::SamplingParams;
use refs_support::{F32_FILE, ids, model_file, reference};
use serde_json::Value;

fn setup(test: &str) -> Option<(LoadedModel, Value)> {
    let path = model_file(test, F32_FILE)?;
    let doc = reference(test, "logits_f32.json")?;
    Some((LoadedModel::open(&path).expect("the model loads"), doc))
}

fn prompt<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .find(|p| p["name"] == name)
        .expect("the prompt is in the reference")
}

fn run(m: &LoadedModel, prompt: &[u32], params: &SamplingParams) -> (Vec<u32>, String) {
    let mut streamed = String::new();
    let out = generate(
        &m.model,
        &m.tokenizer,
        None,
        prompt,
        params,
        &m.name(),
        |step| streamed.push_str(&step.text),
    )
    .expect("generate");
    assert_eq!(out.text, streamed, "the result is what was streamed");
    (out.tokens, out.text)
}

#[test]
fn greedy_generation_gives_llama_cpp_greedy_tokens() {
    let test = "greedy_generation_gives_llama_cpp_greedy_tokens";
    let Some((m, doc)) = setup(test) else { return };
    let stops = m.tokenizer.eot_tokens().to_vec();
    for name in ["sentence", "chat"] {
        let p = prompt(&doc, name);
        let want = ids(&p["greedy"]);
        let params = SamplingParams {
            max_tokens: want.len(),
            ..SamplingParams::greedy()
        };
        let (got, text) = run(&m, &ids(&p["ids"]), &params);
        // llama.cpp's reference runs on past an end-of-turn token; a generation stops there.
        let end = want
            .iter()
            .position(|t| stops.contains(t))
            .map_or(want.len(), |i| i + 1);
        assert_eq!(got, want[..end], "{name}: greedy tokens");
        eprintln!(
            "{test}: {name}: {} tokens as llama.cpp: {text:?}",
            got.len()
        );
    }
}

#[test]
fn a_seed_makes_sampling_reproducible() {
    let test = "a_seed_makes_sampling_reproducible";
    let Some((m, doc)) = setup(test) else { return };
    let ids = ids(&prompt(&doc, "sentence")["ids"]);
    let params = |seed| SamplingParams {
        temperature: 1.0,
        seed: Some(seed),
        max_tokens: 16,
        stop_token_ids: Vec::new(),
        ..SamplingParams::default()
    };
    let first = run(&m, &ids, &params(7));
    let again = run(&m, &ids, &params(7));
    assert_eq!(first, again, "same seed, same tokens and text");
    let other = run(&m, &ids, &params(8));
    assert_ne!(first.0, other.0, "another seed samples other tokens");
}

#[test]
fn a_chat_message_renders_to_the_reference_chat_prompt() {
    let test = "a_chat_message_renders_to_the_reference_chat_prompt";
    let Some((m, doc)) = setup(test) else { return };
    // SmolLM2's template adds its default system message when none is given.
    let got = m
        .prompt_ids(&Prompt::Chat(
            "What is the boiling point of water at sea level?".into(),
        ))
        .expect("the template renders");
    assert_eq!(got, ids(&prompt(&doc, "chat")["ids"]));
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_before_running() {
    let test = "a_prompt_longer_than_the_context_is_refused_before_running";
    let Some((m, _)) = setup(test) else { return };
    let context = m.model.config().context_len;
    let long = vec![504u32; context + 1];
    let params = SamplingParams {
        max_tokens: 1,
        ..SamplingParams::greedy()
    };
    let err = generate(
        &m.model,
        &m.tokenizer,
        None,
        &long,
        &params,
        &m.name(),
        |_| {},
    )
    .expect_err("too long");
    assert!(
        matches!(err, GenerateError::ContextTooLong { prompt_tokens, .. } if prompt_tokens == context + 1)
    );
    let text = err.to_string();
    assert!(
        text.contains(F32_FILE) && text.contains("context length"),
        "{text}"
    );
    // A prompt that fits, with max_tokens running past the context, is refused too.
    let fits = vec![504u32; 8];
    let params = SamplingParams {
        max_tokens: context,
        ..SamplingParams::greedy()
    };
    let err = generate(
        &m.model,
        &m.tokenizer,
        None,
        &fits,
        &params,
        &m.name(),
        |_| {},
    );
    assert!(
        matches!(err, Err(GenerateError::ContextTooLong { max_tokens, .. }) if max_tokens == context)
    );
    // And an empty one.
    let err = generate(
        &m.model,
        &m.tokenizer,
        None,
        &[],
        &params,
        &m.name(),
        |_| {},
    );
    assert!(matches!(err, Err(GenerateError::EmptyPrompt { .. })));
}
