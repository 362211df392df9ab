//! The endpoints answering what the OpenAI clients send.

use std::sync::Arc;

use super::client::{get, post, serve};
use super::fake::{AdapterDir, BASE, FakeBackend, FakeConfig};
use crate::options::FrontOptions;

fn fake_with_two() -> (Arc<FakeBackend>, AdapterDir, AdapterDir) {
    let (a, b) = (AdapterDir::new("api-a"), AdapterDir::new("api-b"));
    let fake = FakeBackend::new(FakeConfig::default(), &[("alpha", &a.0), ("beta", &b.0)]);
    (fake, a, b)
}

#[test]
fn completions_answer_with_text_usage_and_the_same_text_for_the_same_seed() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake.clone(), FrontOptions::default());
    let addr = server.local_addr();
    let body = r#"{"model": "alpha", "prompt": "hello", "max_tokens": 5, "seed": 7}"#;
    let first = post(addr, "/v1/completions", body);
    assert_eq!(first.status, 200, "{}", first.body);
    let v = first.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "alpha");
    let text = v["choices"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(text.len(), 5);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["usage"]["total_tokens"], 10);
    let again = post(addr, "/v1/completions", body).json();
    assert_eq!(again["choices"][0]["text"], text.as_str());
    let other = post(
        addr,
        "/v1/completions",
        &body.replace("\"seed\": 7", "\"seed\": 8"),
    )
    .json();
    assert_ne!(other["choices"][0]["text"], text.as_str());

    // Token-id prompts, the base model, and the default of 16 tokens.
    let v = post(
        addr,
        "/v1/completions",
        &format!(r#"{{"model": "{BASE}", "prompt": [72, 73]}}"#),
    )
    .json();
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    assert_eq!(v["usage"]["completion_tokens"], 16);
    server.stop();
}

#[test]
fn logprobs_come_in_each_endpoints_format() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    let addr = server.local_addr();
    let v = post(
        addr,
        "/v1/completions",
        r#"{"model": "alpha", "prompt": "x", "max_tokens": 3, "logprobs": 2}"#,
    )
    .json();
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"].as_array().unwrap().len(), 3);
    assert_eq!(lp["token_logprobs"][0], -0.25);
    assert_eq!(lp["top_logprobs"][0].as_object().unwrap().len(), 2);
    assert_eq!(lp["text_offset"], serde_json::json!([0, 1, 2]));
    let v = post(
        addr,
        "/v1/chat/completions",
        r#"{"model": "alpha", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 2, "logprobs": true, "top_logprobs": 1}"#,
    )
    .json();
    let content = v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 1);
    server.stop();
}

#[test]
fn chat_renders_the_template_and_streams_role_text_finish_usage_done() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    let addr = server.local_addr();
    let messages = r#"[{"role": "system", "content": "be brief"},
                       {"role": "user", "content": [{"type": "text", "text": "hi"}]}]"#;
    let plain = post(
        addr,
        "/v1/chat/completions",
        &format!(r#"{{"model": "beta", "messages": {messages}, "max_tokens": 4, "seed": 1}}"#),
    );
    let v = plain.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // The ChatML rendering: "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi
    // <|im_end|>\n<|im_start|>assistant\n": three <|im_start|>, two <|im_end|>, two "\n",
    // and the other bytes one token each.
    let rendered = 3 + "system\nbe brief".len() + 2 + "user\nhi".len() + 2 + "assistant\n".len();
    assert_eq!(v["usage"]["prompt_tokens"], rendered as u64);

    let streamed = post(
        addr,
        "/v1/chat/completions",
        &format!(
            r#"{{"model": "beta", "messages": {messages}, "max_tokens": 4, "seed": 1,
                 "stream": true, "stream_options": {{"include_usage": true}}}}"#
        ),
    );
    assert_eq!(streamed.status, 200);
    assert!(
        streamed
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = streamed.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        joined, text,
        "the stream carries the same text as the plain answer"
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    server.stop();
}

