//! Choosing one token from a row of logits: greedy, temperature, top-k, top-p, seeded.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::params::{SamplingError, SamplingParams};

/// Top-p first looks among this many of the most likely tokens, and sorts the whole
/// vocabulary only when they do not reach `top_p`.
const TOP_P_WINDOW: usize = 256;

/// A token and its log-probability under the model (log-softmax of the raw logits, before
/// temperature and truncation, as OpenAI's `logprobs` reports).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    /// The token id.
    pub id: u32,
    /// Its log-probability.
    pub logprob: f32,
}

/// The chosen token with its log-probability and, if asked for, the most likely tokens'.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledToken {
    /// The chosen token and its log-probability.
    pub token: TokenLogprob,
    /// The `logprobs` most likely tokens, most likely first (empty if none were asked for).
    pub top_logprobs: Vec<TokenLogprob>,
}

/// One request's sampler. Its random stream (ChaCha20, seeded per request) advances by
/// exactly one draw per token, greedy or not, so token `i` always uses draw `i` and a
/// request replays exactly from its seed whatever else runs beside it.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha20Rng,
    /// Scratch for candidates: (logit, id).
    scratch: Vec<(f32, u32)>,
}

impl Sampler {
    /// A sampler for `params` (validated here).
    pub fn new(params: &SamplingParams) -> Result<Self, SamplingError> {
        params.validate()?;
        let seed = params.seed.unwrap_or_else(rand::random);
        Ok(Self {
            params: params.clone(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            scratch: Vec::new(),
        })
    }

    /// The parameters this sampler follows.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Chooses the next token from `logits` (one per vocabulary entry; -inf masks a token).
    pub fn sample(&mut self, logits: &[f32]) -> Result<SampledToken, SamplingError> {
        let max = check_logits(logits)?;
        let u: f64 = self.rng.random();
        let id = if self.params.is_greedy() {
            argmax(logits)
        } else {
            let candidates = self.candidates_in_scratch(logits, max);
            pick(candidates, u)
        };
        Ok(self.with_logprobs(logits, max, id))
    }

    /// The tokens this sampler may choose from `logits` and their probabilities after
    /// temperature, top-k and top-p (summing to 1), most likely first. Greedy gives the
    /// argmax alone. Draws nothing from the random stream.
    pub fn candidates(&mut self, logits: &[f32]) -> Result<Vec<(u32, f64)>, SamplingError> {
        let max = check_logits(logits)?;
        if self.params.is_greedy() {
            return Ok(vec![(argmax(logits), 1.0)]);
        }
        let weighted = self.candidates_in_scratch(logits, max);
        if !weighted.sorted {
            weighted.items.sort_by(by_logit_desc);
        }
        let (max, inv_t) = (weighted.max, weighted.inv_t);
        let w: Vec<f64> = weighted
            .items
            .iter()
            .map(|&(l, _)| weight(l, max, inv_t))
            .collect();
        let total: f64 = w.iter().sum();
        Ok(weighted
            .items
            .iter()
            .zip(w)
            .map(|(&(_, id), w)| (id, w / total))
            .collect())
    }

    /// Fills the scratch with the candidates temperature, top-k and top-p leave.
    fn candidates_in_scratch(&mut self, logits: &[f32], max: f32) -> Candidates<'_> {
        let p = &self.params;
        let inv_t = 1.0 / f64::from(p.temperature);
        self.scratch.clear();
        self.scratch.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| **l > f32::NEG_INFINITY)
                .map(|(i, &l)| (l, i as u32)),
        );
        let mut sorted = false;
        if p.top_k > 0 && p.top_k < self.scratch.len() {
            self.scratch
                .select_nth_unstable_by(p.top_k - 1, by_logit_desc);
            self.scratch.truncate(p.top_k);
            self.scratch.sort_by(by_logit_desc);
            sorted = true;
        }
        if p.top_p < 1.0 {
            let total: f64 = self
                .scratch
                .iter()
                .map(|&(l, _)| weight(l, max, inv_t))
                .sum();
            let target = f64::from(p.top_p) * total;
            if !sorted {
                sort_head(&mut self.scratch, target, max, inv_t);
                sorted = true;
            }
            let mut acc = 0.0;
            let keep = self
                .scratch
                .iter()
                .position(|&(l, _)| {
                    acc += weight(l, max, inv_t);
                    acc >= target
                })
                .map_or(self.scratch.len(), |i| i + 1);
            self.scratch.truncate(keep);
        }
        Candidates {
            items: &mut self.scratch,
            sorted,
            max,
            inv_t,
        }
    }

    fn with_logprobs(&mut self, logits: &[f32], max: f32, id: u32) -> SampledToken {
        let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
        let lse = f64::from(max) + sum.ln();
        let logprob = |l: f32| (f64::from(l) - lse) as f32;
        let token = TokenLogprob {
            id,
            logprob: logprob(logits[id as usize]),
        };
        let n = self.params.logprobs.unwrap_or(0).min(logits.len());
        let mut top_logprobs = Vec::with_capacity(n);
        if n > 0 {
            self.scratch.clear();
            self.scratch
                .extend(logits.iter().enumerate().map(|(i, &l)| (l, i as u32)));
            self.scratch.select_nth_unstable_by(n - 1, by_logit_desc);
            self.scratch.truncate(n);
            self.scratch.sort_by(by_logit_desc);
            top_logprobs.extend(self.scratch.iter().map(|&(l, id)| TokenLogprob {
                id,
                logprob: logprob(l),
            }));
        }
        SampledToken {
            token,
            top_logprobs,
        }
    }
}

