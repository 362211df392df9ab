//! The tokenizer half of a GGUF file's metadata, as plain data.
//!
//! [`GgufVocab`] holds the `tokenizer.ggml.*` fields llama.cpp reads. It is filled from a
//! [`GgufFile`](crate::checkpoint::GgufFile) by [`GgufVocab::from_gguf`], or built by hand (tests,
//! converters); [`Tokenizer::from_vocab`](super::Tokenizer::from_vocab) turns it into a
//! tokenizer.

/// What llama.cpp's `tokenizer.ggml.token_type` says a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// An ordinary piece of text (type 1; also what a missing type array means).
    Normal,
    /// The unknown token (type 2).
    Unknown,
    /// A control token such as BOS, EOS or `<|im_end|>` (type 3): special, matched in text
    /// and dropped when decoding with `skip_special`.
    Control,
    /// A token the model's authors added (type 4): matched in text, kept when decoding.
    UserDefined,
    /// A reserved slot (type 5).
    Unused,
    /// A raw byte `<0xNN>` of a SentencePiece vocabulary (type 6).
    Byte,
}

impl TokenType {
    /// The type of llama.cpp's numeric code, or `None` for a code it does not define.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }

    /// llama.cpp's numeric code of this type.
    pub fn code(self) -> i32 {
        match self {
            Self::Normal => 1,
            Self::Unknown => 2,
            Self::Control => 3,
            Self::UserDefined => 4,
            Self::Unused => 5,
            Self::Byte => 6,
        }
    }
}

/// The tokenizer family of a GGUF vocabulary (`tokenizer.ggml.model`).
#[derive(Debug, Clone, PartialEq)]
pub enum VocabModel {
    /// `gpt2`: byte-level BPE with explicit merges and a named pre-tokenizer.
    Gpt2 {
        /// `tokenizer.ggml.merges`: `"left right"` pairs, highest priority first.
        merges: Vec<String>,
        /// `tokenizer.ggml.pre`: the pre-tokenizer name; `None` means llama.cpp's `default`.
        pre: Option<String>,
    },
    /// `llama`: a SentencePiece BPE vocabulary ranked by `tokenizer.ggml.scores`.
    SentencePiece {
        /// One score per token; higher merges first.
        scores: Vec<f32>,
        /// `tokenizer.ggml.add_space_prefix` (llama.cpp's default: true).
        add_space_prefix: bool,
    },
}

/// The tokenizer metadata of a GGUF file (`tokenizer.ggml.*`, `tokenizer.chat_template`).
#[derive(Debug, Clone)]
pub struct GgufVocab {
    /// Where the metadata came from (a file path), for error messages.
    pub origin: String,
    /// The tokenizer family and what only it needs.
    pub model: VocabModel,
    /// `tokenizer.ggml.tokens`: the text of every token, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`, one per token (all [`TokenType::Normal`] if absent).
    pub token_types: Vec<TokenType>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`, where the file names one.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`; `None` means the family's default (llama.cpp's).
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`; `None` means false.
    pub add_eos: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}
