//! Byte-level BPE tokenizers built from GGUF-style metadata (no model file needed): merges,
//! pre-tokenizers by name, added tokens, BOS, and every way the metadata can be wrong.

mod tokenizer_support;

use fastlibra_kernels::checkpoint::GgufValue;
use fastlibra_kernels::checkpoint::gguf::{parse, write::to_bytes};
use fastlibra_kernels::tokenizer::{GgufVocab, Tokenizer, TokenizerError, VocabModel};
use tokenizer_support::vocabs::{SPECIALS, byte_id, byte_level, byte_level_vocab};

fn tok(vocab: &GgufVocab) -> Tokenizer {
    Tokenizer::from_vocab(vocab).expect("build")
}

fn id(t: &Tokenizer, plain: &str) -> u32 {
    t.token_id(&byte_level(plain)).expect(plain)
}

#[test]
fn without_merges_every_byte_is_a_token_and_decoding_restores_the_text() {
    let t = tok(&byte_level_vocab(Some("gpt-2"), &[]));
    assert_eq!(t.vocab_size(), SPECIALS.len() + 256);
    let ids = t.encode("hé!", false).unwrap();
    assert_eq!(
        ids,
        vec![byte_id(b'h'), byte_id(0xC3), byte_id(0xA9), byte_id(b'!')]
    );
    assert_eq!(t.decode(&ids, false).unwrap(), "hé!");
}

#[test]
fn merges_join_in_rank_order_inside_words() {
    let merges = [
        ("h", "e"),
        ("l", "l"),
        ("he", "ll"),
        ("hell", "o"),
        (" ", "w"),
    ];
    let t = tok(&byte_level_vocab(Some("gpt-2"), &merges));
    assert_eq!(t.encode("hello", false).unwrap(), vec![id(&t, "hello")]);
    // " w" merges; the pre-tokenizer keeps the space with the word that follows it.
    let ids = t.encode("hello wo", false).unwrap();
    assert_eq!(ids, vec![id(&t, "hello"), id(&t, " w"), byte_id(b'o')]);
}

#[test]
fn pre_tokenizers_split_digits_as_llama_cpp_does() {
    let merges = [("1", "2"), ("12", "3"), ("123", "4")];
    let digits = |pre: &str| tok(&byte_level_vocab(Some(pre), &merges));
    // GPT-2: a run of digits is one word.
    let t = digits("gpt-2");
    assert_eq!(t.encode("1234", false).unwrap(), vec![id(&t, "1234")]);
    // SmolLM: each digit on its own.
    let t = digits("smollm");
    let singles: Vec<u32> = b"1234".iter().map(|&b| byte_id(b)).collect();
    assert_eq!(t.encode("1234", false).unwrap(), singles);
    // Llama 3: up to three digits together.
    let t = digits("llama-bpe");
    assert_eq!(
        t.encode("1234", false).unwrap(),
        vec![id(&t, "123"), byte_id(b'4')]
    );
}

#[test]
fn control_and_user_defined_tokens_are_matched_in_text() {
    let t = tok(&byte_level_vocab(Some("smollm"), &[]));
    let ids = t.encode("<|im_start|>x<tool><|im_end|>", false).unwrap();
    assert_eq!(ids, vec![1, byte_id(b'x'), 3, 2]);
    // Skipping special tokens keeps the user-defined one.
    assert_eq!(t.decode(&ids, true).unwrap(), "x<tool>");
    assert!(t.is_special(1) && !t.is_special(3));
    assert_eq!(t.eot_tokens(), &[0, 2], "EOS and <|endoftext|>");
}

#[test]
fn bos_is_added_as_the_file_or_the_family_says() {
    let mut v = byte_level_vocab(Some("gpt-2"), &[]);
    assert_eq!(tok(&v).encode("a", true).unwrap(), vec![byte_id(b'a')]);
    v.add_bos = Some(true);
    v.add_eos = Some(true);
    assert_eq!(
        tok(&v).encode("a", true).unwrap(),
        vec![1, byte_id(b'a'), 2]
    );
    assert_eq!(tok(&v).encode("a", false).unwrap(), vec![byte_id(b'a')]);
    // Llama 3's pre-tokenizer adds BOS unless the file says otherwise.
    let mut v = byte_level_vocab(Some("llama-bpe"), &[]);
    assert_eq!(tok(&v).encode("a", true).unwrap(), vec![1, byte_id(b'a')]);
    v.add_bos = Some(false);
    assert_eq!(tok(&v).encode("a", true).unwrap(), vec![byte_id(b'a')]);
}

