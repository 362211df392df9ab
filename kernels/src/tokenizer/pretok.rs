//! llama.cpp's pre-tokenizers for byte-level BPE vocabularies, by `tokenizer.ggml.pre` name.
//!
//! A pre-tokenizer cuts text into words before BPE merges run inside each word. llama.cpp
//! (`src/llama-vocab.cpp`, `llm_tokenizer_bpe`) gives each name a list of regular expressions
//! applied one after the other: each one splits every piece the previous ones left, keeping
//! both the matches and the text between them as pieces. That is exactly a sequence of the
//! `tokenizers` crate's `Split` pre-tokenizers with the `Isolated` behaviour, followed by the
//! byte-to-character mapping of GPT-2 (`ByteLevel` without its own regex).

use tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::tokenizer::SplitDelimiterBehavior;

use super::error::{Result, TokenizerError};

/// GPT-2's word regex, as llama.cpp writes it (its `\s+(?!\S)` alternative covers the rest
/// because the text between matches is kept as a piece).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Llama 3's word regex (case-insensitive contractions spelled out, as llama.cpp does).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2's word regex: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What a pre-tokenizer name means: its regexes and the vocabulary flags llama.cpp sets with
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreTokenizerSpec {
    /// The regexes, applied in order.
    pub regexes: Vec<&'static str>,
    /// Whether a word that is itself a token skips the merges (llama.cpp's `ignore_merges`).
    pub ignore_merges: bool,
    /// Whether a BOS token is added unless `tokenizer.ggml.add_bos_token` says otherwise.
    pub add_bos_default: bool,
}

/// The names [`pre_tokenizer_spec`] accepts, for error messages.
pub const SUPPORTED_PRE: &[&str] = &[
    "default",
    "gpt-2",
    "llama-bpe",
    "llama3",
    "llama-v3",
    "smollm",
    "starcoder",
    "refact",
    "qwen2",
];

/// The pre-tokenizer llama.cpp uses for `pre` (`None`: the file names none, which llama.cpp
/// treats as `default`). An unknown name is an error naming the file and the names known.
pub fn pre_tokenizer_spec(origin: &str, pre: Option<&str>) -> Result<PreTokenizerSpec> {
    let spec = |regexes: Vec<&'static str>| PreTokenizerSpec {
        regexes,
        ignore_merges: false,
        add_bos_default: false,
    };
    Ok(match pre.unwrap_or("default") {
        "default" => spec(vec![
            r"[\p{P}\$\+<=>\^~\|]+",
            GPT2,
            r"\p{N}+",
            r"[0-9][0-9][0-9]",
        ]),
        "gpt-2" => spec(vec![GPT2]),
        "llama-bpe" | "llama3" | "llama-v3" => PreTokenizerSpec {
            regexes: vec![LLAMA3],
            ignore_merges: true,
            add_bos_default: true,
        },
        "smollm" | "starcoder" | "refact" => spec(vec![r"\p{N}", GPT2]),
        "qwen2" => spec(vec![QWEN2]),
        other => {
            return Err(TokenizerError::UnsupportedPreTokenizer {
                origin: origin.to_string(),
                pre: other.to_string(),
                supported: SUPPORTED_PRE.join(", "),
            });
        }
    })
}

/// The `tokenizers` pre-tokenizer for `spec`: one isolating split per regex, then GPT-2's
/// byte-to-character mapping.
pub fn byte_level_pre_tokenizer(
    origin: &str,
    spec: &PreTokenizerSpec,
) -> Result<PreTokenizerWrapper> {
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(spec.regexes.len() + 1);
    for regex in &spec.regexes {
        let split = Split::new(
            SplitPattern::Regex((*regex).to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| TokenizerError::Build {
            origin: origin.to_string(),
            message: format!("pre-tokenizer regex `{regex}`: {e}"),
        })?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, true, false).into());
    Ok(Sequence::new(steps).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_name_builds() {
        for name in SUPPORTED_PRE {
            let spec = pre_tokenizer_spec("test", Some(name)).expect(name);
            byte_level_pre_tokenizer("test", &spec).expect(name);
        }
    }

    #[test]
    fn unknown_name_is_refused_with_the_list() {
        let err = pre_tokenizer_spec("m.gguf", Some("klingon")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("m.gguf") && text.contains("klingon") && text.contains("smollm"));
    }

    #[test]
    fn missing_name_means_default() {
        let spec = pre_tokenizer_spec("test", None).unwrap();
        assert_eq!(spec.regexes.len(), 4);
    }
}
