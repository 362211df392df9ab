//! Unit tests per operation of the tree, including every bad input the issue lists: each
//! returns a typed error and leaves the state unchanged.

use fastlibra_alloc::*;

const BLOCK: u32 = 4;

fn tree(hbm: u32, host: u32, nvme: u32) -> Tree {
    Tree::new(TreeConfig::new([hbm, host, nvme], 1, BLOCK)).unwrap()
}

fn check(tree: &Tree) {
    tree.check_invariants().unwrap();
}

/// A cheap fingerprint of the observable state, to assert "unchanged" after an error.
fn snapshot(tree: &Tree) -> (Vec<TierUsage>, usize, u32, usize) {
    (
        Tier::ALL.iter().map(|t| tree.usage(*t)).collect(),
        tree.node_count(),
        tree.pinned_count(),
        tree.live_pins(),
    )
}

/// Registers adapter 1 in HBM and inserts the blocks of `tokens` under it.
fn chain(tree: &mut Tree, tokens: &[u32]) -> (AdapterRef, Vec<NodeId>) {
    let reg = tree.register_adapter(1, 2, Tier::Hbm, 0).unwrap();
    let mut keys = Vec::new();
    tree.block_keys(reg.adapter, tokens, &mut keys);
    let mut parent = reg.node;
    let mut ids = Vec::new();
    for key in keys {
        parent = tree.insert_kv(parent, Some(key), 1).unwrap();
        ids.push(parent);
    }
    check(tree);
    (reg.adapter, ids)
}

#[test]
fn register_match_insert_and_reload() {
    let mut t = tree(16, 16, 16);
    let (adapter, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(ids.len(), 2);
    let mut m = Match::default();
    t.match_prefix(adapter, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0], &mut m)
        .unwrap();
    assert_eq!(m.blocks.len(), 2);
    assert_eq!(m.keys.len(), 3);
    assert_eq!(m.deepest(), Some(ids[1]));
    assert_eq!(m.blocks[0].state, NodeState::Stable(Tier::Hbm));
    // A different first block shares nothing, even if later blocks are equal.
    t.match_prefix(adapter, &[0, 2, 3, 4, 5, 6, 7, 8], &mut m)
        .unwrap();
    assert_eq!(m.blocks.len(), 0);
    // Reload: a new version with an empty subtree; the old version is stale.
    let reg = t.register_adapter(1, 2, Tier::Host, 5).unwrap();
    assert_eq!(reg.adapter.version, 1);
    assert!(reg.retired.is_some());
    t.match_prefix(reg.adapter, &[1, 2, 3, 4, 5, 6, 7, 8], &mut m)
        .unwrap();
    assert_eq!(
        m.blocks.len(),
        0,
        "a reloaded adapter must not reuse old KV"
    );
    assert_eq!(
        t.match_prefix(adapter, &[1, 2, 3, 4], &mut m),
        Err(AllocError::StaleVersion {
            adapter: 1,
            requested: 0,
            current: 1
        })
    );
    let dropped = t.drop_subtree(reg.retired.unwrap()).unwrap();
    assert_eq!(dropped.nodes, 3);
    assert_eq!(dropped.pages, [4, 0, 0]);
    check(&t);
}

#[test]
fn unknown_adapter_is_typed_and_changes_nothing() {
    let mut t = tree(8, 8, 8);
    let before = snapshot(&t);
    let mut m = Match::default();
    let bad = AdapterRef { id: 9, version: 0 };
    assert_eq!(
        t.match_prefix(bad, &[1, 2, 3, 4], &mut m),
        Err(AllocError::UnknownAdapter { adapter: 9 })
    );
    assert_eq!(
        t.unregister_adapter(9).unwrap_err(),
        AllocError::UnknownAdapter { adapter: 9 }
    );
    assert_eq!(snapshot(&t), before);
    check(&t);
}

#[test]
fn tokens_shorter_than_a_block() {
    let mut t = tree(8, 8, 8);
    let (adapter, _) = chain(&mut t, &[]);
    let mut m = Match::default();
    // Matching a short prompt finds the LoRA and no block (a valid request).
    t.match_prefix(adapter, &[1, 2], &mut m).unwrap();
    assert!(m.blocks.is_empty() && m.keys.is_empty() && m.lora.is_some());
    // Making a block key from a partial block is a typed error.
    let before = snapshot(&t);
    assert_eq!(
        t.next_block_key(adapter, None, &[1, 2]),
        Err(AllocError::PartialBlock {
            tokens: 2,
            block_tokens: BLOCK
        })
    );
    assert_eq!(snapshot(&t), before);
}

