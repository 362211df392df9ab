//! SentencePiece BPE vocabularies (`tokenizer.ggml.model = llama`) as ranked merges.
//!
//! llama.cpp's SPM tokenizer starts from single characters and repeatedly joins the adjacent
//! pair whose concatenation is a token with the highest score (the leftmost on ties). A BPE
//! model does the same with a list of merges ranked by priority, so the merges are every
//! split `(left, right)` of a token into two tokens, ranked by the score of the whole token.
//! This is how Hugging Face converts SentencePiece models (`SentencePieceExtractor`).

use std::collections::HashMap;

/// Every `(left, right)` pair whose concatenation is a token, highest score first. Ties are
/// broken by the merged token's id, then the left part's id, so the order is deterministic.
/// `index` maps each token's text to its id.
pub fn merges_from_scores(
    tokens: &[String],
    scores: &[f32],
    index: &HashMap<&str, u32>,
) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, u32, &str, &str)> = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (at, _) in token.char_indices().skip(1) {
            let (left, right) = token.split_at(at);
            if let (Some(&l), Some(_)) = (index.get(left), index.get(right)) {
                ranked.push((score, id as u32, l, left, right));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked
        .into_iter()
        .map(|(_, _, _, l, r)| (l.to_string(), r.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_the_merged_tokens_score() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0];
        let index: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let merges = merges_from_scores(&tokens, &scores, &index);
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![("b", "c"), ("a", "b"), ("a", "bc"), ("ab", "c")]
        );
    }
}
