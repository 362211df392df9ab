//! Chat templates: a checkpoint's Jinja template that turns a conversation into prompt text.
//!
//! Rendered with `minijinja` the way `transformers` renders them with Python's `jinja2`:
//! `trim_blocks` and `lstrip_blocks` on, Python's string and dict methods (`.strip()`,
//! `.startswith()`, `.items()`, … from `minijinja-contrib`'s `pycompat`), `raise_exception`,
//! a `tojson` filter that writes what Python's `json.dumps` writes, and `strftime_now`. The
//! template sees `messages` (each with `role` and `content`), `add_generation_prompt`,
//! `bos_token` and `eos_token`.

use minijinja::Environment;
use serde::{Deserialize, Serialize};

use super::error::{Result, TokenizerError};

mod functions;

/// The name the template is stored under in its environment (it appears in error messages).
const TEMPLATE_NAME: &str = "chat_template";

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or another role the template knows.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A compiled chat template with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`. `origin` says where it came from (file and field) for errors;
    /// `bos_token` and `eos_token` are the texts the template sees under those names.
    pub fn new(source: &str, origin: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        functions::register(&mut env);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| template_err(origin, &e))?;
        Ok(Self {
            env,
            origin: origin.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The prompt text for `messages`; with `add_generation_prompt`, ending with the opening
    /// of the assistant's turn. A template that fails (or calls `raise_exception`) is an error
    /// naming the template's origin.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_err(&self.origin, &e))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        template
            .render(ctx)
            .map_err(|e| template_err(&self.origin, &e))
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The error with minijinja's message and, where it has one, the chain of causes.
fn template_err(origin: &str, e: &minijinja::Error) -> TokenizerError {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    TokenizerError::Template {
        origin: origin.to_string(),
        message,
    }
}