fn build_err(v: &GgufVocab) -> String {
    Tokenizer::from_vocab(v)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn bad_metadata_is_refused_with_the_file_and_the_field() {
    let mut v = byte_level_vocab(Some("klingon"), &[]);
    let e = build_err(&v);
    assert!(
        e.contains("synthetic.gguf") && e.contains("tokenizer.ggml.pre") && e.contains("klingon"),
        "{e}"
    );

    v = byte_level_vocab(None, &[]);
    v.add_bos = Some(true);
    v.bos = None;
    assert!(build_err(&v).contains("tokenizer.ggml.add_bos_token"));

    v = byte_level_vocab(None, &[]);
    v.token_types.pop();
    assert!(build_err(&v).contains("tokenizer.ggml.token_type"));

    v = byte_level_vocab(None, &[]);
    v.eos = Some(100_000);
    assert!(build_err(&v).contains("tokenizer.ggml.eos_token_id"));

    v = byte_level_vocab(None, &[]);
    v.tokens[5] = v.tokens[6].clone();
    let e = build_err(&v);
    assert!(
        e.contains("tokenizer.ggml.tokens") && e.contains("ids 5 and 6"),
        "{e}"
    );

    for bad in ["ab", "x y"] {
        let mut v = byte_level_vocab(None, &[]);
        if let VocabModel::Gpt2 { merges, .. } = &mut v.model {
            merges.push(bad.to_string());
        }
        assert!(Tokenizer::from_vocab(&v).is_err(), "merge {bad:?}");
    }
    v = byte_level_vocab(None, &[]);
    v.tokens.clear();
    v.token_types.clear();
    assert!(build_err(&v).contains("tokenizer.ggml.tokens"));
}

/// The GGUF metadata of `v`, as a file would hold it.
fn metadata(v: &GgufVocab) -> Vec<(String, GgufValue)> {
    let strings =
        |xs: &[String]| GgufValue::Array(xs.iter().cloned().map(GgufValue::String).collect());
    let VocabModel::Gpt2 { merges, pre } = &v.model else {
        panic!("gpt2 only")
    };
    let mut m = vec![
        (
            "tokenizer.ggml.model".to_string(),
            GgufValue::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".to_string(),
            GgufValue::String(pre.clone().unwrap_or_default()),
        ),
        ("tokenizer.ggml.tokens".to_string(), strings(&v.tokens)),
        ("tokenizer.ggml.merges".to_string(), strings(merges)),
        ("tokenizer.ggml.bos_token_id".to_string(), GgufValue::U32(1)),
        ("tokenizer.ggml.eos_token_id".to_string(), GgufValue::U32(2)),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            GgufValue::Bool(false),
        ),
        (
            "tokenizer.chat_template".to_string(),
            GgufValue::String("{{ messages[0]['content'] }}".into()),
        ),
    ];
    let codes = v.token_types.iter().map(|k| GgufValue::I32(k.code()));
    m.push((
        "tokenizer.ggml.token_type".to_string(),
        GgufValue::Array(codes.collect()),
    ));
    m
}

#[test]
fn a_gguf_files_metadata_gives_the_same_tokenizer() {
    let v = byte_level_vocab(Some("smollm"), &[("h", "i"), (" ", "hi")]);
    let content = parse(&to_bytes(&metadata(&v), &[])).expect("parse");
    let read = GgufVocab::from_metadata("mem.gguf", |k| content.get(k)).expect("read");
    let (a, b) = (tok(&v), tok(&read));
    let text = "<|im_start|>hi hi 42<tool>";
    assert_eq!(a.encode(text, true).unwrap(), b.encode(text, true).unwrap());
    assert_eq!(b.eos(), Some(2));
    let template = b.chat_template().expect("template");
    assert!(template.origin().contains("mem.gguf"));
}

#[test]
fn a_metadata_field_of_the_wrong_type_names_the_field() {
    let v = byte_level_vocab(Some("smollm"), &[]);
    for (key, bad) in [
        ("tokenizer.ggml.tokens", GgufValue::U32(3)),
        ("tokenizer.ggml.eos_token_id", GgufValue::String("2".into())),
        ("tokenizer.ggml.add_bos_token", GgufValue::U8(1)),
        ("tokenizer.ggml.model", GgufValue::String("bert".into())),
        (
            "tokenizer.ggml.token_type",
            GgufValue::Array(vec![GgufValue::I32(9)]),
        ),
    ] {
        let mut m = metadata(&v);
        m.iter_mut().find(|(k, _)| k == key).expect(key).1 = bad;
        let content = parse(&to_bytes(&m, &[])).expect("parse");
        let err = GgufVocab::from_metadata("mem.gguf", |k| content.get(k))
            .and_then(|v| Tokenizer::from_vocab(&v).map(|_| v))
            .expect_err(key);
        let text = err.to_string();
        assert!(
            text.contains("mem.gguf") && text.contains("tokenizer.ggml."),
            "{key}: {text}"
        );
        assert!(matches!(
            err,
            TokenizerError::Field { .. } | TokenizerError::UnsupportedModel { .. }
        ));
    }
}
