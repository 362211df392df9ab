//! Which adapter a session uses: Zipf popularity over a seeded ranking, and a hot set that
//! rotates over time.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A Zipf distribution over ranks `0..n`: P(rank i) ∝ 1 / (i + 1)^exponent. Exponent 0 is
/// uniform; 1 is the classic Zipf law.
#[derive(Clone, Debug)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks (`n = 0` is treated as 1).
    pub fn new(n: usize, exponent: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n.max(1))
            .map(|i| {
                total += ((i + 1) as f64).powf(-exponent);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// Draws a rank (0 is the most popular).
    pub fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        i.min(self.cumulative.len() - 1)
    }
}

/// A random order of `0..n`: position `i` holds the adapter of popularity rank `i`, so that
/// popularity is independent of adapter index (and thus of rank, which cycles by index).
pub fn ranking<R: Rng>(rng: &mut R, n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    order.shuffle(rng);
    order
}

/// Popularity that shifts: time is cut into epochs; in each, a fresh random *hot set* of
/// adapters takes most requests (Zipf within the set), and the rest go uniformly to any
/// adapter.
#[derive(Clone, Debug)]
pub struct RotatingHotSet {
    adapters: u32,
    epoch_ns: u64,
    cold_fraction: f64,
    zipf: Zipf,
    /// Draws the hot sets, apart from the per-request draws so that the sets do not depend on
    /// how many requests came before.
    epoch_rng: ChaCha8Rng,
    /// Hot sets of the epochs drawn so far, in popularity order.
    epochs: Vec<Vec<u32>>,
}

impl RotatingHotSet {
    /// `hot` adapters (at most `adapters`) hot per epoch of `epoch_ns`; a request goes to a
    /// uniformly random adapter with probability `cold_fraction`. `epoch_rng` draws the sets.
    pub fn new(
        adapters: u32,
        hot: u32,
        epoch_ns: u64,
        exponent: f64,
        cold_fraction: f64,
        epoch_rng: ChaCha8Rng,
    ) -> RotatingHotSet {
        let hot = hot.clamp(1, adapters.max(1));
        RotatingHotSet {
            adapters,
            epoch_ns: epoch_ns.max(1),
            cold_fraction,
            zipf: Zipf::new(hot as usize, exponent),
            epoch_rng,
            epochs: Vec::new(),
        }
    }

    /// The hot set of the epoch containing `time_ns`, most popular first.
    pub fn hot_set(&mut self, time_ns: u64) -> &[u32] {
        let epoch = (time_ns / self.epoch_ns) as usize;
        let hot = self.zipf.cumulative.len();
        while self.epochs.len() <= epoch {
            let mut all: Vec<u32> = (0..self.adapters).collect();
            let (chosen, _) = all.partial_shuffle(&mut self.epoch_rng, hot);
            self.epochs.push(chosen.to_vec());
        }
        &self.epochs[epoch]
    }

    /// The adapter of a request arriving at `time_ns`.
    pub fn sample<R: Rng>(&mut self, rng: &mut R, time_ns: u64) -> u32 {
        if self.adapters == 0 {
            return 0;
        }
        if rng.random::<f64>() < self.cold_fraction {
            return rng.random_range(0..self.adapters);
        }
        let rank = self.zipf.sample(rng);
        let set = self.hot_set(time_ns);
        set.get(rank).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::sample::{Stream, stream_rng};

    #[test]
    fn zipf_is_skewed_and_exponent_zero_is_uniform() {
        let mut rng = stream_rng(1, Stream::Popularity);
        let zipf = Zipf::new(100, 1.0);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // P(rank 0) = 1 / H_100 ≈ 0.193; P(rank 1) ≈ 0.096.
        assert!((18_000..20_600).contains(&counts[0]), "{}", counts[0]);
        assert!(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99]);
        let flat = Zipf::new(4, 0.0);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[flat.sample(&mut rng)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn hot_sets_rotate() {
        let mut rng = stream_rng(2, Stream::Popularity);
        let epochs = stream_rng(2, Stream::HotSets);
        let mut hot = RotatingHotSet::new(100, 10, 1_000, 1.0, 0.0, epochs);
        let first = hot.hot_set(0).to_vec();
        assert_eq!(hot.hot_set(999), first.as_slice());
        let second = hot.hot_set(1_000).to_vec();
        assert_eq!(first.len(), 10);
        assert_ne!(first, second);
        for _ in 0..1000 {
            assert!(second.contains(&hot.sample(&mut rng, 1_500)));
        }
    }
}
