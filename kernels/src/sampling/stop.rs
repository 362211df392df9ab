//! Stop strings on streamed text: hold back what might be the start of one, cut at a match.

/// Matches stop strings on text that arrives in chunks. Text is emitted only once it cannot
/// be the start of a stop string; a stop string, and everything after it, is never emitted.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    pending: String,
}

/// What one chunk of text produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopCheck {
    /// Text that can be shown now.
    pub text: String,
    /// Whether a stop string matched (the generation ends; `text` is what came before it).
    pub stopped: bool,
}

impl StopStrings {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Adds a chunk of text.
    pub fn push(&mut self, chunk: &str) -> StopCheck {
        self.pending.push_str(chunk);
        let first_match = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = first_match {
            let text = self.pending[..at].to_string();
            self.pending.clear();
            return StopCheck {
                text,
                stopped: true,
            };
        }
        let hold = self.partial_match_len();
        let emit_to = self.pending.len() - hold;
        let text = self.pending[..emit_to].to_string();
        self.pending.drain(..emit_to);
        StopCheck {
            text,
            stopped: false,
        }
    }

    /// The text held back at the end of the stream (it did not become a stop string).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// The length of the longest end of `pending` that begins some stop string.
    fn partial_match_len(&self) -> usize {
        let p = self.pending.as_str();
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let from = p.len().saturating_sub(longest.saturating_sub(1));
        (from..p.len())
            .filter(|&i| p.is_char_boundary(i))
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&p[i..])))
            .map_or(0, |i| p.len() - i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], chunks: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopStrings::new(&stops);
        let mut out = String::new();
        for c in chunks {
            let r = m.push(c);
            out.push_str(&r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn a_stop_split_over_chunks_is_found_and_not_emitted() {
        assert_eq!(
            run(&["\nUser:"], &["Hi", " there\n", "Us", "er: more"]),
            ("Hi there".into(), true)
        );
    }

    #[test]
    fn a_false_start_is_released() {
        assert_eq!(run(&["STOP"], &["ST", "OP", "x"]), (String::new(), true));
        assert_eq!(run(&["STOP"], &["ST", "ay"]), ("STay".into(), false));
    }

    #[test]
    fn partial_match_holds_only_what_could_match() {
        let mut m = StopStrings::new(&["abc".to_string()]);
        assert_eq!(m.push("xxab").text, "xx");
        assert_eq!(m.push("d").text, "abd");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        assert_eq!(
            run(&["world", "lo"], &["hello world"]),
            ("hel".into(), true)
        );
    }

    #[test]
    fn multibyte_text_is_held_on_character_boundaries() {
        assert_eq!(run(&["é!"], &["caf", "é", "?"]), ("café?".into(), false));
        assert_eq!(run(&["é!"], &["caf", "é", "!"]), ("caf".into(), true));
    }
}