#[test]
fn streamed_completions_end_with_done_and_no_usage_unless_asked() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    let events = post(
        server.local_addr(),
        "/v1/completions",
        r#"{"model": "alpha", "prompt": "x", "max_tokens": 3, "stream": true}"#,
    )
    .events();
    assert_eq!(events.len(), 3 + 1 + 1, "{events:?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    for e in &events[..4] {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        assert!(v.get("usage").is_none(), "{v}");
        assert_eq!(v["object"], "text_completion");
    }
    server.stop();
}

#[test]
fn models_lists_the_base_and_each_adapter_with_its_parent() {
    let (fake, a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    let v = get(server.local_addr(), "/v1/models").json();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["id"], BASE);
    assert!(data[0]["parent"].is_null());
    assert_eq!(data[0]["max_model_len"], super::fake::MAX_MODEL_LEN);
    assert_eq!(data[1]["id"], "alpha");
    assert_eq!(data[1]["parent"], BASE);
    assert_eq!(data[1]["root"], a.0.display().to_string());
    server.stop();
}

#[test]
fn adapters_load_reload_and_unload_through_vllms_endpoints() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake.clone(), FrontOptions::default());
    let addr = server.local_addr();
    let g = AdapterDir::new("api-gamma");
    let load = format!(
        r#"{{"lora_name": "gamma", "lora_path": "{}"}}"#,
        g.0.display()
    );
    let r = post(addr, "/v1/load_lora_adapter", &load);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("version 1"), "{}", r.body);
    let use_it = r#"{"model": "gamma", "prompt": "x", "max_tokens": 2}"#;
    assert_eq!(post(addr, "/v1/completions", use_it).status, 200);
    let r = post(addr, "/v1/load_lora_adapter", &load);
    assert!(
        r.body.contains("version 2"),
        "a reload is a new version: {}",
        r.body
    );
    let r = post(addr, "/v1/unload_lora_adapter", r#"{"lora_name": "gamma"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    post(addr, "/v1/completions", use_it).error(404);
    post(addr, "/v1/unload_lora_adapter", r#"{"lora_name": "gamma"}"#).error(404);
    let models = get(addr, "/v1/models").json();
    assert_eq!(models["data"].as_array().unwrap().len(), 3);
    server.stop();
}

#[test]
fn metrics_carry_vllms_names_and_counters_that_add_up() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    let addr = server.local_addr();
    let mut prompt = 0;
    for (i, p) in ["a", "bb", "ccc"].iter().enumerate() {
        let body = format!(
            r#"{{"model": "alpha", "prompt": "{p}", "max_tokens": {}}}"#,
            i + 1
        );
        let v = post(addr, "/v1/completions", &body).json();
        prompt += v["usage"]["prompt_tokens"].as_u64().unwrap();
    }
    post(
        addr,
        "/v1/completions",
        r#"{"model": "nope", "prompt": "x"}"#,
    )
    .error(404);
    let text = get(addr, "/metrics").body;
    let sample = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
    };
    assert_eq!(sample("vllm:prompt_tokens_total"), prompt as f64);
    assert_eq!(sample("vllm:generation_tokens_total"), 6.0);
    assert_eq!(sample("vllm:e2e_request_latency_seconds_count"), 3.0);
    assert_eq!(sample("vllm:time_to_first_token_seconds_count"), 3.0);
    assert_eq!(sample("vllm:inter_token_latency_seconds_count"), 3.0);
    assert_eq!(sample("vllm:prefix_cache_queries_total"), 10.0);
    assert_eq!(sample("vllm:prefix_cache_hits_total"), 4.0);
    assert_eq!(sample("fastlibra:http_errors_total"), 1.0);
    assert_eq!(sample("fastlibra:shard_up"), 1.0);
    for name in [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:lora_requests_info",
        "vllm:cache_config_info",
        "fastlibra:pages",
        "fastlibra:link_bytes_total",
        "fastlibra:engine_call_seconds_count",
    ] {
        sample(name);
    }
    assert!(text.contains("max_lora=\"4\""), "{text}");
    assert!(
        text.contains("running_lora_adapters=\"alpha,beta\""),
        "{text}"
    );
    assert!(text.contains("num_gpu_blocks=\"128\""), "{text}");
    server.stop();
}