#[test]
fn pins_propagate_and_guard_releases_on_drop() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let lora = t.lora_of(ids[1]).unwrap();
    let pin = t.pin(ids[1]).unwrap();
    assert_eq!(t.node(ids[0]).unwrap().pins(), 1);
    assert_eq!(t.node(lora).unwrap().pins(), 1);
    assert_eq!(t.pinned_count(), 3);
    {
        let _guard = t.pin_guard(ids[0]).unwrap();
        assert_eq!(t.node(lora).unwrap().pins(), 2);
    }
    t.settle();
    assert_eq!(t.node(lora).unwrap().pins(), 1);
    let guard = t.pin_guard(ids[0]).unwrap();
    t.release(guard).unwrap();
    t.unpin(pin).unwrap();
    assert_eq!(t.pinned_count(), 0);
    check(&t);
}

#[test]
fn double_unpin_is_typed_and_changes_nothing() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4]);
    let pin = t.pin(ids[0]).unwrap();
    let other = t.pin(ids[0]).unwrap();
    t.unpin(pin).unwrap();
    let before = snapshot(&t);
    assert_eq!(t.unpin(pin), Err(AllocError::UnknownPin { pin }));
    assert_eq!(snapshot(&t), before);
    assert_eq!(t.node(ids[0]).unwrap().pins(), 1);
    t.unpin(other).unwrap();
    check(&t);
}

#[test]
fn pin_of_a_moving_node_is_refused() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4]);
    t.begin_transfer(ids[0], Tier::Host).unwrap();
    let before = snapshot(&t);
    assert_eq!(
        t.pin(ids[0]),
        Err(AllocError::NodeBusy {
            node: ids[0],
            reason: Busy::InFlight
        })
    );
    assert_eq!(snapshot(&t), before);
    t.complete_transfer(ids[0]).unwrap();
    assert!(matches!(t.pin(ids[0]), Err(AllocError::NotInHbm { .. })));
    check(&t);
}

#[test]
fn transfer_to_a_full_tier_is_refused() {
    let mut t = tree(8, 1, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    t.begin_transfer(ids[1], Tier::Host).unwrap();
    t.complete_transfer(ids[1]).unwrap();
    let before = snapshot(&t);
    assert_eq!(
        t.begin_transfer(ids[0], Tier::Host),
        Err(AllocError::OutOfPages {
            tier: Tier::Host,
            needed: 1,
            free: 0
        })
    );
    assert_eq!(snapshot(&t), before);
    check(&t);
}

#[test]
fn usage_dependency_in_both_directions() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let lora = t.lora_of(ids[0]).unwrap();
    // Only leaves leave HBM.
    assert_eq!(
        t.begin_transfer(ids[0], Tier::Host),
        Err(AllocError::HasHbmChildren {
            node: ids[0],
            children: 1
        })
    );
    assert!(t.begin_transfer(lora, Tier::Host).is_err());
    for id in [ids[1], ids[0], lora] {
        t.begin_transfer(id, Tier::Host).unwrap();
        t.complete_transfer(id).unwrap();
        check(&t);
    }
    // Only the topmost non-resident node enters HBM.
    assert_eq!(
        t.begin_transfer(ids[1], Tier::Hbm),
        Err(AllocError::ParentNotInHbm { node: ids[1] })
    );
    let mut out = Vec::new();
    t.highest(Candidates::SwapIn, 10, |_| 1.0, &mut out);
    assert_eq!(out.iter().map(|s| s.node).collect::<Vec<_>>(), vec![lora]);
    t.begin_transfer(lora, Tier::Hbm).unwrap();
    // A child may not enter while its parent is still on its way.
    assert!(t.begin_transfer(ids[0], Tier::Hbm).is_err());
    t.complete_transfer(lora).unwrap();
    t.begin_transfer(ids[0], Tier::Hbm).unwrap();
    // A parent may not leave while a child is entering.
    assert!(t.begin_transfer(lora, Tier::Nvme).is_err());
    t.abort_transfer(ids[0]).unwrap();
    assert_eq!(t.node(ids[0]).unwrap().tier(), Tier::Host);
    assert_eq!(t.invalid_kv_pages(), 0);
    check(&t);
}

