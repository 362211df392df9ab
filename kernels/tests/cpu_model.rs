//! End-to-end checks of the CPU backend: cached pages give the same logits as recomputation,
//! wherever the pages lie; KV is tied to the adapter that computed it; batching changes
//! nothing; bad input is a typed error.

use fastlibra_kernels::cpu::ops::{RopeTable, attend, dot};
use fastlibra_kernels::cpu::{CpuError, CpuLora, CpuModel, CpuModelConfig, KvArena, SeqInput};

const BLOCK: usize = 4;

fn small() -> CpuModelConfig {
    CpuModelConfig {
        vocab: 97,
        ..CpuModelConfig::tiny()
    }
}

fn model() -> CpuModel {
    CpuModel::random(small(), 7).expect("valid config")
}

fn arena(pages: usize) -> KvArena {
    KvArena::for_model(&small(), BLOCK, pages).expect("valid arena")
}

fn prompt(len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| (i * 31 + 5) % 97).collect()
}

/// Largest `|a − b| / max(1, |b|)`.
fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert!(a.iter().all(|v| v.is_finite()), "non-finite logits");
    let d = max_rel_diff(a, b);
    assert!(d < 1e-5, "logits differ by {d}");
}

fn assert_differ(a: &[f32], b: &[f32]) {
    let d = max_rel_diff(a, b);
    assert!(d > 1e-3, "logits should differ, max difference {d}");
}

#[test]
fn prefix_reuse_equals_one_prefill_and_decode() {
    let m = model();
    let tokens = prompt(14);
    let table: Vec<u32> = (0..4).collect();

    let mut whole = arena(4);
    let one = m.prefill(&mut whole, &tokens, &table, 0, None).unwrap();

    // The first two blocks, then the rest reading them back from the pages.
    let mut split = arena(4);
    m.prefill(&mut split, &tokens[..2 * BLOCK], &table, 0, None)
        .unwrap();
    let reused = m
        .prefill(&mut split, &tokens[2 * BLOCK..], &table, 2 * BLOCK, None)
        .unwrap();
    assert_close(&reused, &one);

    let mut stepped = arena(4);
    let mut last = Vec::new();
    for (pos, &t) in tokens.iter().enumerate() {
        last = m.decode(&mut stepped, t, &table, pos, None).unwrap();
    }
    assert_close(&last, &one);
    // The pages hold the same KV whichever way they were filled.
    for p in 0..4 {
        assert_close(stepped.page(p).unwrap(), whole.page(p).unwrap());
    }
}

#[test]
fn all_position_logits_match_decode() {
    let m = model();
    let tokens = prompt(6);
    let table = [0, 1];
    let mut a = arena(2);
    let seq = SeqInput {
        tokens: &tokens,
        block_table: &table,
        start_pos: 0,
        lora: None,
    };
    let all = m.forward_batch_all(&mut a, &[seq]).unwrap().remove(0);
    assert_eq!(all.len(), tokens.len() * small().vocab);
    let mut b = arena(2);
    for (pos, &t) in tokens.iter().enumerate() {
        let step = m.decode(&mut b, t, &table, pos, None).unwrap();
        assert_close(&step, &all[pos * small().vocab..][..small().vocab]);
    }
}

#[test]
fn pages_can_be_anywhere() {
    let m = model();
    let tokens = prompt(15);
    let mut a = arena(8);
    let in_order = m.prefill(&mut a, &tokens, &[0, 1, 2, 3], 0, None).unwrap();
    let mut b = arena(8);
    let permuted = m.prefill(&mut b, &tokens, &[6, 2, 7, 0], 0, None).unwrap();
    assert_close(&permuted, &in_order);
    assert_eq!(a.page(0), b.page(6));
    assert_eq!(a.page(3), b.page(0));
}

