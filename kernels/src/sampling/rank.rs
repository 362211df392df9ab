//! Ranking candidates: "most likely first, lower id on ties", the top `n` of a row, and the
//! cut of top-p, none of them sorting the whole vocabulary.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Below this many entries top-p sorts what is left instead of partitioning further.
const TOP_P_SORT_LEN: usize = 64;

/// A candidate: its logit (the order), its weight after temperature (the mass), its id.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The raw logit.
    pub logit: f32,
    /// The weight after temperature (0 until computed).
    pub weight: f32,
    /// The token id.
    pub id: u32,
}

impl Entry {
    /// The entry of token `id` with its logit and no weight yet.
    pub fn new(logit: f32, id: usize) -> Self {
        Self {
            logit,
            weight: 0.0,
            id: id as u32,
        }
    }
}

/// An entry ordered so that a max-heap's top is the least likely one kept.
struct Ranked(Entry);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        most_likely_first(&self.0, &other.0)
    }
}

/// Appends to `out` the `n` most likely entries of `logits` that are not masked (`-inf`),
/// most likely first. One pass with a heap of `n`: most entries cost one comparison with
/// the least likely one kept.
pub fn top_n(logits: &[f32], n: usize, out: &mut Vec<Entry>) {
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(n.min(logits.len()) + 1);
    for (i, &logit) in logits.iter().enumerate() {
        if logit == f32::NEG_INFINITY {
            continue;
        }
        let e = Entry::new(logit, i);
        if heap.len() < n {
            heap.push(Ranked(e));
        } else if let Some(mut least) = heap.peek_mut()
            && most_likely_first(&e, &least.0) == Ordering::Less
        {
            *least = Ranked(e);
        }
    }
    out.extend(heap.into_sorted_vec().into_iter().map(|r| r.0));
}

/// The length of the smallest most-likely-first prefix of `items` whose weight reaches
/// `target`, after rearranging `items` so that this prefix comes first (in no particular
/// order). A quickselect on mass: each round partitions the undecided range around its
/// median and keeps the half where the cut falls, so the work is linear in `items`.
pub fn top_p_len(items: &mut [Entry], target: f64) -> usize {
    let (mut lo, mut hi) = (0, items.len());
    let mut kept_mass = 0.0;
    while hi - lo > TOP_P_SORT_LEN {
        let half = (hi - lo) / 2;
        items[lo..hi].select_nth_unstable_by(half, most_likely_first);
        let mid = lo + half + 1;
        let upper = mass(&items[lo..mid]);
        if kept_mass + upper >= target {
            hi = mid;
        } else {
            kept_mass += upper;
            lo = mid;
        }
    }
    items[lo..hi].sort_unstable_by(most_likely_first);
    for (i, e) in items[lo..hi].iter().enumerate() {
        kept_mass += f64::from(e.weight);
        if kept_mass >= target {
            return lo + i + 1;
        }
    }
    hi
}

/// The total weight of `items`.
pub fn mass(items: &[Entry]) -> f64 {
    items.iter().map(|e| f64::from(e.weight)).sum()
}

/// Most likely first; equal logits by lower id, so the order is deterministic.
pub fn most_likely_first(a: &Entry, b: &Entry) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}
