//! The tokenizer of the real SmolLM2 GGUF file: its special tokens, its vocabulary size, its
//! chat template, and streaming detokenisation on emoji and CJK. Missing model: a failure
//! under `FASTLIBRA_REQUIRE_MODEL=1`, a skip line otherwise.

mod tokenizer_support;

use fastlibra_kernels::tokenizer::{ChatMessage, Detokenizer, TokenizerError};
use tokenizer_support::{mixed_text, smollm2};

#[test]
fn special_tokens_come_from_the_file() {
    let Some(tok) = smollm2("special_tokens_come_from_the_file") else {
        return;
    };
    assert_eq!(tok.vocab_size(), 49_152);
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    // EOS (<|im_end|>) and <|endoftext|>, as llama.cpp's end-of-generation set has them.
    assert_eq!(tok.eot_tokens(), &[0, 2]);
    assert_eq!(tok.token_str(2).unwrap(), "<|im_end|>");
    assert!(tok.is_special(1) && tok.is_special(2) && !tok.is_special(19556));
    // tokenizer.ggml.add_bos_token is false: nothing is added.
    assert_eq!(
        tok.encode("Hello", true).unwrap(),
        tok.encode("Hello", false).unwrap()
    );
}

#[test]
fn control_tokens_in_text_are_recognised_and_skippable() {
    let Some(tok) = smollm2("control_tokens_in_text_are_recognised_and_skippable") else {
        return;
    };
    let ids = tok.encode("<|im_start|>user\nHi<|im_end|>", true).unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert_eq!(tok.decode(&ids, true).unwrap(), "user\nHi");
    assert_eq!(
        tok.decode(&ids, false).unwrap(),
        "<|im_start|>user\nHi<|im_end|>"
    );
}

#[test]
fn vocabulary_size_must_match_the_model() {
    let Some(tok) = smollm2("vocabulary_size_must_match_the_model") else {
        return;
    };
    tok.check_vocab(49_152).unwrap();
    let err = tok.check_vocab(32_000).unwrap_err();
    assert!(matches!(
        err,
        TokenizerError::VocabMismatch {
            tokenizer: 49_152,
            model: 32_000,
            ..
        }
    ));
    assert!(err.to_string().contains("SmolLM2"), "{err}");
    let err = tok.decode(&[49_152], false).unwrap_err();
    assert!(
        matches!(err, TokenizerError::UnknownToken { id: 49_152, .. }),
        "{err}"
    );
}

#[test]
fn the_files_chat_template_renders_chatml() {
    let Some(tok) = smollm2("the_files_chat_template_renders_chatml") else {
        return;
    };
    let template = tok.require_chat_template().unwrap();
    assert!(template.origin().contains("tokenizer.chat_template"));
    let text = template
        .render(&[ChatMessage::user("What is 2+2?")], true)
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = tok.encode(&text, true).unwrap();
    assert_eq!(
        ids.iter().filter(|&&id| id == 1).count(),
        3,
        "three <|im_start|>"
    );
}

/// Streams `ids` one at a time and checks the chunks against `decode`.
fn stream_matches_decode(tok: &fastlibra_kernels::tokenizer::Tokenizer, ids: &[u32]) -> usize {
    let mut detok = Detokenizer::new(false);
    let mut joined = String::new();
    let mut chunks = 0;
    for &id in ids {
        let chunk = detok.push(tok, id).unwrap();
        assert!(
            !chunk.contains('\u{FFFD}'),
            "chunk {chunk:?} splits a character"
        );
        chunks += usize::from(!chunk.is_empty());
        joined.push_str(&chunk);
    }
    joined.push_str(&detok.finish(tok).unwrap());
    assert_eq!(joined, tok.decode(ids, false).unwrap());
    chunks
}

#[test]
fn streaming_never_splits_emoji_or_cjk() {
    let Some(tok) = smollm2("streaming_never_splits_emoji_or_cjk") else {
        return;
    };
    for text in [
        "👨‍👩‍👧‍👦 家族 🇯🇵 日本語テキスト 한국어",
        "a😀b 🦀🐍 ❤️‍🔥 東京タワー",
        &mixed_text(),
    ] {
        let ids = tok.encode(text, false).unwrap();
        let chunks = stream_matches_decode(&tok, &ids);
        assert!(chunks > 0 && chunks <= ids.len());
    }
    // Byte-level tokens that split a character: single-byte tokens one by one.
    let ids = tok.encode("😀", false).unwrap();
    assert!(
        ids.len() > 1,
        "the emoji takes several byte tokens: {ids:?}"
    );
    assert_eq!(
        stream_matches_decode(&tok, &ids),
        1,
        "one chunk, when the last byte arrives"
    );
}

#[test]
fn streaming_after_a_prompt_emits_only_new_text() {
    let Some(tok) = smollm2("streaming_after_a_prompt_emits_only_new_text") else {
        return;
    };
    let prompt = tok.encode("The capital of France is", false).unwrap();
    let answer = tok.encode(" Paris, of course 🗼.", false).unwrap();
    let mut detok = Detokenizer::after_prompt(&prompt, true);
    let mut text = String::new();
    for &id in &answer {
        text.push_str(&detok.push(&tok, id).unwrap());
    }
    text.push_str(&detok.finish(&tok).unwrap());
    assert_eq!(text, " Paris, of course 🗼.");
}
