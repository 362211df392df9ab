//! Reading a [`GgufVocab`] from a GGUF file's metadata, with errors that name the field.

use crate::checkpoint::{GgufFile, GgufValue};

use super::Tokenizer;
use super::error::{Result, TokenizerError};
use super::vocab::{GgufVocab, TokenType, VocabModel};

impl Tokenizer {
    /// The tokenizer a GGUF file carries (`tokenizer.ggml.*`), with its chat template
    /// (`tokenizer.chat_template`).
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        Self::from_vocab(&GgufVocab::from_gguf(file)?)
    }
}

impl GgufVocab {
    /// The tokenizer metadata of an open GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        Self::from_metadata(&file.path().display().to_string(), |key| file.get(key))
    }

    /// The tokenizer metadata from any key lookup (`origin` names the source in errors).
    pub fn from_metadata<'a>(
        origin: &str,
        get: impl Fn(&str) -> Option<&'a GgufValue>,
    ) -> Result<Self> {
        let m = Fields { origin, get: &get };
        let tokens = m
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| m.missing("tokenizer.ggml.tokens"))?;
        let token_types = match m.array("tokenizer.ggml.token_type")? {
            None => vec![TokenType::Normal; tokens.len()],
            Some(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_i64().and_then(TokenType::from_code).ok_or_else(|| {
                        m.err(
                            "tokenizer.ggml.token_type",
                            format!("entry {i}: {v:?} is not a token type 1-6"),
                        )
                    })
                })
                .collect::<Result<_>>()?,
        };
        let name = m
            .string("tokenizer.ggml.model")?
            .ok_or_else(|| m.missing("tokenizer.ggml.model"))?;
        let model = match name {
            "gpt2" => VocabModel::Gpt2 {
                merges: m
                    .strings("tokenizer.ggml.merges")?
                    .ok_or_else(|| m.missing("tokenizer.ggml.merges"))?,
                pre: m.string("tokenizer.ggml.pre")?.map(str::to_string),
            },
            "llama" => VocabModel::SentencePiece {
                scores: m
                    .floats("tokenizer.ggml.scores")?
                    .ok_or_else(|| m.missing("tokenizer.ggml.scores"))?,
                add_space_prefix: m
                    .boolean("tokenizer.ggml.add_space_prefix")?
                    .unwrap_or(true),
            },
            other => {
                return Err(TokenizerError::UnsupportedModel {
                    origin: origin.to_string(),
                    model: other.to_string(),
                });
            }
        };
        Ok(GgufVocab {
            origin: origin.to_string(),
            model,
            tokens,
            token_types,
            bos: m.id("tokenizer.ggml.bos_token_id")?,
            eos: m.id("tokenizer.ggml.eos_token_id")?,
            eot: m.id("tokenizer.ggml.eot_token_id")?,
            unk: m.id("tokenizer.ggml.unknown_token_id")?,
            add_bos: m.boolean("tokenizer.ggml.add_bos_token")?,
            add_eos: m.boolean("tokenizer.ggml.add_eos_token")?,
            chat_template: m.string("tokenizer.chat_template")?.map(str::to_string),
        })
    }
}

/// Typed access to metadata fields; a field of the wrong type is an error naming it.
struct Fields<'o, 'f, F> {
    origin: &'o str,
    get: &'f F,
}

impl<'a, F: Fn(&str) -> Option<&'a GgufValue>> Fields<'_, '_, F> {
    fn err(&self, field: &str, message: String) -> TokenizerError {
        TokenizerError::Field {
            origin: self.origin.to_string(),
            field: field.to_string(),
            message,
        }
    }

    fn missing(&self, field: &str) -> TokenizerError {
        self.err(field, "missing".to_string())
    }

    fn wrong(&self, field: &str, want: &str, v: &GgufValue) -> TokenizerError {
        self.err(field, format!("expected {want}, found {}", v.type_name()))
    }

    fn string(&self, field: &str) -> Result<Option<&'a str>> {
        match (self.get)(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "a string", v)),
        }
    }

    fn boolean(&self, field: &str) -> Result<Option<bool>> {
        match (self.get)(field) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "a bool", v)),
        }
    }

    fn id(&self, field: &str) -> Result<Option<u32>> {
        match (self.get)(field) {
            None => Ok(None),
            Some(v) => match v.as_u64().map(u32::try_from) {
                Some(Ok(id)) => Ok(Some(id)),
                _ => Err(self.wrong(field, "a token id (u32)", v)),
            },
        }
    }

    fn array(&self, field: &str) -> Result<Option<&'a [GgufValue]>> {
        match (self.get)(field) {
            None => Ok(None),
            Some(v) => v
                .as_array()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "an array", v)),
        }
    }

    fn strings(&self, field: &str) -> Result<Option<Vec<String>>> {
        let Some(items) = self.array(field)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    self.err(
                        field,
                        format!("entry {i}: expected a string, found {}", v.type_name()),
                    )
                })
            })
            .collect::<Result<_>>()
            .map(Some)
    }

    fn floats(&self, field: &str) -> Result<Option<Vec<f32>>> {
        let Some(items) = self.array(field)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64().map(|x| x as f32).ok_or_else(|| {
                    self.err(
                        field,
                        format!("entry {i}: expected a number, found {}", v.type_name()),
                    )
                })
            })
            .collect::<Result<_>>()
            .map(Some)
    }
}