/// The surviving candidates in the scratch buffer.
struct Candidates<'a> {
    items: &'a mut Vec<(f32, u32)>,
    sorted: bool,
    max: f32,
    inv_t: f64,
}

/// The candidate where the cumulative weight passes `u` of the total.
fn pick(c: Candidates<'_>, u: f64) -> u32 {
    let total: f64 = c
        .items
        .iter()
        .map(|&(l, _)| weight(l, c.max, c.inv_t))
        .sum();
    let target = u * total;
    let mut acc = 0.0;
    for &(l, id) in c.items.iter() {
        acc += weight(l, c.max, c.inv_t);
        if acc > target {
            return id;
        }
    }
    c.items.last().map_or(0, |&(_, id)| id)
}

/// The unnormalised probability of a logit at temperature `1 / inv_t`.
fn weight(logit: f32, max: f32, inv_t: f64) -> f64 {
    (f64::from(logit - max) * inv_t).exp()
}

/// Most likely first; equal logits by lower id, so the order is deterministic.
fn by_logit_desc(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Sorts enough of the most likely candidates to the front to reach `target` weight: the
/// top [`TOP_P_WINDOW`] first, everything only when they fall short.
fn sort_head(items: &mut [(f32, u32)], target: f64, max: f32, inv_t: f64) {
    if items.len() > TOP_P_WINDOW {
        items.select_nth_unstable_by(TOP_P_WINDOW - 1, by_logit_desc);
        let head = &mut items[..TOP_P_WINDOW];
        head.sort_by(by_logit_desc);
        let mass: f64 = head.iter().map(|&(l, _)| weight(l, max, inv_t)).sum();
        if mass >= target {
            return;
        }
    }
    items.sort_by(by_logit_desc);
}

/// The first index of the largest logit.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The largest logit, after checking that there is one and that none is NaN or +inf.
fn check_logits(logits: &[f32]) -> Result<f32, SamplingError> {
    if logits.is_empty() {
        return Err(SamplingError::EmptyLogits);
    }
    let mut max = f32::NEG_INFINITY;
    for (index, &value) in logits.iter().enumerate() {
        if value.is_nan() || value == f32::INFINITY {
            return Err(SamplingError::NonFiniteLogit { index, value });
        }
        max = max.max(value);
    }
    if max == f32::NEG_INFINITY {
        return Err(SamplingError::NoCandidates);
    }
    Ok(max)
}
