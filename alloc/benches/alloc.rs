//! Benchmarks of the memory system. Ids (results under `target/criterion/<id>/`):
//! - `pool/alloc_free_page`: take one page and give it back, in a 1M-page pool that is 90 % full;
//! - `tree/match_256_blocks_of_1m`: match a 256-block prompt in a tree holding 1,000,000
//!   resident blocks across 1,000 LoRAs;
//! - `tree/insert_256_blocks`: insert a 256-block chain into that tree;
//! - `tree/leaves_lowest_1k_of_1m`: the 1,000 lowest-scored swap-out candidates among 1M HBM
//!   leaves, through the tree's ordered swap-out index (`Tree::lowest_ranked`) with the
//!   swapper's score (log domain: a per-kind offset plus the rank key);
//! - `tree/leaves_lowest_1k_of_1m_scan`: the same answer by a full scan with a caller closure
//!   (`Tree::lowest`), for comparison.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fastlibra_alloc::{
    AdapterRef, Candidates, Match, NodeId, PagePool, RankKey, Tier, Tree, TreeConfig,
};

const BLOCK_TOKENS: u32 = 16;
const LORAS: u32 = 1_000;
const BLOCKS_PER_LORA: u32 = 1_000;

fn big_config() -> TreeConfig {
    TreeConfig::new([1_100_000, 1_000, 1_000], 1, BLOCK_TOKENS)
}

fn prompt(lora: u32, chain: u32, blocks: u32) -> Vec<u32> {
    (0..blocks * BLOCK_TOKENS)
        .map(|i| lora.wrapping_mul(7919) ^ (chain << 20) ^ i)
        .collect()
}

/// 1,000 LoRAs, each with 1,000 blocks as chains of 256 (the last one shorter).
fn chained_tree() -> (Tree, Vec<AdapterRef>) {
    let mut tree = Tree::new(big_config()).expect("config");
    let mut adapters = Vec::new();
    let mut keys = Vec::new();
    for lora in 0..LORAS {
        let reg = tree.register_adapter(lora, 1, Tier::Hbm, 0).expect("room");
        adapters.push(reg.adapter);
        let mut left = BLOCKS_PER_LORA;
        let mut chain = 0;
        while left > 0 {
            let blocks = left.min(256);
            tree.block_keys(reg.adapter, &prompt(lora, chain, blocks), &mut keys);
            let mut parent = reg.node;
            for &key in &keys {
                parent = tree.insert_kv(parent, Some(key), 1).expect("room");
            }
            left -= blocks;
            chain += 1;
        }
    }
    (tree, adapters)
}

fn pool(c: &mut Criterion) {
    let mut pool = PagePool::new(Tier::Hbm, 1 << 20);
    let _held = pool.alloc((1 << 20) * 9 / 10, 0).expect("room");
    c.bench_function("pool/alloc_free_page", |b| {
        b.iter(|| {
            let page = pool.alloc(1, 1).expect("room");
            pool.free(black_box(page));
        })
    });
}

fn tree_match_insert(c: &mut Criterion) {
    let (mut tree, adapters) = chained_tree();
    assert_eq!(tree.node_count() as u32, LORAS * (BLOCKS_PER_LORA + 1));
    let tokens = prompt(500, 1, 256);
    let mut found = Match::default();
    tree.match_prefix(adapters[500], &tokens, &mut found)
        .expect("known");
    assert_eq!(found.blocks.len(), 256);
    c.bench_function("tree/match_256_blocks_of_1m", |b| {
        b.iter(|| {
            tree.match_prefix(adapters[500], black_box(&tokens), &mut found)
                .expect("known");
            black_box(found.blocks.len())
        })
    });
    let fresh = prompt(500, 99, 256);
    let mut keys = Vec::new();
    tree.block_keys(adapters[500], &fresh, &mut keys);
    let lora = tree.adapter_node(adapters[500]).expect("known");
    c.bench_function("tree/insert_256_blocks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut parent: NodeId = lora;
                let mut first = None;
                for &key in &keys {
                    parent = tree.insert_kv(parent, Some(key), 2).expect("room");
                    first.get_or_insert(parent);
                }
                total += start.elapsed();
                tree.drop_subtree(first.expect("inserted"))
                    .expect("unpinned");
            }
            total
        })
    });
}

fn tree_select(c: &mut Criterion) {
    // 1,000 LoRAs × 1,000 first-level blocks: 1M HBM leaves, the worst case for selection.
    let recency_per_ns = 1.0 / (30e9 * std::f32::consts::LN_2);
    let mut config = big_config();
    config.rank = RankKey::Decayed { recency_per_ns };
    let mut tree = Tree::new(config).expect("config");
    for lora in 0..LORAS {
        let reg = tree.register_adapter(lora, 1, Tier::Hbm, 0).expect("room");
        for block in 0..BLOCKS_PER_LORA {
            let now = u64::from(block.wrapping_mul(2_654_435_761) % 1_000_000);
            tree.insert_kv(reg.node, None, now).expect("room");
        }
    }
    // The swapper's score shape in the log domain: log2(cost) + log2(decayed visits) +
    // log2(recency factor); the recency factor exp(-(now - t)/tau) ranks like t / (tau ln 2).
    let cost_log2 = [0.0f32, 4.0, 1.0];
    let mut out = Vec::with_capacity(1_000);
    c.bench_function("tree/leaves_lowest_1k_of_1m", |b| {
        b.iter(|| {
            tree.lowest_ranked(
                Candidates::SwapOut,
                1_000,
                |kind, _| Some(cost_log2[kind as usize]),
                &mut out,
            );
            black_box(out.len())
        })
    });
    c.bench_function("tree/leaves_lowest_1k_of_1m_scan", |b| {
        b.iter(|| {
            tree.lowest(
                Candidates::SwapOut,
                1_000,
                |v| {
                    cost_log2[v.kind() as usize]
                        + v.frequency_log2_ref()
                        + v.last_use_ns() as f32 * recency_per_ns
                },
                &mut out,
            );
            black_box(out.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = pool, tree_match_insert, tree_select
}
criterion_main!(benches);
