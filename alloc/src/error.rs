//! The one error type of the `alloc` boundary.
//!
//! Every error is an operating condition the caller can act on (free pages, wait for a pin to
//! go, retry later); the operation that returned it left the state unchanged. Programmer errors
//! (a broken invariant) are assertions, not errors.

use crate::ids::NodeId;
use crate::tier::Tier;

/// What went wrong in an `alloc` operation. The state is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The tier has fewer free pages than the operation needs.
    #[error("out of pages in {tier}: need {needed}, {free} free")]
    OutOfPages {
        /// The tier that is full.
        tier: Tier,
        /// Pages the operation needed.
        needed: u32,
        /// Pages that were free.
        free: u32,
    },
    /// No adapter with this id is registered.
    #[error("unknown adapter {adapter}")]
    UnknownAdapter {
        /// The adapter id asked for.
        adapter: u32,
    },
    /// The adapter was reloaded; the version asked for is no longer current.
    #[error("adapter {adapter} version {requested} is stale (current version {current})")]
    StaleVersion {
        /// The adapter id.
        adapter: u32,
        /// The version asked for.
        requested: u32,
        /// The current version.
        current: u32,
    },
    /// The node id does not name a live node (never existed, or was dropped).
    #[error("unknown node {node}")]
    UnknownNode {
        /// The id that was given.
        node: NodeId,
    },
    /// The node (or one in its subtree) is pinned or in flight, so it cannot be changed now.
    #[error("node {node} is busy: {reason}")]
    NodeBusy {
        /// The busy node.
        node: NodeId,
        /// Why it is busy.
        reason: Busy,
    },
    /// The operation needs the node in HBM, and it is not there.
    #[error("node {node} is not resident in HBM (it is in {tier})")]
    NotInHbm {
        /// The node.
        node: NodeId,
        /// Where it is.
        tier: Tier,
    },
    /// The node's parent is not in HBM, so the node may not enter HBM (usage dependency).
    #[error("the parent of node {node} is not resident in HBM")]
    ParentNotInHbm {
        /// The node that was to enter HBM.
        node: NodeId,
    },
    /// The node has children in HBM, so it may not leave HBM (usage dependency).
    #[error("node {node} has {children} children in HBM and cannot leave it")]
    HasHbmChildren {
        /// The node.
        node: NodeId,
        /// How many of its children are in (or entering) HBM.
        children: u32,
    },
    /// A transfer to the tier the node already lives in.
    #[error("node {node} is already in {tier}")]
    SameTier {
        /// The node.
        node: NodeId,
        /// Its tier.
        tier: Tier,
    },
    /// `complete_transfer` or `abort_transfer` on a node that is not in flight.
    #[error("node {node} has no transfer in flight")]
    NoTransfer {
        /// The node.
        node: NodeId,
    },
    /// The pin id does not name a live pin (already released, or never issued).
    #[error("pin {pin} is not live (double unpin?)")]
    UnknownPin {
        /// The pin id that was given.
        pin: crate::ids::PinId,
    },
    /// Fewer tokens than one full block were given where whole blocks are needed.
    #[error("{tokens} tokens do not make a full block of {block_tokens}")]
    PartialBlock {
        /// Tokens given.
        tokens: usize,
        /// Tokens per block.
        block_tokens: u32,
    },
    /// A block with this key is already cached under the same parent.
    #[error("a block with this key already exists: node {existing}")]
    Duplicate {
        /// The node that already holds the key.
        existing: NodeId,
    },
    /// The operation does not apply to this kind of node (for example a KV op on a LoRA).
    #[error("node {node} is a {kind:?}, the operation needs a {wanted:?}")]
    WrongKind {
        /// The node.
        node: NodeId,
        /// Its kind.
        kind: crate::node::NodeKind,
        /// The kind the operation needs.
        wanted: crate::node::NodeKind,
    },
    /// A pin can only move down to a descendant of the node it holds.
    #[error("node {node} is not below the pinned node {pinned}")]
    NotBelow {
        /// The node asked for.
        node: NodeId,
        /// The node the pin holds.
        pinned: NodeId,
    },
    /// A table sized at start-up is full (nodes or pins).
    #[error("the {table} table is full ({capacity} entries)")]
    TableFull {
        /// Which table.
        table: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Why a node is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// It holds pins (its own or its descendants').
    Pinned,
    /// A transfer is in flight.
    InFlight,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Busy::Pinned => "pinned",
            Busy::InFlight => "in flight",
        })
    }
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, AllocError>;
