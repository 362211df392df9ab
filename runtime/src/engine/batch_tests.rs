//! Multi-node transfer commands: a path's missing blocks travel as one command, which
//! completes, fails or is lost as a whole, and so do background demotions to NVMe; swap-out
//! victims, and demotions that free host room a waiting copy needs, keep one command each. Invariants are checked after every input
//! (`EngineConfig::check_invariants`).

use fastlibra_alloc::{NodeId, NodeState, Tier};

use super::test_config::{BLOCK, checked_config};
use super::{Engine, Link, Lost, NewRequest, PolicyKind, TransferCmd};

fn engine(transfer_pages_max: u32) -> Engine {
    engine_sized([64, 64, 64], transfer_pages_max)
}

fn engine_sized(pages: [u32; 3], transfer_pages_max: u32) -> Engine {
    let mut config = checked_config(PolicyKind::Fastlibra, pages);
    config.transfer_pages_max = transfer_pages_max;
    Engine::new(config).expect("valid config")
}

fn tokens(blocks: u32) -> Vec<u32> {
    (0..blocks * BLOCK + 1).map(|i| 7 + i).collect()
}

/// Adapter 0 in HBM, and the published blocks of `tokens(blocks)` under it in the host tier.
fn path_in_host(e: &mut Engine, blocks: u32) -> Vec<NodeId> {
    let adapter = e.tree.current_adapter(0).expect("registered");
    let lora = e.tree.adapter_node(adapter).expect("registered");
    e.tree.begin_transfer(lora, Tier::Hbm).expect("room");
    e.tree.complete_transfer(lora).expect("begun");
    let mut keys = Vec::new();
    let all = tokens(blocks);
    e.tree
        .block_keys(adapter, &all[..(blocks * BLOCK) as usize], &mut keys);
    let mut ids = Vec::new();
    let mut parent = lora;
    for key in keys {
        parent = e.tree.insert_kv(parent, Some(key), 0).expect("room");
        ids.push(parent);
    }
    for &id in ids.iter().rev() {
        e.tree.begin_transfer(id, Tier::Host).expect("a leaf");
        e.tree.complete_transfer(id).expect("begun");
    }
    e.tree.check_invariants().expect("consistent");
    ids
}

fn arrive(e: &mut Engine, id: u64, blocks: u32) {
    e.handle_arrival(
        1,
        NewRequest {
            id,
            adapter: 0,
            session: None,
            tokens: tokens(blocks),
            max_new_tokens: 1,
        },
    );
}

fn polled(e: &mut Engine) -> Vec<TransferCmd> {
    std::iter::from_fn(|| e.poll_transfer()).collect()
}

fn tier_of(e: &Engine, id: NodeId) -> NodeState {
    e.tree.node(id).expect("alive").state()
}

#[test]
fn a_missing_path_comes_back_as_one_command() {
    let mut e = engine(32);
    let ids = path_in_host(&mut e, 5);
    arrive(&mut e, 1, 5);
    let cmds = polled(&mut e);
    assert_eq!(cmds.len(), 1, "one copy for the whole path: {cmds:?}");
    let cmd = cmds[0];
    assert_eq!(cmd.link, Link::H2D);
    assert_eq!(cmd.nodes(), &ids[..], "shallowest first");
    assert_eq!((cmd.pages, cmd.bytes), (5, 5 << 20));
    assert!(cmd.on_demand);
    assert_eq!(e.stats().swap_ins_on_demand, 5);
    e.handle_transfer_done(2, cmd.id, true).expect("issued");
    for &id in &ids {
        assert_eq!(tier_of(&e, id), NodeState::Stable(Tier::Hbm));
    }
    assert_eq!(e.stats().bytes.h2d, 5 << 20);
    assert!(
        e.poll_step().is_some(),
        "the request runs once its path landed"
    );
}

#[test]
fn a_failed_command_aborts_every_node_and_is_retried() {
    let mut e = engine(32);
    let ids = path_in_host(&mut e, 4);
    arrive(&mut e, 1, 4);
    let cmd = polled(&mut e)[0];
    assert_eq!(cmd.nodes().len(), 4);
    e.handle_transfer_done(2, cmd.id, false).expect("issued");
    assert_eq!(e.stats().transfer_failures, 1);
    // Every node is back where it was, and the waiting request asked again for all of them.
    let again = polled(&mut e);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].nodes(), &ids[..]);
    assert_ne!(again[0].id, cmd.id);
    e.handle_transfer_done(3, again[0].id, true)
        .expect("issued");
    assert_eq!(tier_of(&e, ids[3]), NodeState::Stable(Tier::Hbm));
    e.tree.check_invariants().expect("consistent");
}

#[test]
fn a_lost_command_drops_every_node() {
    let mut e = engine(32);
    let ids = path_in_host(&mut e, 3);
    arrive(&mut e, 1, 3);
    let cmd = polled(&mut e)[0];
    let lost = e.handle_transfer_lost(2, cmd.id).expect("issued");
    assert_eq!(lost, Lost::Kv { dropped: true });
    for &id in &ids {
        assert!(e.tree.node(id).is_err(), "lost data is never served");
    }
    assert_eq!(e.stats().nodes_lost, 3);
    assert_eq!(e.stats().pages_lost, 3);
    e.tree.check_invariants().expect("consistent");
}

#[test]
fn a_command_holds_at_most_its_page_bound() {
    let mut e = engine(3);
    let ids = path_in_host(&mut e, 5);
    arrive(&mut e, 1, 5);
    let first = polled(&mut e);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].nodes(), &ids[..3]);
    e.handle_transfer_done(2, first[0].id, true)
        .expect("issued");
    let rest = polled(&mut e);
    assert_eq!(rest.len(), 1, "the rest of the path follows: {rest:?}");
    assert_eq!(rest[0].nodes(), &ids[3..]);
    e.handle_transfer_done(3, rest[0].id, true).expect("issued");
    assert!(e.poll_step().is_some());
}

