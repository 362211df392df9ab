//! SentencePiece vocabularies (`tokenizer.ggml.model = llama`): merges by score, the leading
//! space, byte fallback, BOS by default.

mod tokenizer_support;

use fastlibra_kernels::tokenizer::{Detokenizer, Tokenizer};
use tokenizer_support::vocabs::spm_vocab;

/// `▁ab▁c` merges `ab` (-0.5) first, then `▁ab` (-0.2 beats `▁c`'s -0.8), then `▁c`.
const PIECES: [(&str, f32); 8] = [
    ("\u{2581}", -1.0),
    ("a", -2.0),
    ("b", -2.0),
    ("c", -2.0),
    ("ab", -0.5),
    ("\u{2581}ab", -0.2),
    ("\u{2581}c", -0.8),
    ("\u{2581}a", -3.0),
];

fn tok(add_space_prefix: bool) -> Tokenizer {
    Tokenizer::from_vocab(&spm_vocab(&PIECES, add_space_prefix)).expect("build")
}

fn id(t: &Tokenizer, piece: &str) -> u32 {
    t.token_id(piece).expect(piece)
}

#[test]
fn pieces_merge_by_score_and_bos_comes_first() {
    let t = tok(true);
    let ids = t.encode("ab c", true).unwrap();
    assert_eq!(ids, vec![1, id(&t, "\u{2581}ab"), id(&t, "\u{2581}c")]);
    assert_eq!(t.decode(&ids, true).unwrap(), "ab c");
    assert_eq!(t.encode("ab c", false).unwrap()[0], id(&t, "\u{2581}ab"));
}

#[test]
fn unknown_characters_fall_back_to_bytes() {
    let t = tok(true);
    let ids = t.encode("é", false).unwrap();
    // ▁ then the two bytes of é (<0xC3> is id 3 + 0xC3).
    assert_eq!(ids, vec![id(&t, "\u{2581}"), 3 + 0xC3, 3 + 0xA9]);
    assert_eq!(t.decode(&ids, false).unwrap(), "é");
}

#[test]
fn without_the_space_prefix_nothing_is_prepended() {
    let t = tok(false);
    assert_eq!(t.encode("ab", false).unwrap(), vec![id(&t, "ab")]);
    assert_eq!(
        t.decode(&[id(&t, "ab"), id(&t, "\u{2581}c")], false)
            .unwrap(),
        "ab c"
    );
}

#[test]
fn streaming_keeps_the_spaces_between_words() {
    let t = tok(true);
    let ids = t.encode("ab c ab é c", false).unwrap();
    let mut detok = Detokenizer::new(true);
    let mut text = String::new();
    for &i in &ids {
        let chunk = detok.push(&t, i).unwrap();
        assert!(!chunk.contains('\u{FFFD}'));
        text.push_str(&chunk);
    }
    text.push_str(&detok.finish(&t).unwrap());
    assert_eq!(text, "ab c ab é c");
}

#[test]
fn scores_must_match_the_tokens() {
    let mut v = spm_vocab(&PIECES, true);
    if let fastlibra_kernels::tokenizer::VocabModel::SentencePiece { scores, .. } = &mut v.model {
        scores.pop();
    }
    let e = Tokenizer::from_vocab(&v).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer.ggml.scores") && e.contains("synthetic-spm.gguf"),
        "{e}"
    );
}