#[test]
fn a_path_enters_hbm_behind_its_parent_in_one_batch() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for &id in ids.iter().rev() {
        t.begin_transfer(id, Tier::Host).unwrap();
        t.complete_transfer(id).unwrap();
    }
    // The topmost missing block goes first; the rest follow behind it, each behind its parent.
    t.begin_transfer(ids[0], Tier::Hbm).unwrap();
    assert_eq!(
        t.begin_transfer(ids[1], Tier::Hbm),
        Err(AllocError::ParentNotInHbm { node: ids[1] }),
        "the plain begin still wants the parent in HBM"
    );
    t.begin_transfer_behind(ids[1]).unwrap();
    t.begin_transfer_behind(ids[2]).unwrap();
    check(&t);
    // Behind a parent that is not moving into HBM, nothing starts.
    let mut fresh = tree(8, 8, 8);
    let (_, other) = chain(&mut fresh, &[1, 2, 3, 4, 5, 6, 7, 8]);
    for &id in other.iter().rev() {
        fresh.begin_transfer(id, Tier::Host).unwrap();
        fresh.complete_transfer(id).unwrap();
    }
    assert_eq!(
        fresh.begin_transfer_behind(other[1]),
        Err(AllocError::ParentNotInHbm { node: other[1] })
    );
    // Nothing lands before its parent, and no parent aborts before its child.
    assert_eq!(
        t.complete_transfer(ids[1]),
        Err(AllocError::ParentNotInHbm { node: ids[1] })
    );
    assert!(t.abort_transfer(ids[1]).is_err());
    check(&t);
    // Aborting deepest first gives every reservation back.
    for &id in ids.iter().rev() {
        t.abort_transfer(id).unwrap();
        check(&t);
    }
    assert_eq!(t.usage(Tier::Hbm).kv, 0);
    // Completing shallowest first lands the whole path.
    t.begin_transfer(ids[0], Tier::Hbm).unwrap();
    t.begin_transfer_behind(ids[1]).unwrap();
    t.begin_transfer_behind(ids[2]).unwrap();
    for &id in &ids {
        t.complete_transfer(id).unwrap();
        check(&t);
    }
    assert_eq!(t.usage(Tier::Hbm).kv, 3);
    assert_eq!(t.invalid_kv_pages(), 0);
}

#[test]
fn without_dependency_kv_can_outlive_its_lora_in_hbm() {
    let mut config = TreeConfig::new([8, 8, 8], 1, BLOCK);
    config.enforce_dependency = false;
    let mut t = Tree::new(config).unwrap();
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let lora = t.lora_of(ids[0]).unwrap();
    t.begin_transfer(lora, Tier::Host).unwrap();
    t.complete_transfer(lora).unwrap();
    assert_eq!(t.invalid_kv_pages(), 2);
    check(&t);
    // Pinning still needs the whole path in HBM.
    assert!(matches!(t.pin(ids[1]), Err(AllocError::NotInHbm { .. })));
}

#[test]
fn busy_subtrees_cannot_be_dropped() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let pin = t.pin(ids[1]).unwrap();
    let before = snapshot(&t);
    assert!(matches!(
        t.drop_subtree(ids[0]),
        Err(AllocError::NodeBusy {
            reason: Busy::Pinned,
            ..
        })
    ));
    assert!(matches!(
        t.unregister_adapter(1),
        Err(AllocError::NodeBusy { .. })
    ));
    assert_eq!(snapshot(&t), before);
    t.unpin(pin).unwrap();
    t.begin_transfer(ids[1], Tier::Nvme).unwrap();
    assert!(matches!(
        t.drop_subtree(ids[0]),
        Err(AllocError::NodeBusy {
            reason: Busy::InFlight,
            ..
        })
    ));
    t.complete_transfer(ids[1]).unwrap();
    let dropped = t.unregister_adapter(1).unwrap();
    assert_eq!(dropped.nodes, 3);
    assert_eq!(dropped.pages, [3, 0, 1]);
    assert!(t.current_adapter(1).is_err());
    assert_eq!(
        t.node(ids[0]).unwrap_err(),
        AllocError::UnknownNode { node: ids[0] }
    );
    check(&t);
}

