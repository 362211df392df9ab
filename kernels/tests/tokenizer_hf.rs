//! Tokenizers from Hugging Face files: `tokenizer.json` alone, and a model folder with
//! `tokenizer_config.json` (BOS, EOS, chat templates) and `chat_template.jinja`.

mod tokenizer_support;

use fastlibra_kernels::tokenizer::{
    CHAT_TEMPLATE_FILE, ChatMessage, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, Tokenizer,
    TokenizerError,
};
use tokenizer_support::TempDir;
use tokenizer_support::vocabs::byte_level_vocab;

const TEXT: &str = "<|im_start|>hello 123 wörld 😀<tool>";

fn source() -> Tokenizer {
    let mut v = byte_level_vocab(
        Some("smollm"),
        &[
            ("h", "e"),
            ("l", "l"),
            ("ll", "o"),
            ("he", "llo"),
            (" ", "w"),
        ],
    );
    v.add_bos = Some(true);
    Tokenizer::from_vocab(&v).expect("build")
}

/// A folder with `source()`'s tokenizer.json and the given config.
fn folder(tag: &str, config: &str) -> TempDir {
    let dir = TempDir::new(tag);
    std::fs::write(
        dir.0.join(TOKENIZER_FILE),
        source().to_tokenizer_json().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.0.join(TOKENIZER_CONFIG_FILE), config).unwrap();
    dir
}

#[test]
fn an_exported_tokenizer_json_encodes_the_same() {
    let dir = TempDir::new("tok-json");
    let path = dir.0.join(TOKENIZER_FILE);
    let src = source();
    std::fs::write(&path, src.to_tokenizer_json().unwrap()).unwrap();
    let t = Tokenizer::from_file(&path).unwrap();
    for add_special in [false, true] {
        assert_eq!(
            t.encode(TEXT, add_special).unwrap(),
            src.encode(TEXT, add_special).unwrap()
        );
    }
    let ids = t.encode(TEXT, false).unwrap();
    assert_eq!(t.decode(&ids, false).unwrap(), TEXT);
    assert_eq!(t.vocab_size(), src.vocab_size());
    assert!(t.chat_template().is_none() && t.bos().is_none());
}

#[test]
fn a_folder_gives_bos_eos_and_the_default_named_template() {
    let config = r#"{
        "bos_token": {"content": "<|im_start|>", "lstrip": false},
        "eos_token": "<|im_end|>",
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS"},
            {"name": "default", "template": "{% for m in messages %}{{ bos_token }}{{ m.role }}\n{{ m.content | trim }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}{{ bos_token }}assistant\n{% endif %}"}
        ]
    }"#;
    let dir = folder("tok-folder", config);
    let t = Tokenizer::from_hf_folder(&dir.0).unwrap();
    assert_eq!((t.bos(), t.eos()), (Some(1), Some(2)));
    assert_eq!(t.eot_tokens(), &[0, 2]);
    assert_eq!(
        t.encode(TEXT, true).unwrap(),
        source().encode(TEXT, true).unwrap()
    );
    let template = t.require_chat_template().unwrap();
    assert!(
        template.origin().contains("[default]"),
        "{}",
        template.origin()
    );
    let text = template
        .render(&[ChatMessage::user("  hi  ")], true)
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );

    // chat_template.jinja wins over the config's template.
    std::fs::write(dir.0.join(CHAT_TEMPLATE_FILE), "{{ messages | length }}").unwrap();
    let t = Tokenizer::from_hf_folder(&dir.0).unwrap();
    let template = t.chat_template().unwrap();
    assert!(template.origin().ends_with(CHAT_TEMPLATE_FILE));
    assert_eq!(
        template
            .render(
                &[ChatMessage::user("a"), ChatMessage::assistant("b")],
                false
            )
            .unwrap(),
        "2"
    );
}

#[test]
fn bad_folders_are_refused_with_the_file_and_the_field() {
    let cases = [
        (r#"{"bos_token": "<nope>"}"#, "bos_token"),
        (r#"{"eos_token": 7}"#, "eos_token"),
        (
            r#"{"chat_template": [{"name": "other", "template": "x"}]}"#,
            "chat_template",
        ),
        (r#"{"chat_template": 3}"#, "chat_template"),
        (r#"{"chat_template": "{% for %}"}"#, "chat_template"),
        ("{ not json", "invalid JSON"),
    ];
    for (i, (config, field)) in cases.iter().enumerate() {
        let dir = folder(&format!("tok-bad-{i}"), config);
        let err = Tokenizer::from_hf_folder(&dir.0)
            .expect_err(config)
            .to_string();
        assert!(err.contains(field), "{config}: {err}");
        assert!(err.contains(TOKENIZER_CONFIG_FILE), "{config}: {err}");
    }
    let dir = TempDir::new("tok-missing");
    let err = Tokenizer::from_hf_folder(&dir.0).unwrap_err();
    assert!(matches!(err, TokenizerError::Io { .. }) && err.to_string().contains(TOKENIZER_FILE));
    std::fs::write(dir.0.join(TOKENIZER_FILE), "{\"model\": 1}").unwrap();
    let err = Tokenizer::from_file(&dir.0.join(TOKENIZER_FILE)).unwrap_err();
    assert!(matches!(err, TokenizerError::Build { .. }), "{err}");
}