#[test]
fn kv_is_tied_to_its_adapter() {
    let m = model();
    let c = small();
    let lora_a = CpuLora::random(&c, 8, 1.0, 1).unwrap();
    let lora_b = CpuLora::random(&c, 8, 1.0, 2).unwrap();
    let tokens = prompt(12);
    let table = [0, 1, 2];

    let base = m.prefill(&mut arena(3), &tokens, &table, 0, None).unwrap();
    let fresh_b = m
        .prefill(&mut arena(3), &tokens, &table, 0, Some(&lora_b))
        .unwrap();
    let fresh_a = m
        .prefill(&mut arena(3), &tokens, &table, 0, Some(&lora_a))
        .unwrap();
    assert_differ(&fresh_a, &base);
    assert_differ(&fresh_b, &fresh_a);

    // The prefix's KV computed under A, then the rest under B: not what B computes alone.
    let mut shared = arena(3);
    m.prefill(&mut shared, &tokens[..8], &table, 0, Some(&lora_a))
        .unwrap();
    let stale = m
        .prefill(&mut shared, &tokens[8..], &table, 8, Some(&lora_b))
        .unwrap();
    assert_differ(&stale, &fresh_b);

    // Under the same adapter the reuse is exact.
    let mut same = arena(3);
    m.prefill(&mut same, &tokens[..8], &table, 0, Some(&lora_b))
        .unwrap();
    let reused = m
        .prefill(&mut same, &tokens[8..], &table, 8, Some(&lora_b))
        .unwrap();
    assert_close(&reused, &fresh_b);
}

#[test]
fn batch_equals_one_by_one() {
    let m = model();
    let c = small();
    let lora_a = CpuLora::random(&c, 4, 0.5, 3).unwrap();
    let lora_b = CpuLora::random(&c, 8, 2.0, 4).unwrap();
    let (t0, t1, t2) = (prompt(9), prompt(3), prompt(6));
    // Sequence 2 continues a cached prefix of 4 tokens in page 5.
    let mut batched = arena(8);
    m.prefill(&mut batched, &prompt(4), &[5], 0, Some(&lora_b))
        .unwrap();
    let mut single = batched.clone();
    let seqs = [
        SeqInput {
            tokens: &t0,
            block_table: &[0, 1, 2],
            start_pos: 0,
            lora: Some(&lora_a),
        },
        SeqInput {
            tokens: &t1,
            block_table: &[3],
            start_pos: 0,
            lora: None,
        },
        SeqInput {
            tokens: &t2,
            block_table: &[5, 6, 7],
            start_pos: 4,
            lora: Some(&lora_b),
        },
    ];
    let together = m.forward_batch(&mut batched, &seqs).unwrap();
    for (seq, logits) in seqs.iter().zip(&together) {
        let alone = m
            .prefill(
                &mut single,
                seq.tokens,
                seq.block_table,
                seq.start_pos,
                seq.lora,
            )
            .unwrap();
        assert_close(logits, &alone);
    }
    assert_differ(&together[0], &together[1]);
}

#[test]
fn attention_over_one_token_returns_its_value() {
    let q = [0.3, -1.2, 4.0, 0.5];
    let k = [1.0, 2.0, -3.0, 0.1];
    let v = [7.0, -8.0, 9.0, 10.0];
    let mut out = [0.0; 4];
    attend(&q, 1, |_| &k[..], |_| &v[..], &mut Vec::new(), &mut out);
    assert_eq!(out, v);
}

#[test]
fn attention_averages_equal_keys() {
    let q = [1.0, 0.0];
    let k = [0.5, 0.5];
    let values = [[2.0, 0.0], [0.0, 4.0]];
    let mut out = [0.0; 2];
    attend(
        &q,
        2,
        |_| &k[..],
        |i| &values[i][..],
        &mut Vec::new(),
        &mut out,
    );
    assert_eq!(out, [1.0, 2.0]);
}

#[test]
fn rope_at_position_zero_is_identity_and_depends_on_distance_only() {
    let x: Vec<f32> = (0..16).map(|i| i as f32 * 0.25 - 2.0).collect();
    let y: Vec<f32> = (0..16).map(|i| (i as f32).sin()).collect();
    let mut at_zero = x.clone();
    RopeTable::new(8, 10_000.0, [0]).apply(0, &mut at_zero);
    assert_eq!(at_zero, x);

    // q at m, k at n: the score depends on m − n only.
    let rope = RopeTable::new(16, 10_000.0, [3, 1, 12, 10]);
    let rotated = |row: usize, v: &[f32]| {
        let mut v = v.to_vec();
        rope.apply(row, &mut v);
        v
    };
    let near = dot(&rotated(0, &x), &rotated(1, &y));
    let far = dot(&rotated(2, &x), &rotated(3, &y));
    assert!((near - far).abs() < 1e-4, "{near} vs {far}");
}

