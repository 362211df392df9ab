//! vLLM's `return_token_ids`: a streamed answer carries the prompt's token ids in its first
//! chunk and every generated id in exactly one chunk, so a client can rebuild the exact
//! sequence the server computed (a multi-turn client resends it as the next turn's history
//! instead of re-encoding the text, which need not give the same ids back).

/// The token ids a stream still owes its client.
#[derive(Debug)]
pub struct StreamedIds {
    on: bool,
    prompt: Option<Vec<u32>>,
    pending: Vec<u32>,
}

impl StreamedIds {
    /// Ids for a request that asked for them (`on`), with its prompt.
    pub fn new(on: bool, prompt: &[u32]) -> StreamedIds {
        StreamedIds {
            on,
            prompt: on.then(|| prompt.to_vec()),
            pending: Vec::new(),
        }
    }

    /// Whether the request asked for ids (then every token gets a chunk, even one that adds
    /// no text yet).
    pub fn on(&self) -> bool {
        self.on
    }

    /// A generated token, to go out in the next chunk.
    pub fn push(&mut self, id: u32) {
        if self.on {
            self.pending.push(id);
        }
    }

    /// The prompt's ids, for the first chunk only.
    pub fn take_prompt(&mut self) -> Option<Vec<u32>> {
        self.prompt.take()
    }

    /// The ids generated since the last chunk (`None` when not asked for).
    pub fn take(&mut self) -> Option<Vec<u32>> {
        self.on.then(|| std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::StreamedIds;

    #[test]
    fn the_prompt_goes_once_and_every_id_exactly_once() {
        let mut ids = StreamedIds::new(true, &[1, 2]);
        assert_eq!(ids.take_prompt(), Some(vec![1, 2]));
        assert_eq!(ids.take_prompt(), None);
        ids.push(7);
        ids.push(8);
        assert_eq!(ids.take(), Some(vec![7, 8]));
        assert_eq!(ids.take(), Some(vec![]));
    }

    #[test]
    fn nothing_is_sent_when_not_asked_for() {
        let mut ids = StreamedIds::new(false, &[1, 2]);
        ids.push(7);
        assert_eq!((ids.take_prompt(), ids.take()), (None, None));
        assert!(!ids.on());
    }
}
