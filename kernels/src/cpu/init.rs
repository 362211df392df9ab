//! Seeded random matrices with a variance that keeps activations finite.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `rows × cols` values uniform in `±gain·√(3/rows)`: variance `gain² / rows`, so a product
/// with a unit-variance input of width `rows` has variance about `gain²`.
pub(crate) fn matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize, gain: f32) -> Vec<f32> {
    let bound = gain * (3.0 / rows as f32).sqrt();
    (0..rows * cols)
        .map(|_| rng.random_range(-bound..=bound))
        .collect()
}
