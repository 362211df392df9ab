//! The request parser and validation on arbitrary bytes, for the `serve_request` fuzz target
//! and the test that replays its corpus.
//!
//! The first byte picks the endpoint (completions, chat, load, unload); the rest is the body.
//! Properties: nothing panics; every refusal is a 4xx whose body serialises and reads back;
//! a request that passes has a non-empty prompt inside the vocabulary, fits the context with
//! its `max_tokens`, names a served model, and has sampling parameters that validate.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use fastlibra_kernels::tokenizer::{GgufVocab, TokenType, Tokenizer, VocabModel};
use fastlibra_runtime::online::{AdapterListing, ModelInfo};

use crate::error::ApiError;
use crate::protocol::ErrorBody;
use crate::{parse, validate};

/// The base model's name in [`model_info`].
pub const BASE: &str = "fuzz-base";
/// The adapter [`request`] accepts.
pub const ADAPTER: &str = "fuzz-lora";
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n\
                      {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// GPT-2's byte-to-character table.
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256;
    (0..256u32)
        .map(|b| match char::from_u32(b).filter(|_| printable(b)) {
            Some(c) => c,
            None => {
                next += 1;
                char::from_u32(next - 1).unwrap_or('?')
            }
        })
        .collect()
}

/// A byte-level tokenizer: three control tokens (`<|endoftext|>`, `<|im_start|>`,
/// `<|im_end|>`), then one token per byte, with a ChatML chat template.
pub fn byte_tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> = SPECIALS.iter().map(|t| t.to_string()).collect();
    let mut token_types = vec![TokenType::Control; SPECIALS.len()];
    tokens.extend(byte_chars().iter().map(|c| c.to_string()));
    token_types.extend([TokenType::Normal; 256]);
    let vocab = GgufVocab {
        origin: "byte-level.gguf".to_string(),
        model: VocabModel::Gpt2 {
            merges: Vec::new(),
            pre: Some("smollm".to_string()),
        },
        tokens,
        token_types,
        bos: Some(1),
        eos: Some(2),
        eot: None,
        unk: None,
        add_bos: None,
        add_eos: None,
        chat_template: Some(CHATML.to_string()),
    };
    match Tokenizer::from_vocab(&vocab) {
        Ok(t) => t,
        Err(e) => panic!("the built-in byte-level vocabulary must build: {e}"),
    }
}

/// The id of byte `b` in [`byte_tokenizer`].
pub fn byte_id(b: u8) -> u32 {
    SPECIALS.len() as u32 + u32::from(b)
}

/// A model of [`byte_tokenizer`] with a 64-token context.
pub fn model_info() -> ModelInfo {
    ModelInfo {
        served_name: BASE.to_string(),
        path: PathBuf::from("fuzz.gguf"),
        tokenizer: Arc::new(byte_tokenizer()),
        max_model_len: 64,
        block_tokens: 16,
        hbm_pages: 64,
        max_loras: 2,
        max_lora_rank: 16,
        created_unix_s: 0,
    }
}

/// Drives one input (see the module's doc).
pub fn request(data: &[u8]) {
    static INFO: OnceLock<ModelInfo> = OnceLock::new();
    let info = INFO.get_or_init(model_info);
    let adapters = [AdapterListing {
        name: ADAPTER.to_string(),
        path: PathBuf::from("fuzz-lora"),
        version: 1,
        rank: 8,
        created_unix_s: 0,
    }];
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let result = match pick % 4 {
        0 => parse::completion(body)
            .and_then(|r| validate::completion(r, info, &adapters))
            .map(Some),
        1 => parse::chat(body)
            .and_then(|r| validate::chat(r, info, &adapters))
            .map(Some),
        2 => parse::load_lora(body).map(|_| None),
        _ => parse::unload_lora(body).map(|_| None),
    };
    match result {
        Ok(Some(v)) => check_valid(&v, info),
        Ok(None) => {}
        Err(err) => check_refusal(&err),
    }
}

/// A request that passed validation is one the runtime can run.
fn check_valid(v: &validate::Validated, info: &ModelInfo) {
    let r = &v.request;
    assert!(!r.prompt.is_empty(), "an empty prompt passed");
    let vocab = info.tokenizer.vocab_size();
    assert!(
        r.prompt.iter().all(|&id| (id as usize) < vocab),
        "an id outside the vocabulary passed"
    );
    assert!(r.params.max_tokens >= 1);
    assert!(
        r.prompt.len() + r.params.max_tokens <= info.max_model_len as usize,
        "{} + {} tokens passed a {}-token context",
        r.prompt.len(),
        r.params.max_tokens,
        info.max_model_len
    );
    assert!(
        r.params.validate_for_vocab(vocab).is_ok(),
        "bad sampling parameters passed"
    );
    if let Some(a) = &r.adapter {
        assert_eq!(a, ADAPTER);
    }
}

/// A refusal of a body is a client error with an OpenAI-style body that reads back.
fn check_refusal(err: &ApiError) {
    assert!(err.status.is_client_error(), "{err}");
    let text = serde_json::to_string(&err.body()).unwrap_or_default();
    let back: ErrorBody = match serde_json::from_str(&text) {
        Ok(b) => b,
        Err(e) => panic!("the error body {text} does not read back: {e}"),
    };
    assert_eq!(back.error.code, err.status.as_u16());
    assert_eq!(back, err.body());
}
