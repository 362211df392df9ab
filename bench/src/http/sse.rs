//! An incremental parser of server-sent events (the `text/event-stream` format, WHATWG HTML
//! §9.2), as OpenAI-compatible servers stream completions.
//!
//! Bytes arrive in arbitrary pieces (a chunk may end mid-line or mid-character); [`SseParser`]
//! keeps the unfinished line and yields one [`SseEvent`] per blank-line-terminated event.
//! Lines end with `\n`, `\r\n` or `\r`; `:` starts a comment; `data:` lines of one event are
//! joined with `\n`; other fields (`event`, `id`, `retry`) are kept only as far as the
//! benchmark needs them (the event name). An event with no `data` line is not dispatched.

/// Most bytes one unfinished line may hold: a server that never ends a line cannot make the
/// client buffer without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any (OpenAI streams leave it out; some servers send `error`).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Why the stream cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line grew past [`MAX_LINE_BYTES`] without ending.
    #[error("a server-sent event line is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// A line is not UTF-8.
    #[error("a server-sent event line is not UTF-8")]
    NotUtf8,
}

/// The parser state: the unfinished line and the event being gathered.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous byte was `\r`: a `\n` right after it ends nothing more.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds the next bytes; appends every event they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, out)?;
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE_BYTES {
                        return Err(SseError::LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// Whether bytes of an unfinished event are buffered (the stream ended mid-event).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.data.is_some()
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut out).expect("parses");
        }
        out
    }

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: d.to_string(),
        }
    }

    #[test]
    fn events_end_at_blank_lines_with_any_line_ending() {
        let out = parse_all(&[b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n"]);
        assert_eq!(out, vec![data("a"), data("b"), data("c")]);
    }

    #[test]
    fn pieces_may_split_lines_and_crlf_pairs_anywhere() {
        let whole: &[u8] = b"data: {\"x\": 1}\r\n\r\n: keep-alive\n\ndata: [DONE]\n\n";
        for cut in 0..whole.len() {
            let out = parse_all(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(
                out,
                vec![data("{\"x\": 1}"), data("[DONE]")],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn multi_line_data_joins_and_comments_and_unknown_fields_are_skipped() {
        let out = parse_all(&[b": hi\nid: 7\nevent: error\ndata: one\ndata:two\nretry: 5\n\n"]);
        assert_eq!(
            out,
            vec![SseEvent {
                event: Some("error".into()),
                data: "one\ntwo".into()
            }]
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_partials_are_seen() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"event: ping\n\ndata: half", &mut out).expect("ok");
        assert!(out.is_empty());
        assert!(p.has_partial());
        p.feed(b"\n\n", &mut out).expect("ok");
        assert_eq!(out, vec![data("half")]);
        assert!(!p.has_partial());
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        assert_eq!(p.feed(b"data: \xff\n", &mut out), Err(SseError::NotUtf8));
        let mut p = SseParser::new();
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(p.feed(&long, &mut out), Err(SseError::LineTooLong));
    }
}
