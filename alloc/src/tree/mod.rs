//! The dependency tree: virtual root → LoRA adapter versions → per-LoRA prefix trees of KV
//! blocks, over one page pool per tier.
//!
//! The tree owns the pools, so that "every page is owned by exactly one node" and "every
//! HBM-resident node has its ancestors in HBM" are properties of one structure that
//! [`Tree::check_invariants`] can recompute from ground truth. The operations are split by
//! concern: `adapters.rs` (register, reload, unregister, lookup), `kv.rs` (match, insert,
//! publish, visits), `pins.rs` (pins and guards), `transfer.rs` (moves between tiers),
//! `drop.rs` (dropping subtrees), `select.rs` (swap candidates ranked by caller scores) and
//! `invariants.rs`.

mod adapters;
mod drop;
pub mod invariants;
mod kv;
mod pins;
mod rank;
mod select;
mod transfer;

use std::cell::RefCell;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use slab::Slab;

use crate::dense_set::DenseSet;
use crate::error::{AllocError, Result};
use crate::ids::{NONE, NodeId, PinId};
use crate::node::{Node, NodeKind, NodeView};
use crate::pool::{PageIter, PagePool};
use crate::tier::Tier;

pub use adapters::Registered;
pub use drop::Dropped;
pub use kv::{Match, MatchedBlock};
pub use pins::PinGuard;
pub use rank::RankKey;
pub use select::{Candidates, Scored};
pub use transfer::Transfer;

/// Sizes and switches fixed at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeConfig {
    /// Pages per tier, indexed by [`Tier::index`].
    pub pages: [u32; 3],
    /// Pages per KV block.
    pub pages_per_block: u32,
    /// Tokens per KV block.
    pub block_tokens: u32,
    /// Enforce the usage dependency between a LoRA and its KV in HBM. Off only to model
    /// systems without it (vLLM, the `-wom` ablation): then KV may stay in HBM while its LoRA
    /// has left, which is exactly the "invalid KV" those systems suffer from.
    pub enforce_dependency: bool,
    /// Half-life of the visit frequency, in nanoseconds.
    pub visit_half_life_ns: u64,
    /// Most pins alive at once.
    pub max_pins: u32,
    /// The rank key of [`Tree::lowest_ranked`] and [`Tree::highest_ranked`].
    pub rank: RankKey,
}

impl TreeConfig {
    /// A configuration with the given pages per tier and block shape, the dependency enforced,
    /// a 10 s visit half-life and room for 65,536 pins.
    pub fn new(pages: [u32; 3], pages_per_block: u32, block_tokens: u32) -> Self {
        TreeConfig {
            pages,
            pages_per_block,
            block_tokens,
            enforce_dependency: true,
            visit_half_life_ns: 10_000_000_000,
            max_pins: 65_536,
            rank: RankKey::LastUse,
        }
    }

    /// Most nodes alive at once: every node but the root holds at least one page in the tier it
    /// lives in, so the node table never needs more slots than there are pages.
    pub fn max_nodes(&self) -> u32 {
        self.pages
            .iter()
            .fold(1u32, |sum, p| sum.saturating_add(*p))
    }
}

