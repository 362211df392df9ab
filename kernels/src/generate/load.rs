//! A checkpoint made ready to generate: weights, model, tokenizer; adapters and prompts for it.

use std::path::Path;
use std::sync::Arc;

use super::error::GenerateError;
use crate::checkpoint::{Checkpoint, Format};
use crate::cpu::{CpuLora, CpuModel};
use crate::peft::load_peft;
use crate::tokenizer::{ChatMessage, Tokenizer};

/// What to generate from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Plain text, tokenised as it is (BOS added where the checkpoint says so).
    Text(String),
    /// One user message, rendered through the checkpoint's chat template with the generation
    /// prompt (`add_generation_prompt`).
    Chat(String),
}

/// A checkpoint with its CPU model and tokenizer, each loaded once and shared.
#[derive(Clone)]
pub struct LoadedModel {
    /// The weights (memory-mapped where the format allows).
    pub checkpoint: Arc<Checkpoint>,
    /// The model over those weights.
    pub model: Arc<CpuModel>,
    /// The checkpoint's own tokenizer, its vocabulary checked against the model's.
    pub tokenizer: Arc<Tokenizer>,
}

impl LoadedModel {
    /// Opens a `.gguf` file or a Hugging Face folder (shared with other holders in this
    /// process), builds the model and the tokenizer and checks they agree on the vocabulary.
    pub fn open(path: &Path) -> Result<LoadedModel, GenerateError> {
        let checkpoint = Checkpoint::open_shared(path)?;
        let model = Arc::new(CpuModel::from_checkpoint(&checkpoint)?);
        let tokenizer = match (&checkpoint.format, &checkpoint.gguf) {
            (Format::Gguf, Some(file)) => Tokenizer::from_gguf(file)?,
            _ => Tokenizer::from_hf_folder(&checkpoint.path)?,
        };
        tokenizer.check_vocab(model.config().vocab)?;
        Ok(LoadedModel {
            checkpoint,
            model,
            tokenizer: Arc::new(tokenizer),
        })
    }

    /// The checkpoint's path, as errors name it.
    pub fn name(&self) -> String {
        self.checkpoint.path.display().to_string()
    }

    /// Loads a PEFT adapter folder and checks it against this model's shapes.
    pub fn load_lora(&self, dir: &Path) -> Result<CpuLora, GenerateError> {
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| GenerateError::Adapter {
            dir: dir.to_path_buf(),
            source,
        };
        let adapter =
            load_peft(dir, &self.model.config().model_spec()).map_err(|e| bad(e.into()))?;
        CpuLora::from_adapter(self.model.config(), &adapter).map_err(|e| bad(e.into()))
    }

    /// The token ids of `prompt`.
    pub fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>, GenerateError> {
        let ids = match prompt {
            Prompt::Text(text) => self.tokenizer.encode(text, true)?,
            Prompt::Chat(text) => {
                let template = self.tokenizer.require_chat_template()?;
                let rendered = template.render(&[ChatMessage::user(text.as_str())], true)?;
                // The template writes BOS itself where the model wants it.
                self.tokenizer.encode(&rendered, false)?
            }
        };
        if ids.is_empty() {
            return Err(GenerateError::EmptyPrompt { model: self.name() });
        }
        Ok(ids)
    }
}