#[test]
fn swap_out_victims_keep_one_command_each() {
    let mut e = engine(32);
    let adapter = e.tree.current_adapter(0).expect("registered");
    let lora = e.tree.adapter_node(adapter).expect("registered");
    e.tree.begin_transfer(lora, Tier::Hbm).expect("room");
    e.tree.complete_transfer(lora).expect("begun");
    let leaves: Vec<NodeId> = (0..3u64)
        .map(|key| e.tree.insert_kv(lora, Some(key), 0).expect("room"))
        .collect();
    for &leaf in &leaves {
        assert_eq!(e.evict_one(leaf), 1);
    }
    e.links.release();
    // Each victim frees its HBM pages as soon as its own copy ends.
    let cmds = polled(&mut e);
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    assert!(
        cmds.iter()
            .all(|c| c.link == Link::D2H && c.nodes().len() == 1)
    );
    assert_eq!(e.pending_out_pages, 3);
    e.handle_transfer_done(1, cmds[0].id, true).expect("issued");
    assert_eq!(e.pending_out_pages, 2);
    assert_eq!(tier_of(&e, leaves[0]), NodeState::Stable(Tier::Host));
}

#[test]
fn demotions_to_nvme_share_one_command() {
    let mut e = engine(32);
    let ids = path_in_host(&mut e, 3);
    // Leaves first, as the host tier's room-making takes them.
    for &id in ids.iter().rev() {
        assert!(e.start_transfer(id, Tier::Nvme, false));
    }
    e.links.release();
    let cmds = polled(&mut e);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(cmds[0].link, Link::NvmeWrite);
    assert_eq!(cmds[0].nodes().len(), 3);
    e.handle_transfer_done(1, cmds[0].id, false)
        .expect("issued");
    for &id in &ids {
        assert_eq!(
            tier_of(&e, id),
            NodeState::Stable(Tier::Host),
            "the source is intact"
        );
    }
}

#[test]
fn an_adapter_travels_alone() {
    let mut e = engine(32);
    let ids = path_in_host(&mut e, 2);
    let lora = e.tree.lora_of(ids[0]).expect("alive");
    e.tree
        .begin_transfer(lora, Tier::Host)
        .expect("no HBM child");
    e.tree.complete_transfer(lora).expect("begun");
    arrive(&mut e, 1, 2);
    let cmds = polled(&mut e);
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].nodes(),
        &[lora],
        "the adapter's copy carries nothing else"
    );
    e.handle_transfer_done(2, cmds[0].id, true).expect("issued");
    let path = polled(&mut e);
    assert_eq!(path.len(), 1);
    assert_eq!(path[0].nodes(), &ids[..]);
}

#[test]
fn promoting_a_queued_background_command_moves_all_its_nodes() {
    let mut e = engine(32);
    let ids = path_in_host(&mut e, 2);
    // Two independent prefetches of top blocks would join; here the path's top block is
    // queued in the background, then a request needs it.
    assert!(e.start_transfer(ids[0], Tier::Hbm, false));
    let id = e
        .start_transfer_in(ids[1], Tier::Hbm, false, None)
        .expect("joins behind its parent");
    assert_eq!(e.links.tail(Link::H2D, false).map(|c| c.id), Some(id));
    assert!(e.links.promote(ids[1]));
    assert!(e.links.tail(Link::H2D, false).is_none());
    let urgent = e.links.tail(Link::H2D, true).expect("promoted");
    assert_eq!(urgent.nodes(), &ids[..]);
    assert!(urgent.on_demand);
    assert!(!e.links.promote(ids[0]), "already on demand");
}

#[test]
fn a_demotion_a_waiting_copy_needs_travels_alone() {
    // A host tier of 8 pages, full of KV leaves, and a request whose block sits on NVMe: its
    // copy to the host waits for room.
    let mut e = engine_sized([64, 8, 64], 32);
    let ids = path_in_host(&mut e, 1);
    e.tree.begin_transfer(ids[0], Tier::Nvme).expect("a leaf");
    e.tree.complete_transfer(ids[0]).expect("begun");
    let lora = e.tree.lora_of(ids[0]).expect("alive");
    let fillers: Vec<NodeId> = (0..8u64)
        .map(|key| {
            let leaf = e.tree.insert_kv(lora, Some(1000 + key), 0).expect("room");
            e.tree.begin_transfer(leaf, Tier::Host).expect("a leaf");
            e.tree.complete_transfer(leaf).expect("begun");
            leaf
        })
        .collect();
    assert_eq!(e.tree.usage(Tier::Host).free, 0);
    arrive(&mut e, 1, 1);
    let cmds = polled(&mut e);
    // The one page the copy needs comes from one demotion, on demand and alone; the rest of
    // the round is background work and shares a command.
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert!(cmds.iter().all(|c| c.link == Link::NvmeWrite));
    assert!(cmds[0].on_demand);
    assert_eq!(cmds[0].nodes().len(), 1);
    assert!(!cmds[1].on_demand);
    assert_eq!(cmds[1].nodes().len(), fillers.len() - 1);
    // Its landing frees the room at once, and the waiting copy starts.
    e.handle_transfer_done(2, cmds[0].id, true).expect("issued");
    let read = polled(&mut e);
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0].link, Link::NvmeRead);
    assert_eq!(read[0].nodes(), &ids[..]);
}
