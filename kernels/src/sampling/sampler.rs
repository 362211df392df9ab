//! Choosing one token from a row of logits: greedy, temperature, top-k, top-p, seeded.
//!
//! One pass turns the logits into weights `exp((logit - max) / temperature)`; top-k and top-p
//! then select among `(logit, weight, id)` entries without sorting the vocabulary (top-p by a
//! quickselect on probability mass), and one uniform draw picks by cumulative weight. The
//! order of candidates is "most likely first, lower id on ties" wherever one is needed, so a
//! request replays exactly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::params::{SamplingError, SamplingParams};
use super::rank::{Entry, mass, most_likely_first, top_n, top_p_len};

/// A token and its log-probability under the model (log-softmax of the raw logits, before
/// temperature and truncation, as OpenAI's `logprobs` reports).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    /// The token id.
    pub id: u32,
    /// Its log-probability.
    pub logprob: f32,
}

/// The chosen token, with log-probabilities where the request asked for them.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledToken {
    /// The chosen token id.
    pub id: u32,
    /// Its log-probability, if `logprobs` was asked for.
    pub logprob: Option<f32>,
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
    scratch: Vec<Entry>,
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
            argmax(logits, max)
        } else {
            self.fill_candidates(logits, max);
            pick(&self.scratch, u)
        };
        Ok(self.with_logprobs(logits, max, id))
    }

    /// The tokens this sampler may choose from `logits` and their probabilities after
    /// temperature, top-k and top-p (summing to 1), most likely first. Greedy gives the
    /// argmax alone. Draws nothing from the random stream.
    pub fn candidates(&mut self, logits: &[f32]) -> Result<Vec<(u32, f64)>, SamplingError> {
        let max = check_logits(logits)?;
        if self.params.is_greedy() {
            return Ok(vec![(argmax(logits, max), 1.0)]);
        }
        self.fill_candidates(logits, max);
        self.scratch.sort_unstable_by(most_likely_first);
        let total = mass(&self.scratch);
        Ok(self
            .scratch
            .iter()
            .map(|e| (e.id, f64::from(e.weight) / total))
            .collect())
    }

    /// Leaves in the scratch the candidates temperature, top-k and top-p keep (unordered).
    /// Top-k selects on logits first, so only the `k` survivors need a weight.
    fn fill_candidates(&mut self, logits: &[f32], max: f32) {
        let p = &self.params;
        let inv_t = 1.0 / p.temperature;
        self.scratch.clear();
        if p.top_k > 0 {
            top_n(logits, p.top_k, &mut self.scratch);
        } else {
            self.scratch.extend(
                logits
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| **l > f32::NEG_INFINITY)
                    .map(|(i, &logit)| Entry::new(logit, i)),
            );
        }
        for e in &mut self.scratch {
            e.weight = ((e.logit - max) * inv_t).exp();
        }
        if p.top_p < 1.0 {
            let total = mass(&self.scratch);
            let target = f64::from(p.top_p) * total;
            // Entries this light cannot be in the cut: all of them together weigh less than
            // the 1 - p that may be left out, and each is below every heavier entry.
            let floor = (1.0 - f64::from(p.top_p)) * total / self.scratch.len() as f64;
            self.scratch.retain(|e| f64::from(e.weight) >= floor);
            let keep = top_p_len(&mut self.scratch, target);
            self.scratch.truncate(keep);
        }
    }

    fn with_logprobs(&mut self, logits: &[f32], max: f32, id: u32) -> SampledToken {
        let Some(n) = self.params.logprobs else {
            return SampledToken {
                id,
                logprob: None,
                top_logprobs: Vec::new(),
            };
        };
        let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
        let lse = f64::from(max) + sum.ln();
        let logprob = |l: f32| (f64::from(l) - lse) as f32;
        let n = n.min(logits.len());
        let mut top_logprobs = Vec::with_capacity(n);
        if n > 0 {
            self.scratch.clear();
            top_n(logits, n, &mut self.scratch);
            top_logprobs.extend(self.scratch.iter().map(|e| TokenLogprob {
                id: e.id,
                logprob: logprob(e.logit),
            }));
        }
        SampledToken {
            id,
            logprob: Some(logprob(logits[id as usize])),
            top_logprobs,
        }
    }
}

/// The candidate where the cumulative weight passes `u` of the total.
fn pick(items: &[Entry], u: f64) -> u32 {
    let target = u * mass(items);
    let mut acc = 0.0;
    for e in items {
        acc += f64::from(e.weight);
        if acc > target {
            return e.id;
        }
    }
    items.last().map_or(0, |e| e.id)
}

/// The first index of the largest logit `max`.
fn argmax(logits: &[f32], max: f32) -> u32 {
    logits.iter().position(|&l| l == max).unwrap_or(0) as u32
}

/// The largest logit, after checking that there is one and that none is NaN or +inf.
fn check_logits(logits: &[f32]) -> Result<f32, SamplingError> {
    if logits.is_empty() {
        return Err(SamplingError::EmptyLogits);
    }
    // Branch-free passes (they vectorise); the slow search runs only on a bad row.
    let bad = logits
        .iter()
        .fold(false, |bad, &v| bad | v.is_nan() | (v == f32::INFINITY));
    if bad {
        let index = logits
            .iter()
            .position(|v| v.is_nan() || *v == f32::INFINITY)
            .unwrap_or(0);
        let value = logits[index];
        return Err(SamplingError::NonFiniteLogit { index, value });
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return Err(SamplingError::NoCandidates);
    }
    Ok(max)
}
