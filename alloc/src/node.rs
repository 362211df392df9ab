//! A node of the dependency tree and the read-only view callers score it by.

use crate::ids::{NONE, NodeId};
use crate::pool::PageList;
use crate::tier::Tier;

/// What a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// The virtual root (holds no pages, always "in HBM").
    Root,
    /// A LoRA adapter version: its weights, split into pages along the rank.
    Lora,
    /// One KV block (a fixed number of tokens, all layers) computed under its LoRA.
    Kv,
}

/// Where a node's pages are, and whether they are moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Resident in one tier, not moving.
    Stable(Tier),
    /// Resident in `from` while a copy into `to` is in flight (pages reserved in both).
    InFlight {
        /// The tier it still lives in.
        from: Tier,
        /// The tier it is moving to.
        to: Tier,
    },
}

/// The record of one node. Kept small: the node table is sized for millions of nodes.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) serial: u32,
    pub(crate) kind: NodeKind,
    pub(crate) tier: Tier,
    /// The destination of a transfer in flight.
    pub(crate) flight: Option<Tier>,
    /// Whether `key` is in the block index (shared KV); private blocks are not.
    pub(crate) published: bool,
    /// Whether it is in the tree's swap-out set.
    pub(crate) swap_out: bool,
    /// Whether it is in the tree's set of droppable NVMe leaves.
    pub(crate) nvme_leaf: bool,
    pub(crate) pages: PageList,
    pub(crate) flight_pages: PageList,
    pub(crate) parent: u32,
    pub(crate) first_child: u32,
    pub(crate) next_sibling: u32,
    pub(crate) prev_sibling: u32,
    /// Children resident in HBM or in flight into HBM.
    pub(crate) hbm_children: u32,
    /// Live pins on this node and its descendants (the page-level reference count).
    pub(crate) pins: u32,
    /// Position in the tier's resident list.
    pub(crate) resident_pos: u32,
    /// Chained block hash (KV) or `adapter << 32 | version` (LoRA).
    pub(crate) key: u64,
    /// Blocks from the LoRA to this node (1 for a first block; 0 for LoRA and root).
    pub(crate) depth: u32,
    pub(crate) visits: u32,
    /// log2 of the visit frequency extrapolated back to time zero: the frequency at time `t`
    /// is `2^(frequency_log2_ref - t / half_life)`. Stored this way, ranking nodes by decayed
    /// frequency at any time is ranking by this number, with no exponential per node.
    pub(crate) frequency_log2_ref: f32,
    pub(crate) last_use_ns: u64,
}

impl Node {
    pub(crate) fn new(kind: NodeKind, serial: u32, tier: Tier, pages: PageList) -> Self {
        Node {
            serial,
            kind,
            tier,
            flight: None,
            published: false,
            swap_out: false,
            nvme_leaf: false,
            pages,
            flight_pages: PageList::EMPTY,
            parent: NONE,
            first_child: NONE,
            next_sibling: NONE,
            prev_sibling: NONE,
            hbm_children: 0,
            pins: 0,
            resident_pos: NONE,
            key: 0,
            depth: 0,
            visits: 0,
            frequency_log2_ref: f32::NEG_INFINITY,
            last_use_ns: 0,
        }
    }

    pub(crate) fn state(&self) -> NodeState {
        match self.flight {
            None => NodeState::Stable(self.tier),
            Some(to) => NodeState::InFlight {
                from: self.tier,
                to,
            },
        }
    }

    /// Resident in HBM or on its way there: what the parent's `hbm_children` counts.
    pub(crate) fn counts_in_hbm(&self) -> bool {
        self.tier == Tier::Hbm || self.flight == Some(Tier::Hbm)
    }
}

/// Bytes of one node-table slot: the node record inside `slab`'s entry enum (which has
/// exactly this shape: a vacant variant holding the next free index, or the value).
pub const NODE_SLOT_BYTES: usize = {
    #[allow(dead_code)]
    enum SlabEntry {
        Vacant(usize),
        Occupied(Node),
    }
    std::mem::size_of::<SlabEntry>()
};

/// A read-only view of one node, for scoring and inspection.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    pub(crate) id: NodeId,
    pub(crate) node: &'a Node,
}

impl NodeView<'_> {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// What the node holds.
    pub fn kind(&self) -> NodeKind {
        self.node.kind
    }
    /// The tier its pages live in (the source tier while in flight).
    pub fn tier(&self) -> Tier {
        self.node.tier
    }
    /// Stable or in flight.
    pub fn state(&self) -> NodeState {
        self.node.state()
    }
    /// Its size in pages.
    pub fn pages(&self) -> u32 {
        self.node.pages.len()
    }
    /// Live pins on it and on its descendants.
    pub fn pins(&self) -> u32 {
        self.node.pins
    }
    /// Blocks from its LoRA to it (0 for a LoRA).
    pub fn depth(&self) -> u32 {
        self.node.depth
    }
    /// Number of recorded visits.
    pub fn visits(&self) -> u32 {
        self.node.visits
    }
    /// Visit frequency at `now_ns`: visits, each weighing 1 when it happened and halving every
    /// `visit_half_life_ns` since ([`TreeConfig::visit_half_life_ns`](crate::TreeConfig)).
    pub fn frequency_at(&self, now_ns: u64, half_life_ns: u64) -> f64 {
        (f64::from(self.node.frequency_log2_ref) - now_ns as f64 / half_life_ns as f64).exp2()
    }
    /// log2 of the visit frequency extrapolated to time zero. `frequency_at(t)` is
    /// `2^(this - t / half_life)`, so at any one time nodes rank by decayed frequency exactly
    /// as they rank by this number: a swapper can score a million nodes without an
    /// exponential each (add `log2` of its other factors instead of multiplying).
    pub fn frequency_log2_ref(&self) -> f32 {
        self.node.frequency_log2_ref
    }
    /// Time of the last visit, in the caller's nanoseconds.
    pub fn last_use_ns(&self) -> u64 {
        self.node.last_use_ns
    }
    /// The block key (KV) or `adapter << 32 | version` (LoRA).
    pub fn key(&self) -> u64 {
        self.node.key
    }
    /// Whether the block is in the shared index (a private block is not).
    pub fn is_published(&self) -> bool {
        self.node.published
    }
    /// Whether it has children at all.
    pub fn has_children(&self) -> bool {
        self.node.first_child != NONE
    }
}