#[test]
fn insert_errors_leave_state_unchanged() {
    let mut t = tree(3, 8, 8);
    let (adapter, ids) = chain(&mut t, &[1, 2, 3, 4]);
    let key = t.next_block_key(adapter, None, &[1, 2, 3, 4]).unwrap();
    let before = snapshot(&t);
    assert_eq!(
        t.insert_kv(t.lora_of(ids[0]).unwrap(), Some(key), 2),
        Err(AllocError::Duplicate { existing: ids[0] })
    );
    assert!(matches!(
        t.insert_kv(ids[0], None, 2),
        Err(AllocError::OutOfPages { .. })
    ));
    assert_eq!(snapshot(&t), before);
    // A private block becomes matchable once published.
    t.begin_transfer(ids[0], Tier::Host).unwrap();
    t.complete_transfer(ids[0]).unwrap();
    let lora = t.lora_of(ids[0]).unwrap();
    let private = t.insert_kv(lora, None, 3).unwrap();
    let key2 = t.next_block_key(adapter, None, &[5, 5, 5, 5]).unwrap();
    t.publish(private, key2).unwrap();
    let mut m = Match::default();
    t.match_prefix(adapter, &[5, 5, 5, 5], &mut m).unwrap();
    assert_eq!(m.deepest(), Some(private));
    check(&t);
}

#[test]
fn candidates_follow_caller_scores() {
    let mut t = tree(16, 16, 16);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let lora = t.lora_of(ids[0]).unwrap();
    let side = t.insert_kv(lora, None, 9).unwrap();
    let mut out = Vec::new();
    // Leaves only: ids[1] and `side`; the lowest score first.
    t.lowest(
        Candidates::SwapOut,
        5,
        |v| if v.id() == side { 1.0 } else { 2.0 },
        &mut out,
    );
    assert_eq!(
        out.iter().map(|s| s.node).collect::<Vec<_>>(),
        vec![side, ids[1]]
    );
    t.lowest(Candidates::SwapOut, 1, |v| v.depth() as f32, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].node, side);
    let _pin = t.pin(side).unwrap();
    t.lowest(Candidates::SwapOut, 5, |_| 0.0, &mut out);
    assert_eq!(out.iter().map(|s| s.node).collect::<Vec<_>>(), vec![ids[1]]);
}

#[test]
fn visits_decay_with_time() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4]);
    let half_life = t.config().visit_half_life_ns;
    t.touch(ids[0], 1 + half_life).unwrap();
    let view = t.node(ids[0]).unwrap();
    assert_eq!(view.visits(), 2);
    // Visit at 1 ns, then one half-life later: 0.5 + 1.
    let now = 1 + half_life;
    assert!((view.frequency_at(now, half_life) - 1.5).abs() < 1e-3);
    assert!((view.frequency_at(now + half_life, half_life) - 0.75).abs() < 1e-3);
    assert_eq!(view.last_use_ns(), 1 + half_life);
    assert!(t.node(t.lora_of(ids[0]).unwrap()).unwrap().visits() >= 2);
}

#[test]
fn node_table_is_bounded_by_pages() {
    let mut t = tree(2, 0, 0);
    let reg = t.register_adapter(1, 1, Tier::Hbm, 0).unwrap();
    let a = t.insert_kv(reg.node, None, 0).unwrap();
    assert!(matches!(
        t.insert_kv(a, None, 0),
        Err(AllocError::OutOfPages { .. }) | Err(AllocError::TableFull { .. })
    ));
    check(&t);
}

#[test]
fn pins_move_down_a_path_in_place() {
    let mut t = tree(8, 8, 8);
    let (_, ids) = chain(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let lora = t.lora_of(ids[0]).unwrap();
    let pin = t.pin(lora).unwrap();
    t.move_pin_down(pin, ids[1]).unwrap();
    assert_eq!(t.pinned_node(pin).unwrap(), ids[1]);
    assert_eq!(t.node(ids[0]).unwrap().pins(), 1);
    assert_eq!(t.node(lora).unwrap().pins(), 1);
    check(&t);
    // Not upward, not sideways; nothing changes on error.
    let side = t.insert_kv(lora, None, 3).unwrap();
    let before = snapshot(&t);
    assert!(matches!(
        t.move_pin_down(pin, side),
        Err(AllocError::NotBelow { .. })
    ));
    assert!(matches!(
        t.move_pin_down(pin, ids[0]),
        Err(AllocError::NotBelow { .. })
    ));
    assert_eq!(snapshot(&t), before);
    t.unpin(pin).unwrap();
    assert_eq!(t.pinned_count(), 0);
    check(&t);
}