#[test]
fn health_is_ok_and_unknown_paths_are_404_bodies() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    assert_eq!(get(server.local_addr(), "/health").status, 200);
    get(server.local_addr(), "/v1/nothing").error(404);
    server.stop();
}

/// The ids of every chunk's first choice, in order, and the prompt's from the first chunk that
/// carries them (on the choice for completions, on the chunk for chat).
fn streamed_ids(events: &[String]) -> (Vec<u64>, Option<serde_json::Value>) {
    let mut ids = Vec::new();
    let mut prompt = None;
    for e in events.iter().filter(|e| e.as_str() != "[DONE]") {
        let c: serde_json::Value = serde_json::from_str(e).unwrap();
        let found = [&c["prompt_token_ids"], &c["choices"][0]["prompt_token_ids"]]
            .into_iter()
            .find(|v| !v.is_null());
        if let Some(p) = found {
            assert!(prompt.is_none(), "prompt ids sent twice: {events:?}");
            prompt = Some(p.clone());
        }
        if let Some(list) = c["choices"][0]["token_ids"].as_array() {
            ids.extend(list.iter().map(|v| v.as_u64().unwrap()));
        }
    }
    (ids, prompt)
}

#[test]
fn return_token_ids_gives_the_prompt_once_and_every_generated_id_once() {
    let (fake, _a, _b) = fake_with_two();
    let server = serve(fake, FrontOptions::default());
    let addr = server.local_addr();
    let body = |stream: bool, ids: bool| {
        format!(
            r#"{{"model": "alpha", "prompt": [72, 73, 74], "max_tokens": 6, "seed": 3,
                 "stream": {stream}, "return_token_ids": {ids}}}"#
        )
    };
    let plain = post(addr, "/v1/completions", &body(false, true)).json();
    let choice = &plain["choices"][0];
    assert_eq!(choice["prompt_token_ids"], serde_json::json!([72, 73, 74]));
    let generated: Vec<u64> = choice["token_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(generated.len(), 6);
    let (ids, prompt) = streamed_ids(&post(addr, "/v1/completions", &body(true, true)).events());
    assert_eq!(ids, generated, "the stream carries the plain answer's ids");
    assert_eq!(prompt, Some(serde_json::json!([72, 73, 74])));
    // Not asked for: no ids at all.
    let plain = post(addr, "/v1/completions", &body(false, false)).json();
    assert!(plain["choices"][0].get("token_ids").is_none(), "{plain}");
    let (ids, prompt) = streamed_ids(&post(addr, "/v1/completions", &body(true, false)).events());
    assert!(ids.is_empty() && prompt.is_none());

    let chat = |stream: bool| {
        format!(
            r#"{{"model": "beta", "messages": [{{"role": "user", "content": "hi"}}],
                 "max_tokens": 5, "seed": 2, "stream": {stream}, "return_token_ids": true}}"#
        )
    };
    let plain = post(addr, "/v1/chat/completions", &chat(false)).json();
    let prompt_len = plain["prompt_token_ids"].as_array().unwrap().len();
    assert_eq!(plain["usage"]["prompt_tokens"], prompt_len as u64);
    let generated = plain["choices"][0]["token_ids"].clone();
    let (ids, prompt) = streamed_ids(&post(addr, "/v1/chat/completions", &chat(true)).events());
    assert_eq!(serde_json::json!(ids), generated);
    assert_eq!(prompt, Some(plain["prompt_token_ids"].clone()));
    server.stop();
}
