//! Chat templates rendered with minijinja against Python jinja2's renderings of the same
//! cases (`kernels/tests/data/chat_templates/expected.json`, written by
//! `scripts/refs/chat_templates.py` with transformers' environment): SmolLM2's ChatML template,
//! a Llama-3-style template, and one that leans on Python string and dict methods, `tojson`
//! and `raise_exception`.

use std::path::PathBuf;

use fastlibra_kernels::tokenizer::{ChatMessage, ChatTemplate, TokenizerError};
use serde_json::Value;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat_templates")
}

fn template(name: &str, bos: &str, eos: &str) -> ChatTemplate {
    let path = data().join(format!("{name}.jinja"));
    let source = std::fs::read_to_string(&path).expect("read the template");
    ChatTemplate::new(&source, &path.display().to_string(), bos, eos).expect("compile")
}

#[test]
fn renderings_equal_python_jinja2() {
    let text = std::fs::read_to_string(data().join("expected.json")).expect("read expected.json");
    let expected: Value = serde_json::from_str(&text).expect("JSON");
    let cases = expected["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 18);
    for case in cases {
        let s = |k: &str| case[k].as_str().expect(k).to_string();
        let name = format!(
            "{} / {} / gen={}",
            s("template"),
            s("conversation"),
            case["add_generation_prompt"]
        );
        let t = template(&s("template"), &s("bos_token"), &s("eos_token"));
        let messages: Vec<ChatMessage> =
            serde_json::from_value(case["messages"].clone()).expect("messages");
        let generation_prompt = case["add_generation_prompt"].as_bool().expect("flag");
        let got = t.render(&messages, generation_prompt);
        match (case.get("text").and_then(Value::as_str), got) {
            (Some(want), Ok(got)) => assert_eq!(got, want, "{name}"),
            (None, Err(err)) => {
                let msg = err.to_string();
                assert!(msg.contains(&s("error")), "{name}: {msg}");
                assert!(
                    msg.contains("pycompat.jinja"),
                    "{name}: the error names the template: {msg}"
                );
            }
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_template_that_does_not_parse_is_an_error_naming_its_origin() {
    let err = ChatTemplate::new(
        "{% for m in messages %}{{ m.content }}",
        "model.gguf (tokenizer.chat_template)",
        "",
        "",
    )
    .expect_err("unclosed for");
    assert!(matches!(err, TokenizerError::Template { .. }));
    assert!(
        err.to_string()
            .contains("model.gguf (tokenizer.chat_template)"),
        "{err}"
    );
}

#[test]
fn a_template_that_fails_to_render_is_an_error_naming_its_origin() {
    let t = ChatTemplate::new(
        "{{ messages | no_such_filter }}",
        "cfg.json (chat_template)",
        "",
        "",
    )
    .unwrap_or_else(|e| {
        // minijinja may refuse the unknown filter when compiling; either way it names the origin.
        panic!("{e}")
    });
    let err = t
        .render(&[ChatMessage::user("x")], false)
        .expect_err("unknown filter");
    assert!(
        err.to_string().contains("cfg.json (chat_template)"),
        "{err}"
    );
}

#[test]
fn strftime_now_gives_todays_date() {
    let t = ChatTemplate::new("{{ strftime_now('%Y-%m-%d') }}", "test", "", "").unwrap();
    let date = t.render(&[], false).unwrap();
    let parts: Vec<&str> = date.split('-').collect();
    assert_eq!(parts.len(), 3, "{date}");
    assert!(parts[0].parse::<u32>().unwrap() >= 2024 && parts[1].len() == 2 && parts[2].len() == 2);
}
