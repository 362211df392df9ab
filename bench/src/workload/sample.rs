//! Seeded random streams and the few distributions the generators draw from.
//!
//! Each aspect of a workload (arrival times, adapter choice, lengths, token ids, think times)
//! draws from its own ChaCha8 stream of the one seed, so changing, say, the rate leaves the
//! system prompts as they were. The distributions are written out here rather than pulled from
//! a crate: they are a few lines each, and their exact draws are part of what a seed means.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::{WorkloadError, invalid};

/// The independent random streams of one workload seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Per-adapter system prompts.
    SystemPrompts = 1,
    /// Session or request arrival times.
    Arrivals = 2,
    /// Which adapter a session uses (and the popularity ranking).
    Popularity = 3,
    /// Turn counts and token counts.
    Lengths = 4,
    /// User token ids.
    Tokens = 5,
    /// Think and tool times between turns.
    Think = 6,
    /// Hot sets of adapters that rotate over time.
    HotSets = 7,
}

/// The ChaCha8 generator of `stream` under `seed`.
pub fn stream_rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

/// A uniform draw in (0, 1] (never 0, so its logarithm is finite).
pub fn unit_open0<R: Rng>(rng: &mut R) -> f64 {
    1.0 - rng.random::<f64>()
}

/// An exponential draw with the given mean.
pub fn exponential<R: Rng>(rng: &mut R, mean: f64) -> f64 {
    -mean * unit_open0(rng).ln()
}

/// A standard normal draw (Box–Muller).
pub fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    let radius = (-2.0 * unit_open0(rng).ln()).sqrt();
    radius * (std::f64::consts::TAU * rng.random::<f64>()).cos()
}

/// A Gamma(shape, scale) draw (Marsaglia and Tsang 2000; shapes below 1 by the `U^(1/k)`
/// boost). Mean `shape × scale`.
pub fn gamma<R: Rng>(rng: &mut R, shape: f64, scale: f64) -> f64 {
    if shape < 1.0 {
        let boost = unit_open0(rng).powf(1.0 / shape);
        return gamma(rng, shape + 1.0, scale) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    // Acceptance is above 95 % for every shape >= 1; the bound only guards the loop.
    for _ in 0..1000 {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        if unit_open0(rng).ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v * scale;
        }
    }
    shape * scale
}

/// A draw from {1, 2, …, max} with P(k) ∝ (1 − 1/mean)^(k−1): a geometric count with the
/// given mean before the cap. A mean at or below 1 always gives 1.
pub fn geometric<R: Rng>(rng: &mut R, mean: f64, max: u32) -> u32 {
    if mean.is_nan() || mean <= 1.0 {
        return 1;
    }
    let p = 1.0 / mean;
    let extra = (unit_open0(rng).ln() / (1.0 - p).ln()).floor();
    let k = 1.0 + extra;
    if k >= f64::from(max) { max } else { k as u32 }
}

/// A uniform integer in `[min, max]` (an empty range gives `min`).
pub fn uniform_u32<R: Rng>(rng: &mut R, min: u32, max: u32) -> u32 {
    if max <= min {
        return min;
    }
    rng.random_range(min..=max)
}

/// A token count from a log-normal distribution with a given mean, clamped to `[1, max]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LengthDist {
    /// Mean of the uncapped distribution, tokens.
    pub mean: f64,
    /// Standard deviation of the underlying normal (0: always the mean).
    pub sigma: f64,
    /// Cap, tokens.
    pub max: u32,
}

impl LengthDist {
    /// Draws one length.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u32 {
        let mu = self.mean.ln() - self.sigma * self.sigma / 2.0;
        let x = (mu + self.sigma * standard_normal(rng)).exp().round();
        if x >= f64::from(self.max) {
            self.max
        } else if x >= 1.0 {
            x as u32
        } else {
            1
        }
    }

    /// Checks the parameters; `field` names the distribution in the error.
    pub fn validate(&self, field: &'static str) -> Result<(), WorkloadError> {
        if !(self.mean.is_finite() && self.mean >= 1.0) {
            return Err(invalid(field, "a mean of at least 1 token", self.mean));
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(invalid(field, "a finite, non-negative sigma", self.sigma));
        }
        if self.max == 0 {
            return Err(invalid(field, "a positive cap", self.max));
        }
        Ok(())
    }
}

/// Checks an inclusive `[min, max]` range of token counts: `1 <= min <= max`.
pub fn validate_range(field: &'static str, range: (u32, u32)) -> Result<(), WorkloadError> {
    if range.0 == 0 || range.0 > range.1 {
        return Err(invalid(
            field,
            "a range with 1 <= min <= max",
            format!("{range:?}"),
        ));
    }
    Ok(())
}

/// Checks that a number is finite and positive.
pub fn validate_positive(field: &'static str, value: f64) -> Result<(), WorkloadError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(invalid(field, "finite and positive", value));
    }
    Ok(())
}

/// Checks that a number is finite and non-negative.
pub fn validate_non_negative(field: &'static str, value: f64) -> Result<(), WorkloadError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(invalid(field, "finite and non-negative", value));
    }
    Ok(())
}

/// Seconds to whole nanoseconds (negative and NaN give 0).
pub fn secs_to_ns(seconds: f64) -> u64 {
    (seconds * 1e9).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(n: u32, mut draw: impl FnMut() -> f64) -> f64 {
        (0..n).map(|_| draw()).sum::<f64>() / f64::from(n)
    }

    #[test]
    fn distributions_have_their_means() {
        let mut rng = stream_rng(7, Stream::Lengths);
        let e = mean_of(20_000, || exponential(&mut rng, 3.0));
        assert!((e - 3.0).abs() < 0.15, "{e}");
        for shape in [0.25, 1.0, 4.0] {
            let g = mean_of(20_000, || gamma(&mut rng, shape, 2.0));
            assert!(
                (g - 2.0 * shape).abs() < 0.1 * (2.0 * shape),
                "{shape}: {g}"
            );
        }
        let k = mean_of(20_000, || f64::from(geometric(&mut rng, 3.0, 1000)));
        assert!((k - 3.0).abs() < 0.1, "{k}");
        let dist = LengthDist {
            mean: 70.0,
            sigma: 1.0,
            max: 100_000,
        };
        let l = mean_of(50_000, || f64::from(dist.sample(&mut rng)));
        assert!((l - 70.0).abs() < 3.0, "{l}");
    }

    #[test]
    fn caps_hold() {
        let mut rng = stream_rng(1, Stream::Lengths);
        let dist = LengthDist {
            mean: 500.0,
            sigma: 2.0,
            max: 600,
        };
        for _ in 0..5000 {
            assert!((1..=600).contains(&dist.sample(&mut rng)));
            assert!((1..=5).contains(&geometric(&mut rng, 4.0, 5)));
        }
        assert_eq!(geometric(&mut rng, 0.5, 10), 1);
        assert_eq!(uniform_u32(&mut rng, 9, 3), 9);
    }

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: Vec<u64> = (0..4)
            .map(|_| stream_rng(5, Stream::Arrivals).random())
            .collect();
        let b: u64 = stream_rng(5, Stream::Arrivals).random();
        let c: u64 = stream_rng(5, Stream::Tokens).random();
        assert_eq!(a[0], b);
        assert_ne!(b, c);
    }
}
