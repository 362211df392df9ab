//! Arrival processes: when sessions or requests start.

use rand::Rng;

use super::sample::{exponential, gamma};

/// A renewal process of arrivals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Exponential gaps: independent users (a Poisson process).
    Poisson {
        /// Mean arrivals per second.
        rate_per_s: f64,
    },
    /// Gamma-distributed gaps with squared coefficient of variation `cv2`: `cv2 = 1` is
    /// Poisson, larger values are burstier (shape `1 / cv2`: many short gaps, a few long
    /// ones). BurstGPT (Wang et al., arXiv 2401.17644) fits the request gaps of production
    /// LLM services with Gamma distributions of shape below 1.
    Gamma {
        /// Mean arrivals per second.
        rate_per_s: f64,
        /// Squared coefficient of variation of the gaps.
        cv2: f64,
    },
}

impl ArrivalProcess {
    /// Arrival times in `[0, duration_ns)`, ascending, at most `max` of them. The first
    /// arrival comes one gap after time 0. A non-positive rate gives none.
    pub fn times_ns<R: Rng>(&self, rng: &mut R, duration_ns: u64, max: usize) -> Vec<u64> {
        let rate = match *self {
            ArrivalProcess::Poisson { rate_per_s } | ArrivalProcess::Gamma { rate_per_s, .. } => {
                rate_per_s
            }
        };
        if !(rate.is_finite() && rate > 0.0) {
            return Vec::new();
        }
        let mean_gap_ns = 1e9 / rate;
        let mut times = Vec::new();
        let mut now = 0.0_f64;
        while times.len() < max {
            now += match *self {
                ArrivalProcess::Poisson { .. } => exponential(rng, mean_gap_ns),
                ArrivalProcess::Gamma { cv2, .. } => {
                    let shape = 1.0 / cv2.max(1e-6);
                    gamma(rng, shape, mean_gap_ns / shape)
                }
            };
            if now >= duration_ns as f64 {
                break;
            }
            times.push(now as u64);
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::sample::{Stream, stream_rng};

    fn gaps_cv2(times: &[u64]) -> f64 {
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        var / (mean * mean)
    }

    #[test]
    fn rates_and_burstiness() {
        let mut rng = stream_rng(3, Stream::Arrivals);
        let d = 1_000_000_000_000; // 1,000 s
        let p = ArrivalProcess::Poisson { rate_per_s: 10.0 }.times_ns(&mut rng, d, usize::MAX);
        assert!((9_500..10_500).contains(&p.len()), "{}", p.len());
        assert!(p.windows(2).all(|w| w[0] <= w[1]) && p.iter().all(|&t| t < d));
        assert!((gaps_cv2(&p) - 1.0).abs() < 0.1);
        let g = ArrivalProcess::Gamma {
            rate_per_s: 10.0,
            cv2: 4.0,
        };
        let b = g.times_ns(&mut rng, d, usize::MAX);
        assert!((9_000..11_000).contains(&b.len()), "{}", b.len());
        assert!(gaps_cv2(&b) > 3.0, "{}", gaps_cv2(&b));
        assert_eq!(g.times_ns(&mut rng, d, 5).len(), 5);
        let none = ArrivalProcess::Poisson { rate_per_s: 0.0 }.times_ns(&mut rng, d, 10);
        assert!(none.is_empty());
    }
}
