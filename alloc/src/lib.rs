//! # fastlibra-alloc: the memory system
//!
//! One paged pool per memory tier (GPU HBM, pinned host memory, NVMe), shared by LoRA adapters
//! and KV blocks, and the dependency tree that says what may live where:
//!
//! ```text
//!                  root (virtual, always "in HBM")
//!                /            |             \
//!        LoRA a@v0        LoRA b@v0       LoRA a@v1 ...   one node per adapter *version*
//!         /     \             |                           (a reload starts an empty subtree)
//!     kv[0]    kv[0]'       kv[0]                         KV blocks keyed by the chained hash
//!       |                     |                           of all tokens up to and including
//!     kv[1]                 kv[1]                         theirs (a prefix tree per LoRA)
//! ```
//!
//! Two rules make "no invalid KV in HBM" a checked invariant (FASTLIBRA's usage dependency):
//! a node may enter HBM only under a parent resident in HBM, and may leave HBM only as an HBM
//! leaf. Running requests pin what they use; a pin counts on the node and all its ancestors
//! (page-level reference counts), and pinned nodes never move.
//!
//! ## Lifecycle of a node
//!
//! ```text
//!   register_adapter / insert_kv          begin_transfer(to)        complete_transfer
//!  ───────────────────────────────▶ Stable(t) ─────────────▶ InFlight{t→u} ─────────────▶ Stable(u)
//!                                    │  ▲   ▲                      │ abort_transfer
//!                              pin   │  │   └──────────────────────┘
//!                                    ▼  │ unpin / guard drop
//!                               Stable(HBM), pins > 0
//!   drop_subtree / unregister_adapter: Stable and unpinned → gone (pages freed in every tier)
//! ```
//!
//! The crate holds no policy: which node to move is decided by the caller, who ranks
//! candidates with its own scores ([`Tree::lowest`], [`Tree::highest`]). It holds no clock:
//! every time is an argument in nanoseconds. It knows nothing of devices: pages are indices;
//! what they hold is the backend's business.
//!
//! ## What is allocated when
//!
//! Everything is sized at start-up in [`Tree::new`]: per tier a free map (`bitvec`, one bit
//! per page) and two `u32` arrays (page owner, next page of the same owner: a node's pages are
//! an intrusive list); the node table (`slab`, one slot per page of all tiers plus the root, which
//! bounds the node count since every node holds at least one page); the block index (a hash map
//! with that many buckets reserved); the pin table (`slab`, `max_pins` slots) and the resident
//! lists. Matching, inserting, pinning, transfers, dropping and candidate selection then
//! allocate nothing (callers reuse their [`Match`] and output vectors). The adapter table grows
//! on registration, which is not on the request path.
//!
//! ## Metadata cost
//!
//! Per page: 8 bytes (owner and next, `u32` each) plus one bit of free map. Per node: the
//! `slab` entry of a [`node`] record (80 bytes on x86-64; a test keeps it within budget), 4 bytes in a
//! resident list, and for a published block one index entry (12 bytes of key and value plus a
//! control byte, at the map's load factor). Both stay under the 96-byte budget.
//!
//! ## Checking
//!
//! [`Tree::check_invariants`] recomputes every derived count from ground truth (per tier
//! free + used = capacity; every page owned by exactly one node; every HBM-resident node has
//! its ancestors in HBM; pinned nodes are in HBM and not moving; pin counts equal live pins;
//! pinned + unpinned = resident). Tests, the fuzzer and the simulator call it after every step.

mod dense_set;
pub mod error;
pub mod geometry;
pub mod hash;
pub mod ids;
pub mod model;
pub mod node;
pub mod pool;
pub mod tier;
pub mod tree;

pub use error::{AllocError, Busy, Result};
pub use geometry::PageGeometry;
pub use ids::{AdapterRef, NodeId, PinId};
pub use node::{NodeKind, NodeState, NodeView};
pub use pool::{PageId, PageList, PagePool};
pub use tier::Tier;
pub use tree::invariants::InvariantViolation;
pub use tree::{
    Candidates, Dropped, Match, MatchedBlock, PinGuard, RankKey, Registered, Scored, TierUsage,
    Transfer, Tree, TreeConfig,
};
