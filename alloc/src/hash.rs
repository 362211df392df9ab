//! Chained block hashes: the key of block *i* depends on the LoRA version and on every token of
//! blocks 0..=i, so equal keys mean equal prefixes under the same adapter version.
//!
//! The hash is 64-bit FxHash-style mixing (fast, not cryptographic). A collision could only
//! alias two prefixes if it also kept the chain intact: the tree accepts a match only when the
//! found node is a child of the previous matched node, which rules out cross-adapter and
//! cross-prefix aliasing unless the parent collides too.

const SEED_MUL: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[inline]
fn mix(hash: u64, word: u64) -> u64 {
    (hash.rotate_left(5) ^ word).wrapping_mul(SEED_MUL)
}

#[inline]
fn finish(hash: u64) -> u64 {
    // Murmur3's final avalanche, so that nearby inputs land far apart in the index.
    let mut h = hash;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The chain's starting value for one adapter version.
pub fn lora_seed(adapter: u32, version: u32) -> u64 {
    finish(mix(
        mix(0x9e37_79b9_7f4a_7c15, u64::from(adapter)),
        u64::from(version),
    ))
}

/// The key of a block whose tokens are `block`, following the block with key `prev`.
pub fn chain(prev: u64, block: &[u32]) -> u64 {
    let mut h = prev;
    let mut pairs = block.chunks_exact(2);
    for pair in &mut pairs {
        h = mix(h, u64::from(pair[0]) | (u64::from(pair[1]) << 32));
    }
    if let [last] = pairs.remainder() {
        h = mix(h, u64::from(*last) | (1 << 63));
    }
    finish(mix(h, block.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_all_previous_tokens_and_the_adapter_version() {
        let a = chain(lora_seed(1, 0), &[1, 2, 3, 4]);
        let b = chain(lora_seed(1, 0), &[1, 2, 3, 5]);
        assert_ne!(a, b);
        assert_ne!(chain(a, &[9, 9, 9, 9]), chain(b, &[9, 9, 9, 9]));
        assert_ne!(chain(lora_seed(1, 1), &[1, 2, 3, 4]), a);
        assert_ne!(chain(lora_seed(2, 0), &[1, 2, 3, 4]), a);
        assert_eq!(chain(lora_seed(1, 0), &[1, 2, 3, 4]), a);
        assert_ne!(chain(0, &[1, 2, 3]), chain(0, &[1, 2, 3, 0]));
    }
}
