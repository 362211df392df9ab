//! Workload token ids → what goes over the wire, and each session's conversation so far.
//!
//! - [`PromptMode::Ids`]: the ids themselves (exact prompt lengths).
//! - [`PromptMode::Tokenizer`]: the ids detokenised by the served model's own tokenizer
//!   (each id folded into its vocabulary, special tokens skipped); the length reported is the
//!   text re-encoded, so it is measured, not assumed.
//! - [`PromptMode::Words`]: one word per id from a fixed list of common English words, scaled
//!   by `tokens_per_word` (calibrated once against the server where it reports usage).
//!
//! A multi-turn session resends its whole conversation, as chat clients do: every earlier
//! prompt and the answer the server actually gave.

use std::sync::Arc;

use fastlibra_kernels::tokenizer::Tokenizer;

use super::openai::PromptBody;

/// Common short English words: most tokenizers give each one token after a space.
const WORDS: [&str; 64] = [
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "are", "with", "as", "at", "be",
    "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what", "all", "were",
    "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do", "how",
    "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so",
    "some", "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
];

/// How prompts are sent.
#[derive(Clone)]
pub enum PromptMode {
    /// Token-id arrays.
    Ids,
    /// Text from the served model's tokenizer.
    Tokenizer(Arc<Tokenizer>),
    /// Common words, `tokens_per_word` tokens each.
    Words {
        /// Tokens one word costs on the server (1.0 until calibrated).
        tokens_per_word: f64,
    },
}

impl PromptMode {
    /// How the report names it.
    pub fn describe(&self) -> String {
        match self {
            PromptMode::Ids => "token ids".into(),
            PromptMode::Tokenizer(t) => {
                format!("text detokenised by the tokenizer of {}", t.origin())
            }
            PromptMode::Words { tokens_per_word } => {
                format!("common English words, {tokens_per_word:.3} tokens per word")
            }
        }
    }

    /// `ids` as text, and its length in tokens.
    fn text_of(&self, ids: &[u32]) -> (String, u32) {
        match self {
            PromptMode::Ids => unreachable!("ids are never rendered as text"),
            PromptMode::Tokenizer(t) => {
                let vocab = t.vocab_size().max(1) as u32;
                let folded: Vec<u32> = ids
                    .iter()
                    .map(|&id| id % vocab)
                    .filter(|&id| !t.is_special(id))
                    .collect();
                let text = t.decode(&folded, true).unwrap_or_default();
                let len = t.encode(&text, false).map_or(folded.len(), |e| e.len());
                (text, len as u32)
            }
            PromptMode::Words { tokens_per_word } => {
                let words = words_for(ids.len() as f64 / tokens_per_word);
                let text: Vec<&str> = ids
                    .iter()
                    .cycle()
                    .take(words)
                    .map(|&id| WORDS[id as usize % WORDS.len()])
                    .collect();
                let text = format!(" {}", text.join(" "));
                (text, (words as f64 * tokens_per_word).round() as u32)
            }
        }
    }
}

/// Words for `n` tokens' worth of text (at least one).
fn words_for(n: f64) -> usize {
    (n.round() as usize).max(1)
}

/// The calibration prompt: `n` words.
pub fn calibration_text(n: usize) -> String {
    let words: Vec<&str> = (0..n).map(|i| WORDS[i % WORDS.len()]).collect();
    format!(" {}", words.join(" "))
}

/// One session's conversation so far.
#[derive(Clone, Debug, Default)]
pub struct Conversation {
    ids: Vec<u32>,
    text: String,
    tokens: u32,
    /// Answers resent as filler ids because the server gave no ids and there is no tokenizer.
    pub filled_answers: u32,
}

/// A prompt ready to send, with the new part kept to extend the conversation once answered.
pub struct Turn {
    /// What goes in `prompt`.
    pub body: PromptBody,
    /// Its length in tokens (exact for ids, measured or calibrated for text).
    pub tokens: u32,
    new_ids: Vec<u32>,
    new_text: String,
    new_tokens: u32,
}

