//! Streaming detokenisation: the text of each new token, in whole UTF-8 characters.
//!
//! A token's text depends on its neighbours (SentencePiece drops the leading space of the first
//! token only; byte-level BPE can cut a character between two tokens), so a stream cannot
//! decode tokens one by one. Like text-generation-inference's and vLLM's incremental decoders
//! (their "prefix offset" and "read offset"), [`Detokenizer`] keeps a short window of ids: the
//! ids of the last emitted chunk (context, already emitted) and the ids held since. Each new id
//! decodes the context alone and the whole window; the difference is the new text, emitted only
//! when it does not end in U+FFFD, the mark of a character whose bytes have not all arrived.
//!
//! ```text
//!   window:  [ context ids (emitted) | held ids … | new id ]
//!            └──── decode ────┘
//!            └──────────── decode ────────────────────┘   new text = the difference
//! ```

use super::Tokenizer;
use super::error::Result;

/// The most ids held back waiting for a character to complete. A UTF-8 character has at most
/// four bytes and every token carries at least one, so a longer run ending in U+FFFD holds
/// bytes that are not valid UTF-8; they are emitted as U+FFFD, as `decode` would show them.
const HOLD_IDS_MAX: usize = 16;

/// How many prompt ids [`Detokenizer::after_prompt`] keeps as decoding context.
const PROMPT_CONTEXT_IDS: usize = 6;

/// Turns a stream of token ids into a stream of text chunks that never split a UTF-8
/// character. The chunks joined equal `decode` of all the ids.
#[derive(Debug, Clone)]
pub struct Detokenizer {
    /// The window: context ids, then held ids.
    ids: Vec<u32>,
    /// How many of `ids` are context (their text is already emitted).
    read: usize,
    skip_special: bool,
}

impl Detokenizer {
    /// A detokenizer for a stream that starts from nothing. With `skip_special`, control
    /// tokens produce no text.
    pub fn new(skip_special: bool) -> Self {
        Self {
            ids: Vec::new(),
            read: 0,
            skip_special,
        }
    }

    /// A detokenizer for the tokens generated after `prompt`: the prompt's last ids give
    /// the first new token the right context (its leading space), but are not emitted.
    pub fn after_prompt(prompt: &[u32], skip_special: bool) -> Self {
        let start = prompt.len().saturating_sub(PROMPT_CONTEXT_IDS);
        let ids = prompt[start..].to_vec();
        let read = ids.len();
        Self {
            ids,
            read,
            skip_special,
        }
    }

    /// Adds one id and returns the text it completes (often empty while a character is
    /// incomplete). An id outside the vocabulary is an error and leaves the state unchanged.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        match self.emit(tokenizer, false) {
            Ok(text) => Ok(text),
            Err(e) => {
                self.ids.pop();
                Err(e)
            }
        }
    }

    /// The text still held back, emitted as it is (an incomplete character as U+FFFD). Call
    /// once when the stream ends.
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<String> {
        self.emit(tokenizer, true)
    }

    fn emit(&mut self, tokenizer: &Tokenizer, finish: bool) -> Result<String> {
        let skip = self.skip_special;
        let before = tokenizer.decode(&self.ids[..self.read], skip)?;
        let after = tokenizer.decode(&self.ids, skip)?;
        let force = finish || self.ids.len() - self.read >= HOLD_IDS_MAX;
        let complete = after.len() > before.len() && !after.ends_with('\u{FFFD}');
        if !complete && !force {
            return Ok(String::new());
        }
        let new = after.get(before.len()..).unwrap_or_default().to_string();
        // The ids just emitted become the next window's context; older ones are not needed.
        self.ids.drain(..self.read);
        self.read = self.ids.len();
        Ok(new)
    }
}