#[test]
fn gqa_groups_query_heads_onto_kv_heads() {
    let c = small();
    assert_eq!(
        (0..4).map(|h| c.kv_head_of(h)).collect::<Vec<_>>(),
        [0, 0, 1, 1]
    );
    // Multi-head attention (kv_heads = heads) is the degenerate group of one.
    let mha = CpuModelConfig {
        kv_heads: 4,
        ..small()
    };
    assert_eq!(
        (0..4).map(|h| mha.kv_head_of(h)).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(CpuModel::random(mha, 1).is_ok());
    let bad = CpuModelConfig {
        kv_heads: 3,
        ..small()
    };
    assert!(matches!(
        CpuModel::random(bad, 1),
        Err(CpuError::Config { .. })
    ));
    // The engine's page size in bytes follows the KV width.
    assert_eq!(c.kv_bytes_per_token(), 2 * 2 * 2 * 16 * 4);
    assert_eq!(c.model_spec().kv_bytes_per_token(), c.kv_bytes_per_token());
}

#[test]
fn bad_input_is_a_typed_error() {
    let m = model();
    let c = small();
    let mut a = arena(4);
    let tokens = prompt(9);
    assert!(matches!(
        m.prefill(&mut a, &tokens, &[0, 1], 0, None),
        Err(CpuError::BlockTableTooShort {
            needed: 3,
            got: 2,
            ..
        })
    ));
    assert!(matches!(
        m.prefill(&mut a, &[1, 97], &[0], 0, None),
        Err(CpuError::TokenOutOfRange { token: 97, .. })
    ));
    assert!(matches!(
        m.prefill(&mut a, &[], &[0], 0, None),
        Err(CpuError::EmptyInput { seq: 0 })
    ));
    assert!(matches!(
        m.prefill(&mut a, &tokens, &[0, 1, 4], 0, None),
        Err(CpuError::PageOutOfRange { page: 4, .. })
    ));
    assert!(matches!(
        m.prefill(&mut a, &tokens, &[0, 1, 0], 0, None),
        Err(CpuError::PageConflict { page: 0, .. })
    ));
    assert!(matches!(
        m.decode(&mut a, 1, &[0, 1], usize::MAX, None),
        Err(CpuError::Config { .. })
    ));
    let mut wrong = KvArena::new(4, c.page_floats(BLOCK) + 1, BLOCK).unwrap();
    assert!(matches!(
        m.prefill(&mut wrong, &tokens, &[0, 1, 2], 0, None),
        Err(CpuError::PageSize { .. })
    ));
    let other = CpuLora::random(
        &CpuModelConfig {
            hidden: 32,
            ..c.clone()
        },
        4,
        1.0,
        1,
    )
    .unwrap();
    assert!(matches!(
        m.prefill(&mut a, &tokens, &[0, 1, 2], 0, Some(&other)),
        Err(CpuError::LoraShape { .. })
    ));
    // Two sequences writing one page.
    let seqs = [
        SeqInput {
            tokens: &tokens[..2],
            block_table: &[3],
            start_pos: 0,
            lora: None,
        },
        SeqInput {
            tokens: &tokens[..2],
            block_table: &[3],
            start_pos: 0,
            lora: None,
        },
    ];
    assert!(matches!(
        m.forward_batch(&mut a, &seqs),
        Err(CpuError::PageConflict { page: 3, .. })
    ));
    // Nothing was written by the failed passes.
    assert!(a.page(0).unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn shared_read_only_prefix_is_allowed() {
    let m = model();
    let mut a = arena(4);
    let tokens = prompt(6);
    m.prefill(&mut a, &tokens[..4], &[0], 0, None).unwrap();
    let seqs = [
        SeqInput {
            tokens: &tokens[4..],
            block_table: &[0, 1],
            start_pos: 4,
            lora: None,
        },
        SeqInput {
            tokens: &tokens[4..5],
            block_table: &[0, 2],
            start_pos: 4,
            lora: None,
        },
    ];
    let out = m.forward_batch(&mut a, &seqs).unwrap();
    let alone = m.prefill(&mut arena(4), &tokens, &[0, 1], 0, None).unwrap();
    assert_close(&out[0], &alone);
}

#[test]
fn default_model_is_finite_and_seeded() {
    let c = CpuModelConfig::default();
    let m = CpuModel::random(c.clone(), 42).unwrap();
    let mut a = KvArena::for_model(&c, 16, 1).unwrap();
    let logits = m.prefill(&mut a, &[1, 2, 3], &[0], 0, None).unwrap();
    assert_eq!(logits.len(), c.vocab);
    assert!(logits.iter().all(|v| v.is_finite()));
    let again = CpuModel::random(c.clone(), 42).unwrap();
    let mut b = KvArena::for_model(&c, 16, 1).unwrap();
    assert_eq!(
        again.prefill(&mut b, &[1, 2, 3], &[0], 0, None).unwrap(),
        logits
    );
}