/// Pages of one tier, split by owner kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierUsage {
    /// Pages in the tier.
    pub capacity: u32,
    /// Free pages.
    pub free: u32,
    /// Pages held by LoRA adapters (resident or reserved for an incoming transfer).
    pub lora: u32,
    /// Pages held by KV blocks (resident or reserved for an incoming transfer).
    pub kv: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AdapterEntry {
    pub(crate) version: u32,
    pub(crate) slot: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PinRecord {
    pub(crate) serial: u32,
    pub(crate) slot: u32,
}

/// The dependency tree and the page pools it allocates from. See the crate docs.
#[derive(Debug)]
pub struct Tree {
    pub(crate) config: TreeConfig,
    pub(crate) pools: [PagePool; 3],
    pub(crate) nodes: Slab<Node>,
    pub(crate) next_serial: u32,
    /// Published KV blocks: chained key → node slot.
    pub(crate) index: FxHashMap<u64, u32>,
    /// Current version of each registered adapter.
    pub(crate) adapters: FxHashMap<u32, AdapterEntry>,
    /// Nodes resident in each tier (the source tier while in flight).
    pub(crate) resident: [DenseSet; 3],
    /// Nodes whose pin count is non-zero.
    pub(crate) pinned_nodes: u32,
    pub(crate) pins: Slab<PinRecord>,
    pub(crate) next_pin_serial: u32,
    /// Pins whose guards were dropped, released at the start of the next mutation.
    pub(crate) released: Rc<RefCell<Vec<PinId>>>,
    /// Pages per tier held by LoRA (0) and KV (1), reserved destinations included.
    pub(crate) used_by_kind: [[u32; 2]; 3],
    /// Resident nodes per tier and kind, ordered by rank key (see `rank.rs`).
    pub(crate) ranked: rank::RankSets,
    /// Swap-out candidates, ordered by rank key (see `rank.rs`).
    pub(crate) swap_out: rank::ExactSets,
    /// Droppable leaves of the NVMe tier, ordered by rank key (see `rank.rs`).
    pub(crate) nvme_leaves: rank::ExactSets,
    pub(crate) scratch: Vec<u32>,
}

pub(crate) const ROOT: u32 = 0;

impl Tree {
    /// Builds the tree and allocates every table it will ever use.
    pub fn new(config: TreeConfig) -> Result<Self> {
        if config.pages_per_block == 0 || config.block_tokens == 0 {
            return Err(AllocError::Config(
                "pages_per_block and block_tokens must be positive".into(),
            ));
        }
        if config.visit_half_life_ns == 0 {
            return Err(AllocError::Config(
                "visit_half_life_ns must be positive".into(),
            ));
        }
        let max_nodes = config.max_nodes() as usize;
        let mut nodes = Slab::with_capacity(max_nodes);
        let root = nodes.insert(Node::new(
            NodeKind::Root,
            0,
            Tier::Hbm,
            crate::pool::PageList::EMPTY,
        ));
        debug_assert_eq!(root, ROOT as usize);
        let [hbm, host, nvme] = config.pages;
        Ok(Tree {
            pools: [
                PagePool::new(Tier::Hbm, hbm),
                PagePool::new(Tier::Host, host),
                PagePool::new(Tier::Nvme, nvme),
            ],
            nodes,
            next_serial: 1,
            index: FxHashMap::with_capacity_and_hasher(max_nodes, Default::default()),
            adapters: FxHashMap::default(),
            resident: Tier::ALL.map(|t| DenseSet::with_capacity(config.pages[t.index()] as usize)),
            pinned_nodes: 0,
            pins: Slab::with_capacity(config.max_pins as usize),
            next_pin_serial: 1,
            released: Rc::new(RefCell::new(Vec::with_capacity(config.max_pins as usize))),
            used_by_kind: [[0; 2]; 3],
            ranked: Default::default(),
            swap_out: Default::default(),
            nvme_leaves: Default::default(),
            scratch: Vec::with_capacity(max_nodes.min(1 << 20)),
            config,
        })
    }

    /// The configuration the tree was built with.
    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    /// The pool of one tier.
    pub fn pool(&self, tier: Tier) -> &PagePool {
        &self.pools[tier.index()]
    }

    /// Pages of one tier, split by owner kind.
    pub fn usage(&self, tier: Tier) -> TierUsage {
        let pool = &self.pools[tier.index()];
        let [lora, kv] = self.used_by_kind[tier.index()];
        TierUsage {
            capacity: pool.capacity(),
            free: pool.pages_free(),
            lora,
            kv,
        }
    }

    /// Live nodes, the root excluded.
    pub fn node_count(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Nodes resident in `tier` (counting a node in flight in its source tier).
    pub fn resident_count(&self, tier: Tier) -> usize {
        self.resident[tier.index()].len()
    }

    /// Nodes with at least one pin on them or below them.
    pub fn pinned_count(&self) -> u32 {
        self.pinned_nodes
    }

    /// A view of a live node.
    pub fn node(&self, id: NodeId) -> Result<NodeView<'_>> {
        let node = self.get(id)?;
        Ok(NodeView { id, node })
    }

    /// The parent of a node (`None` for a LoRA, whose parent is the virtual root).
    pub fn parent(&self, id: NodeId) -> Result<Option<NodeId>> {
        let parent = self.get(id)?.parent;
        Ok((parent != ROOT && parent != NONE).then(|| self.id_of(parent)))
    }

    /// The LoRA node a node belongs to (itself for a LoRA).
    pub fn lora_of(&self, id: NodeId) -> Result<NodeId> {
        let mut slot = id.key;
        self.get(id)?;
        while self.nodes[slot as usize].kind == NodeKind::Kv {
            slot = self.nodes[slot as usize].parent;
        }
        Ok(self.id_of(slot))
    }

    /// The pages a node holds in `tier` (its resident pages, or the reserved destination pages
    /// of a transfer in flight); empty if it holds none there.
    pub fn pages(&self, id: NodeId, tier: Tier) -> Result<PageIter<'_>> {
        let node = self.get(id)?;
        let list = if node.tier == tier {
            node.pages
        } else if node.flight == Some(tier) {
            node.flight_pages
        } else {
            crate::pool::PageList::EMPTY
        };
        Ok(self.pools[tier.index()].iter(list))
    }

    pub(crate) fn get(&self, id: NodeId) -> Result<&Node> {
        match self.nodes.get(id.key as usize) {
            Some(node) if node.serial == id.serial && id.key != ROOT => Ok(node),
            _ => Err(AllocError::UnknownNode { node: id }),
        }
    }

    pub(crate) fn id_of(&self, slot: u32) -> NodeId {
        NodeId {
            key: slot,
            serial: self.nodes[slot as usize].serial,
        }
    }

    fn take_serial(&mut self) -> u32 {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1).max(1);
        serial
    }

    /// Creates a node under `parent` with `pages` already allocated in `tier`.
    pub(crate) fn attach(
        &mut self,
        parent: u32,
        kind: NodeKind,
        tier: Tier,
        pages: crate::pool::PageList,
    ) -> u32 {
        let serial = self.take_serial();
        let slot = self.nodes.insert(Node::new(kind, serial, tier, pages)) as u32;
        self.pools[tier.index()].set_owner(pages, slot);
        self.used_by_kind[tier.index()][kind_index(kind)] += pages.len();
        let first = self.nodes[parent as usize].first_child;
        let parent_depth = self.nodes[parent as usize].depth;
        {
            let node = &mut self.nodes[slot as usize];
            node.parent = parent;
            node.next_sibling = first;
            node.depth = if kind == NodeKind::Kv {
                parent_depth + 1
            } else {
                0
            };
        }
        if first != NONE {
            self.nodes[first as usize].prev_sibling = slot;
        }
        self.nodes[parent as usize].first_child = slot;
        if tier == Tier::Hbm {
            self.nodes[parent as usize].hbm_children += 1;
        }
        self.add_resident(slot, tier);
        self.sync_candidates(slot);
        self.sync_candidates(parent);
        slot
    }

    pub(crate) fn add_resident(&mut self, slot: u32, tier: Tier) {
        let pos = self.resident[tier.index()].insert(slot);
        self.nodes[slot as usize].resident_pos = pos;
        self.rank_insert(slot, tier);
    }

    /// Takes a node off its tier's resident list (a node in flight is already off the rank
    /// sets).
    pub(crate) fn remove_resident_list(&mut self, slot: u32, tier: Tier) {
        let pos = self.nodes[slot as usize].resident_pos;
        if let Some(moved) = self.resident[tier.index()].remove(pos) {
            self.nodes[moved as usize].resident_pos = pos;
        }
        self.nodes[slot as usize].resident_pos = NONE;
    }

    pub(crate) fn ensure_room_for_node(&self) -> Result<()> {
        let capacity = self.config.max_nodes();
        if self.nodes.len() as u32 >= capacity {
            return Err(AllocError::TableFull {
                table: "node",
                capacity,
            });
        }
        Ok(())
    }
}

pub(crate) fn kind_index(kind: NodeKind) -> usize {
    match kind {
        NodeKind::Lora | NodeKind::Root => 0,
        NodeKind::Kv => 1,
    }
}
