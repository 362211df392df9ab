//! A `tokenizers` tokenizer built from a GGUF vocabulary: the same tokenizer llama.cpp runs,
//! expressed as a BPE model, a normalizer or pre-tokenizer, added tokens and a decoder.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper};

use super::error::{Result, TokenizerError};
use super::pretok::{byte_level_pre_tokenizer, pre_tokenizer_spec};
use super::spm::merges_from_scores;
use super::vocab::{GgufVocab, TokenType, VocabModel};

/// SentencePiece's word-boundary mark, which stands for a space inside tokens.
const SPM_SPACE: &str = "\u{2581}";

/// Builds the tokenizer `vocab` describes, after checking that its arrays agree. BOS and EOS
/// are added by a post-processor, so `encode(.., add_special)` and an exported
/// `tokenizer.json` both add them.
pub fn build(vocab: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    check(vocab)?;
    let origin = vocab.origin.as_str();
    let index = token_index(vocab)?;
    let map: Vocab = index.iter().map(|(t, &i)| (t.to_string(), i)).collect();
    let build_err = |message: String| TokenizerError::Build {
        origin: origin.to_string(),
        message,
    };
    let (mut inner, add_bos_default) = match &vocab.model {
        VocabModel::Gpt2 { merges, pre } => {
            let spec = pre_tokenizer_spec(origin, pre.as_deref())?;
            let merges = parse_merges(origin, merges)?;
            let bpe = BPE::builder()
                .vocab_and_merges(map, merges)
                .ignore_merges(spec.ignore_merges)
                .build()
                .map_err(|e| build_err(e.to_string()))?;
            let mut t = tokenizers::Tokenizer::new(bpe);
            t.with_pre_tokenizer(Some(byte_level_pre_tokenizer(origin, &spec)?));
            t.with_decoder(Some(ByteLevel::default()));
            (t, spec.add_bos_default)
        }
        VocabModel::SentencePiece {
            scores,
            add_space_prefix,
        } => {
            let merges = merges_from_scores(&vocab.tokens, scores, &index);
            let mut builder = BPE::builder()
                .vocab_and_merges(map, merges)
                .byte_fallback(true)
                .fuse_unk(true);
            if let Some(unk) = vocab.unk {
                builder = builder.unk_token(vocab.tokens[unk as usize].clone());
            }
            let bpe = builder.build().map_err(|e| build_err(e.to_string()))?;
            let mut t = tokenizers::Tokenizer::new(bpe);
            t.with_normalizer(Some(spm_normalizer(*add_space_prefix).map_err(build_err)?));
            t.with_decoder(Some(spm_decoder(*add_space_prefix).map_err(build_err)?));
            (t, true)
        }
    };
    add_vocab_tokens(&mut inner, vocab);
    let add_bos = vocab.add_bos.unwrap_or(add_bos_default);
    let add_eos = vocab.add_eos.unwrap_or(false);
    if let Some(post) = special_post_processor(vocab, add_bos, add_eos)? {
        inner.with_post_processor(Some(post));
    }
    Ok(inner)
}

/// `BOS $A EOS` (each where asked for) as a post-processor; `None` when nothing is added.
fn special_post_processor(
    vocab: &GgufVocab,
    add_bos: bool,
    add_eos: bool,
) -> Result<Option<TemplateProcessing>> {
    let field_err = |field: &str, message: &str| TokenizerError::Field {
        origin: vocab.origin.clone(),
        field: field.to_string(),
        message: message.to_string(),
    };
    let mut single: Vec<String> = Vec::new();
    let mut specials: Vec<(String, u32)> = Vec::new();
    let mut special =
        |flag: bool, id: Option<u32>, flag_field: &str, id_field: &str| -> Result<Option<String>> {
            if !flag {
                return Ok(None);
            }
            let id = id.ok_or_else(|| {
                field_err(flag_field, &format!("true, but `{id_field}` is not set"))
            })?;
            let text = vocab.tokens[id as usize].clone();
            specials.push((text.clone(), id));
            Ok(Some(text))
        };
    let bos = special(
        add_bos,
        vocab.bos,
        "tokenizer.ggml.add_bos_token",
        "tokenizer.ggml.bos_token_id",
    )?;
    let eos = special(
        add_eos,
        vocab.eos,
        "tokenizer.ggml.add_eos_token",
        "tokenizer.ggml.eos_token_id",
    )?;
    if bos.is_none() && eos.is_none() {
        return Ok(None);
    }
    single.extend(bos);
    single.push("$A".to_string());
    single.extend(eos);
    let build_err = |e: String| TokenizerError::Build {
        origin: vocab.origin.clone(),
        message: format!("BOS/EOS post-processor {single:?}: {e}"),
    };
    TemplateProcessing::builder()
        .try_single(single.clone())
        .map_err(|e| build_err(e.to_string()))?
        .special_tokens(specials)
        .build()
        .map(Some)
        .map_err(|e| build_err(e.to_string()))
}