impl Conversation {
    /// The prompt of the next turn: the whole conversation plus `user` tokens.
    pub fn turn(&self, mode: &PromptMode, user: &[u32]) -> Turn {
        match mode {
            PromptMode::Ids => {
                let mut ids = self.ids.clone();
                ids.extend_from_slice(user);
                Turn {
                    tokens: ids.len() as u32,
                    body: PromptBody::Ids(ids),
                    new_ids: user.to_vec(),
                    new_text: String::new(),
                    new_tokens: user.len() as u32,
                }
            }
            _ => {
                let (new_text, new_tokens) = mode.text_of(user);
                Turn {
                    body: PromptBody::Text(format!("{}{new_text}", self.text)),
                    tokens: self.tokens + new_tokens,
                    new_ids: Vec::new(),
                    new_text,
                    new_tokens,
                }
            }
        }
    }

    /// The turn was answered with `text` (`ids` where the server sent them, `tokens` long):
    /// both join the conversation.
    pub fn answered(
        &mut self,
        mode: &PromptMode,
        turn: Turn,
        text: &str,
        ids: &[u32],
        tokens: u32,
    ) {
        self.tokens += turn.new_tokens + tokens;
        match mode {
            PromptMode::Ids => {
                self.ids.extend(turn.new_ids);
                if !ids.is_empty() {
                    self.ids.extend_from_slice(ids);
                } else {
                    // No ids from the server and no tokenizer here: keep the length right
                    // with a filler (the server's cached answer KV will not match it).
                    self.filled_answers += 1;
                    self.ids
                        .extend(std::iter::repeat_n(WORD_FILLER_ID, tokens as usize));
                }
            }
            _ => {
                self.text.push_str(&turn.new_text);
                self.text.push_str(text);
            }
        }
    }
}

/// The id resent for an answer token the client cannot know (a common id in most
/// vocabularies' lower range).
const WORD_FILLER_ID: u32 = 1000;

/// Ids of an answer for the conversation: the server's, else `tokenizer`'s encoding.
pub fn answer_ids(server_ids: &[u32], text: &str, tokenizer: Option<&Tokenizer>) -> Vec<u32> {
    if !server_ids.is_empty() {
        return server_ids.to_vec();
    }
    tokenizer
        .and_then(|t| t.encode(text, false).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_prompts_resend_the_whole_conversation() {
        let mut c = Conversation::default();
        let t = c.turn(&PromptMode::Ids, &[1, 2, 3]);
        assert_eq!(t.body, PromptBody::Ids(vec![1, 2, 3]));
        assert_eq!(t.tokens, 3);
        c.answered(&PromptMode::Ids, t, "ab", &[7, 8], 2);
        let t = c.turn(&PromptMode::Ids, &[4]);
        assert_eq!(t.body, PromptBody::Ids(vec![1, 2, 3, 7, 8, 4]));
        assert_eq!(t.tokens, 6);
        c.answered(&PromptMode::Ids, t, "x", &[], 2);
        assert_eq!(c.filled_answers, 1);
        let t = c.turn(&PromptMode::Ids, &[5]);
        assert_eq!(t.tokens, 9);
    }

    #[test]
    fn word_prompts_have_the_calibrated_length_and_grow_with_answers() {
        let mode = PromptMode::Words {
            tokens_per_word: 2.0,
        };
        let mut c = Conversation::default();
        let t = c.turn(&mode, &[0, 1, 2, 3, 4, 5]);
        let PromptBody::Text(text) = &t.body else {
            panic!("text expected");
        };
        assert_eq!(text.split_whitespace().count(), 3);
        assert_eq!(t.tokens, 6);
        c.answered(&mode, t, " answer", &[], 4);
        let t = c.turn(&mode, &[9, 9]);
        let PromptBody::Text(text) = &t.body else {
            panic!("text expected");
        };
        assert!(text.contains(" answer "));
        assert_eq!(t.tokens, 6 + 4 + 2);
    }

    #[test]
    fn answer_ids_prefer_the_servers() {
        assert_eq!(answer_ids(&[3, 4], "x", None), vec![3, 4]);
        assert!(answer_ids(&[], "x", None).is_empty());
        assert_eq!(calibration_text(3), " the of and");
    }
}
