//! Synthetic token ids: fixed per-adapter system prompts and random user text.
//!
//! Ids are drawn uniformly from a vocabulary of [`VOCAB_SIZE`] (Llama-2's size). They carry no
//! meaning; what matters to the engine is that equal prefixes hash equal and different ones do
//! not, so every adapter's system prompt is its own random sequence fixed by the seed.

use rand::Rng;

use super::sample::{Stream, stream_rng, uniform_u32};

/// Token ids are drawn from `0..VOCAB_SIZE`.
pub const VOCAB_SIZE: u32 = 32_000;

/// `len` uniformly random token ids.
pub fn random_tokens<R: Rng>(rng: &mut R, len: u32) -> Vec<u32> {
    (0..len).map(|_| rng.random_range(0..VOCAB_SIZE)).collect()
}

/// One fixed system prompt per adapter, derived from the seed alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemPrompts {
    prompts: Vec<Vec<u32>>,
}

impl SystemPrompts {
    /// Prompts for `adapters` adapters, each of a length uniform in `[min_len, max_len]`.
    pub fn new(seed: u64, adapters: u32, min_len: u32, max_len: u32) -> SystemPrompts {
        let mut rng = stream_rng(seed, Stream::SystemPrompts);
        let prompts = (0..adapters)
            .map(|_| {
                let len = uniform_u32(&mut rng, min_len, max_len);
                random_tokens(&mut rng, len)
            })
            .collect();
        SystemPrompts { prompts }
    }

    /// The system prompt of adapter `adapter` (empty for an index out of range).
    pub fn get(&self, adapter: u32) -> &[u32] {
        self.prompts
            .get(adapter as usize)
            .map_or(&[][..], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_fixed_by_seed_and_distinct() {
        let a = SystemPrompts::new(9, 20, 50, 60);
        assert_eq!(a, SystemPrompts::new(9, 20, 50, 60));
        assert_ne!(a, SystemPrompts::new(10, 20, 50, 60));
        assert_ne!(a.get(0), a.get(1));
        assert!((0..20).all(|i| (50..=60).contains(&a.get(i).len())));
        assert!(a.get(0).iter().all(|&t| t < VOCAB_SIZE));
        assert!(a.get(20).is_empty());
    }
}