/// The arrays have one entry per token and the special ids are tokens.
fn check(vocab: &GgufVocab) -> Result<()> {
    let n = vocab.tokens.len();
    let field_err = |field: &str, message: String| TokenizerError::Field {
        origin: vocab.origin.clone(),
        field: field.to_string(),
        message,
    };
    if n == 0 || n > u32::MAX as usize {
        return Err(field_err("tokenizer.ggml.tokens", format!("{n} tokens")));
    }
    if vocab.token_types.len() != n {
        let found = vocab.token_types.len();
        let message = format!("{found} entries for {n} tokens");
        return Err(field_err("tokenizer.ggml.token_type", message));
    }
    if let VocabModel::SentencePiece { scores, .. } = &vocab.model
        && scores.len() != n
    {
        let message = format!("{} entries for {n} tokens", scores.len());
        return Err(field_err("tokenizer.ggml.scores", message));
    }
    let ids = [
        ("tokenizer.ggml.bos_token_id", vocab.bos),
        ("tokenizer.ggml.eos_token_id", vocab.eos),
        ("tokenizer.ggml.eot_token_id", vocab.eot),
        ("tokenizer.ggml.unknown_token_id", vocab.unk),
    ];
    for (field, id) in ids {
        if let Some(id) = id
            && id as usize >= n
        {
            return Err(field_err(field, format!("id {id} is not below {n} tokens")));
        }
    }
    Ok(())
}

/// Each token's text and id; a text that appears twice is an error (the BPE model would lose
/// one of the ids).
fn token_index(vocab: &GgufVocab) -> Result<HashMap<&str, u32>> {
    let mut index = HashMap::with_capacity(vocab.tokens.len());
    for (id, token) in vocab.tokens.iter().enumerate() {
        if let Some(first) = index.insert(token.as_str(), id as u32) {
            return Err(TokenizerError::Field {
                origin: vocab.origin.clone(),
                field: "tokenizer.ggml.tokens".to_string(),
                message: format!("token {token:?} appears at ids {first} and {id}"),
            });
        }
    }
    Ok(index)
}

/// `"left right"` merge strings as pairs. Like llama.cpp, the separator is the first space
/// after the first character, so a left part may itself begin with a space.
fn parse_merges(origin: &str, merges: &[String]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let first = m.chars().next().map_or(0, char::len_utf8);
            let at = m[first..].find(' ').map(|p| p + first);
            match at {
                Some(at) => Ok((m[..at].to_string(), m[at + 1..].to_string())),
                None => Err(TokenizerError::Field {
                    origin: origin.to_string(),
                    field: "tokenizer.ggml.merges".to_string(),
                    message: format!("entry {i} ({m:?}) is not two tokens separated by a space"),
                }),
            }
        })
        .collect()
}

/// Control and unknown tokens become special added tokens (matched in text, skipped when
/// decoding with `skip_special`); user-defined tokens become ordinary added tokens (matched
/// in text, always decoded). Both match the raw text, as llama.cpp matches them.
fn add_vocab_tokens(inner: &mut tokenizers::Tokenizer, vocab: &GgufVocab) {
    let mut special = Vec::new();
    let mut added = Vec::new();
    for (token, kind) in vocab.tokens.iter().zip(&vocab.token_types) {
        match kind {
            TokenType::Control | TokenType::Unknown => {
                special.push(AddedToken::from(token.clone(), true).normalized(false));
            }
            TokenType::UserDefined => {
                added.push(AddedToken::from(token.clone(), false).normalized(false));
            }
            TokenType::Normal | TokenType::Unused | TokenType::Byte => {}
        }
    }
    inner.add_special_tokens(&special);
    inner.add_tokens(&added);
}

/// SentencePiece's text preparation: a leading space (if the file asks for one) and every
/// space as `▁`.
fn spm_normalizer(add_space_prefix: bool) -> std::result::Result<NormalizerWrapper, String> {
    let replace = Replace::new(" ", SPM_SPACE).map_err(|e| e.to_string())?;
    Ok(if add_space_prefix {
        let prepend = Prepend::new(SPM_SPACE.to_string());
        NormalizerSequence::new(vec![prepend.into(), replace.into()]).into()
    } else {
        replace.into()
    })
}

/// The inverse of [`spm_normalizer`]: `▁` back to spaces, `<0xNN>` tokens back to bytes, and
/// the leading space removed.
fn spm_decoder(add_space_prefix: bool) -> std::result::Result<DecoderWrapper, String> {
    let replace = Replace::new(SPM_SPACE, " ").map_err(|e| e.to_string())?;
    let mut steps: Vec<DecoderWrapper> = vec![
        replace.into(),
        ByteFallback::default().into(),
        Fuse::default().into(),
    ];
    if add_space_prefix {
        steps.push(Strip::new(' ', 1, 0).into());
    }
    Ok(DecoderSequence::new(steps).into())
}
