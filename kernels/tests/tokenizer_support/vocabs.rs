//! Small hand-built vocabularies: byte-level BPE (GPT-2 style) and SentencePiece.

use fastlibra_kernels::tokenizer::{GgufVocab, TokenType, VocabModel};

/// Control tokens at ids 0–2 and a user-defined one at 3, in every byte-level vocabulary.
pub const SPECIALS: [(&str, TokenType); 4] = [
    ("<|endoftext|>", TokenType::Control),
    ("<|im_start|>", TokenType::Control),
    ("<|im_end|>", TokenType::Control),
    ("<tool>", TokenType::UserDefined),
];

/// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the others
/// for U+0100 onwards in byte order.
pub fn byte_chars() -> Vec<char> {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap()
            }
        })
        .collect()
}

/// `text` in byte-level characters (a space becomes `Ġ`).
pub fn byte_level(text: &str) -> String {
    let table = byte_chars();
    text.bytes().map(|b| table[b as usize]).collect()
}

/// The id of byte `b` in [`byte_level_vocab`].
pub fn byte_id(b: u8) -> u32 {
    SPECIALS.len() as u32 + u32::from(b)
}

/// A byte-level vocabulary: [`SPECIALS`], the 256 bytes, then one token per merge (given as
/// plain text), in merge order. EOS is `<|im_end|>`, BOS `<|im_start|>`.
pub fn byte_level_vocab(pre: Option<&str>, merges: &[(&str, &str)]) -> GgufVocab {
    let mut tokens: Vec<String> = SPECIALS.iter().map(|(t, _)| t.to_string()).collect();
    let mut token_types: Vec<TokenType> = SPECIALS.iter().map(|(_, k)| *k).collect();
    tokens.extend(byte_chars().iter().map(|c| c.to_string()));
    token_types.extend([TokenType::Normal; 256]);
    let mut merge_strings = Vec::new();
    for (l, r) in merges {
        merge_strings.push(format!("{} {}", byte_level(l), byte_level(r)));
        tokens.push(byte_level(&format!("{l}{r}")));
        token_types.push(TokenType::Normal);
    }
    GgufVocab {
        origin: "synthetic.gguf".to_string(),
        model: VocabModel::Gpt2 {
            merges: merge_strings,
            pre: pre.map(str::to_string),
        },
        tokens,
        token_types,
        bos: Some(1),
        eos: Some(2),
        eot: None,
        unk: None,
        add_bos: None,
        add_eos: None,
        chat_template: None,
    }
}

/// A SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `pieces`
/// with their scores.
pub fn spm_vocab(pieces: &[(&str, f32)], add_space_prefix: bool) -> GgufVocab {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut token_types = vec![TokenType::Unknown, TokenType::Control, TokenType::Control];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        token_types.push(TokenType::Byte);
        scores.push(0.0);
    }
    for (piece, score) in pieces {
        tokens.push(piece.to_string());
        token_types.push(TokenType::Normal);
        scores.push(*score);
    }
    GgufVocab {
        origin: "synthetic-spm.gguf".to_string(),
        model: VocabModel::SentencePiece {
            scores,
            add_space_prefix,
        },
        tokens,
        token_types,
        bos: Some(1),
        eos: Some(2),
        eot: None,
        unk: Some(0),
        add_bos: None,
        add_eos: None,
        chat_template: None,
    }
}
