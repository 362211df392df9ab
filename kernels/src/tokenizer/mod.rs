//! A checkpoint's own tokenizer and chat template: text to token ids and back.
//!
//! The tokenizer runs on Hugging Face's `tokenizers` crate (pure Rust: `fancy-regex`, no
//! Oniguruma). It comes from one of two places, and both give the same [`Tokenizer`]:
//!
//! ```text
//!   tokenizer.json (+ tokenizer_config.json,     GGUF metadata tokenizer.ggml.*
//!    chat_template.jinja)                         │ GgufVocab::from_gguf
//!        │ from_file / from_hf_folder             ▼
//!        │                                      GgufVocab ── from_vocab ──┐
//!        ▼                                     (gpt2: merges + pre-tokenizer by name,
//!   tokenizers::Tokenizer ◄──────────────────── llama: SentencePiece scores as merges)
//!        │
//!        ▼
//!   Tokenizer ── encode(text, add_special) ──► ids ── decode(ids, skip_special) ──► text
//!        │                                      │
//!        │ chat_template()                      └─► Detokenizer: one id at a time, whole
//!        ▼                                          UTF-8 characters only (streaming)
//!   ChatTemplate ── render(messages, add_generation_prompt) ──► prompt text
//! ```
//!
//! A GGUF vocabulary is rebuilt the way llama.cpp reads it (`src/llama-vocab.cpp`): the
//! pre-tokenizer regexes of the name in `tokenizer.ggml.pre` ([`pretok`]), control and
//! user-defined tokens as added tokens matched in text, BOS/EOS from the file, BOS added when
//! `tokenizer.ggml.add_bos_token` (or the family's default) says so. Its ids equal
//! llama.cpp's (`kernels/tests/tokenizer_llama_cpp.rs` checks them on mixed text).
//!
//! Added and special tokens in the text are always recognised (as in `transformers` and in
//! llama.cpp with `parse_special`), so a rendered chat template tokenises into its control
//! tokens. Decoding does not "clean up" spaces before punctuation, so decoding an encoding
//! gives the text back.

mod build;
mod chat;
mod detok;
mod error;
mod gguf;
mod hf;
pub mod pretok;
mod spm;
mod vocab;

pub use chat::{ChatMessage, ChatTemplate};
pub use detok::Detokenizer;
pub use error::{Result, TokenizerError};
pub use hf::{CHAT_TEMPLATE_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE};
pub use vocab::{GgufVocab, TokenType, VocabModel};

/// Token texts that end a turn or a generation wherever a vocabulary has them (llama.cpp's
/// end-of-generation list).
const END_OF_TURN: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

/// A checkpoint's tokenizer: encoding, decoding, its special tokens and its chat template.
/// Cheap to share (`Send + Sync`); one per loaded model.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    origin: String,
    vocab_size: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Vec<u32>,
    special: Vec<u32>,
    chat_template: Option<ChatTemplate>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("origin", &self.origin)
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eot", &self.eot)
            .finish_non_exhaustive()
    }
}

/// The parts every constructor gathers before [`Tokenizer::assemble`].
struct Parts {
    inner: tokenizers::Tokenizer,
    origin: String,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    template: Option<(String, String)>,
}

impl Tokenizer {
    /// The tokenizer a GGUF vocabulary describes (see [`GgufVocab`]).
    pub fn from_vocab(vocab: &GgufVocab) -> Result<Self> {
        let inner = build::build(vocab)?;
        let template = vocab.chat_template.clone().map(|t| {
            let origin = format!("{} (tokenizer.chat_template)", vocab.origin);
            (t, origin)
        });
        Self::assemble(Parts {
            inner,
            origin: vocab.origin.clone(),
            bos: vocab.bos,
            eos: vocab.eos,
            eot: vocab.eot,
            template,
        })
    }

    fn assemble(parts: Parts) -> Result<Self> {
        let vocab_size = parts
            .inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1);
        let mut eot: Vec<u32> = parts.eos.into_iter().chain(parts.eot).collect();
        eot.extend(
            END_OF_TURN
                .iter()
                .filter_map(|t| parts.inner.token_to_id(t)),
        );
        eot.sort_unstable();
        eot.dedup();
        let decoder = parts.inner.get_added_tokens_decoder();
        let mut special: Vec<u32> = decoder
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&id, _)| id)
            .collect();
        special.sort_unstable();
        let text_of = |id: Option<u32>| {
            id.and_then(|i| parts.inner.id_to_token(i))
                .unwrap_or_default()
        };
        let chat_template = match parts.template {
            Some((source, origin)) => Some(ChatTemplate::new(
                &source,
                &origin,
                &text_of(parts.bos),
                &text_of(parts.eos),
            )?),
            None => None,
        };
        Ok(Self {
            inner: parts.inner,
            origin: parts.origin,
            vocab_size,
            bos: parts.bos,
            eos: parts.eos,
            eot,
            special,
            chat_template,
        })
    }

    /// The token ids of `text`. With `add_special`, BOS (and EOS) are added where the
    /// checkpoint says so; special tokens written in the text are recognised either way.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, add_special)
            .map_err(|e| self.codec_err(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`; with `skip_special`, control tokens (BOS, `<|im_end|>`, …) are
    /// left out. An id outside the vocabulary is an error. Bytes that do not form whole
    /// UTF-8 characters become U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(TokenizerError::UnknownToken {
                id,
                vocab_size: self.vocab_size,
            });
        }
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| self.codec_err(e))
    }

    /// The token's own text as the vocabulary spells it (`Ġthe`, `<|im_end|>`).
    pub fn token_str(&self, id: u32) -> Result<String> {
        self.inner
            .id_to_token(id)
            .ok_or(TokenizerError::UnknownToken {
                id,
                vocab_size: self.vocab_size,
            })
    }

    /// The id of a token's own text, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether `id` is a special (control) token, dropped by `decode(.., skip_special)`.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.binary_search(&id).is_ok()
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Every token that ends a generation: EOS, the file's end-of-turn token, and the
    /// end-of-turn tokens (`<|im_end|>`, `<|eot_id|>`, …) the vocabulary has. Sorted.
    pub fn eot_tokens(&self) -> &[u32] {
        &self.eot
    }

    /// One more than the highest token id (the rows a model's embedding must have).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Checks that a model with `model_vocab` embedding rows matches this tokenizer.
    pub fn check_vocab(&self, model_vocab: usize) -> Result<()> {
        if model_vocab == self.vocab_size {
            return Ok(());
        }
        Err(TokenizerError::VocabMismatch {
            origin: self.origin.clone(),
            tokenizer: self.vocab_size,
            model: model_vocab,
        })
    }

    /// The checkpoint's chat template, if it has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// The chat template, or an error naming the checkpoint if it has none.
    pub fn require_chat_template(&self) -> Result<&ChatTemplate> {
        self.chat_template
            .as_ref()
            .ok_or_else(|| TokenizerError::NoChatTemplate {
                origin: self.origin.clone(),
            })
    }

    /// The tokenizer as a Hugging Face `tokenizer.json` (for example a GGUF file's tokenizer,
    /// exported for other tools).
    pub fn to_tokenizer_json(&self) -> Result<String> {
        self.inner.to_string(true).map_err(|e| self.codec_err(e))
    }

    /// Where this tokenizer came from (a file or folder path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn codec_err(&self, e: impl std::fmt::Display) -> TokenizerError {
        TokenizerError::Codec {
            origin: self.origin.clone(),
            message: e.to_string(),
        }
    }
}
