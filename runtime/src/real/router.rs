//! Which shard serves a request: rendezvous (highest-random-weight) hashing of its adapter over
//! the shards, so each adapter has a home shard and adding or removing a shard moves only the
//! adapters of that shard; with load-aware spill-over to the adapter's second choice when the
//! home shard is clearly busier. A session stays on the shard its first turn went to (its
//! history KV lives there).

/// The routing rule. Pure: the caller supplies the loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Router {
    shards: u32,
    /// Spill to the second choice when the first holds at least this many more requests.
    pub spill_margin: u32,
}

impl Router {
    /// A router over `shards` shards (at least one).
    pub fn new(shards: u32, spill_margin: u32) -> Router {
        Router {
            shards: shards.max(1),
            spill_margin,
        }
    }

    /// Shards routed over.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The adapter's shards in order of preference (first: its home).
    pub fn preference(&self, adapter: u32) -> (u32, Option<u32>) {
        let mut best = (0u64, 0u32);
        let mut second: Option<(u64, u32)> = None;
        for shard in 0..self.shards {
            let w = weight(adapter, shard);
            if shard == 0 || w > best.0 {
                if shard > 0 {
                    second = Some(best);
                }
                best = (w, shard);
            } else if second.is_none_or(|s| w > s.0) {
                second = Some((w, shard));
            }
        }
        (best.1, second.map(|s| s.1))
    }

    /// The shard for a new session of `adapter`, given each shard's requests in hand.
    pub fn route(&self, adapter: u32, loads: &[u32]) -> u32 {
        let (home, second) = self.preference(adapter);
        let load = |s: u32| loads.get(s as usize).copied().unwrap_or(0);
        match second {
            Some(other) if load(home) >= load(other).saturating_add(self.spill_margin) => other,
            _ => home,
        }
    }
}

/// The rendezvous weight of (adapter, shard): a 64-bit mix of both.
fn weight(adapter: u32, shard: u32) -> u64 {
    let mut x = (u64::from(adapter) << 32 | u64::from(shard)) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_the_highest_weight_and_second_differs() {
        let r = Router::new(4, 8);
        for a in 0..200 {
            let (home, second) = r.preference(a);
            let best = (0..4).max_by_key(|&s| weight(a, s)).expect("shards");
            assert_eq!(home, best);
            assert!(second.is_some_and(|s| s != home));
        }
        assert_eq!(Router::new(1, 8).preference(3), (0, None));
    }

    #[test]
    fn adapters_spread_over_shards() {
        let r = Router::new(4, 8);
        let mut count = [0u32; 4];
        for a in 0..4000 {
            count[r.preference(a).0 as usize] += 1;
        }
        assert!(count.iter().all(|&c| (800..1200).contains(&c)), "{count:?}");
    }

    #[test]
    fn removing_a_shard_moves_only_its_adapters() {
        let (four, three) = (Router::new(4, 8), Router::new(3, 8));
        for a in 0..1000 {
            let before = four.preference(a).0;
            if before != 3 {
                assert_eq!(three.preference(a).0, before, "adapter {a} moved");
            }
        }
    }

    #[test]
    fn spills_to_the_second_choice_only_when_home_is_clearly_busier() {
        let r = Router::new(2, 8);
        let (home, second) = r.preference(42);
        let second = second.expect("two shards");
        let mut loads = [0u32; 2];
        loads[home as usize] = 7;
        assert_eq!(r.route(42, &loads), home);
        loads[home as usize] = 8;
        assert_eq!(r.route(42, &loads), second);
        loads[second as usize] = 1;
        assert_eq!(r.route(42, &loads), home);
    }
}
