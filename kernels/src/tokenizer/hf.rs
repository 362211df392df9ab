//! Tokenizers from Hugging Face files: `tokenizer.json`, with `tokenizer_config.json` (BOS,
//! EOS, the chat template) and `chat_template.jinja` when they sit beside it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{Result, TokenizerError};
use super::{Parts, Tokenizer};

/// The tokenizer file of a Hugging Face folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The tokenizer config of a Hugging Face folder.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// The chat template file newer `transformers` versions write.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

impl Tokenizer {
    /// The tokenizer in a `tokenizer.json` file alone: no BOS/EOS beyond what its
    /// post-processor adds, and no chat template.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::assemble(Parts {
            inner: load_tokenizer_json(path)?,
            origin: path.display().to_string(),
            bos: None,
            eos: None,
            eot: None,
            template: None,
        })
    }

    /// The tokenizer of a Hugging Face model folder: `tokenizer.json`, plus BOS, EOS and the
    /// chat template from `tokenizer_config.json` (a string, or a list of named templates of
    /// which `default` is used) or from `chat_template.jinja`, which wins when both exist.
    /// BOS and EOS are added by `tokenizer.json`'s own post-processor, as `transformers` does.
    pub fn from_hf_folder(dir: &Path) -> Result<Self> {
        let inner = load_tokenizer_json(&dir.join(TOKENIZER_FILE))?;
        let config_path = dir.join(TOKENIZER_CONFIG_FILE);
        let config = if config_path.exists() {
            read_json(&config_path)?
        } else {
            Value::Null
        };
        let origin = dir.display().to_string();
        let special_id = |field: &str| -> Result<Option<u32>> {
            let Some(text) = token_field(&config_path, &config, field)? else {
                return Ok(None);
            };
            inner
                .token_to_id(&text)
                .map(Some)
                .ok_or_else(|| TokenizerError::Field {
                    origin: config_path.display().to_string(),
                    field: field.to_string(),
                    message: format!("token {text:?} is not in {TOKENIZER_FILE}"),
                })
        };
        let bos = special_id("bos_token")?;
        let eos = special_id("eos_token")?;
        let template = chat_template(dir, &config_path, &config)?;
        Self::assemble(Parts {
            inner,
            origin,
            bos,
            eos,
            eot: None,
            template,
        })
    }
}

fn load_tokenizer_json(path: &Path) -> Result<tokenizers::Tokenizer> {
    let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| TokenizerError::Build {
        origin: path.display().to_string(),
        message: e.to_string(),
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| TokenizerError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A token field of `tokenizer_config.json`: a string, an `AddedToken` object with
/// `content`, or null/absent.
fn token_field(path: &Path, config: &Value, field: &str) -> Result<Option<String>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(field_err(
                path,
                field,
                "an object without a string `content`",
            )),
        },
        Some(_) => Err(field_err(path, field, "neither a string nor an object")),
    }
}

/// The chat template source and where it came from.
fn chat_template(dir: &Path, path: &Path, config: &Value) -> Result<Option<(String, String)>> {
    let jinja = dir.join(CHAT_TEMPLATE_FILE);
    if jinja.exists() {
        let text = std::fs::read_to_string(&jinja).map_err(|source| TokenizerError::Io {
            path: jinja.clone(),
            source,
        })?;
        return Ok(Some((text, jinja.display().to_string())));
    }
    let origin = format!("{} (chat_template)", path.display());
    match config.get("chat_template") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some((s.clone(), origin))),
        Some(Value::Array(list)) => {
            let named = list
                .iter()
                .find(|t| t.get("name") == Some(&Value::from("default")));
            match named
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
            {
                Some(s) => Ok(Some((s.to_string(), format!("{origin}[default]")))),
                None => Err(field_err(
                    path,
                    "chat_template",
                    "a list without a `default` template",
                )),
            }
        }
        Some(_) => Err(field_err(
            path,
            "chat_template",
            "neither a string nor a list",
        )),
    }
}

fn field_err(path: &Path, field: &str, message: &str) -> TokenizerError {
    TokenizerError::Field {
        origin: PathBuf::from(path).display().to_string(),
        field: field.to_string(),
        message: message.to_string(),
    }
}
