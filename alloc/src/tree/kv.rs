//! Matching a request against the prefix tree, inserting and publishing KV blocks, and
//! recording visits.

use super::Tree;
use crate::error::{AllocError, Busy, Result};
use crate::hash;
use crate::ids::{AdapterRef, NONE, NodeId};
use crate::node::{NodeKind, NodeState};
use crate::tier::Tier;

/// One matched KV block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedBlock {
    /// Its node.
    pub node: NodeId,
    /// Where it is.
    pub state: NodeState,
}

/// The result of [`Tree::match_prefix`]. Reuse one value across requests: its vectors keep
/// their capacity, so matching allocates nothing once warmed up.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// The LoRA node and where it is.
    pub lora: Option<MatchedBlock>,
    /// The matched blocks, root-most first.
    pub blocks: Vec<MatchedBlock>,
    /// The chained key of every full block of the request's tokens (matched or not), so that
    /// the blocks computed next can be inserted without hashing again.
    pub keys: Vec<u64>,
}

impl Match {
    /// The deepest matched node (the LoRA if no block matched).
    pub fn deepest(&self) -> Option<NodeId> {
        self.blocks.last().or(self.lora.as_ref()).map(|b| b.node)
    }

    /// Tokens covered by the matched blocks.
    pub fn matched_blocks(&self) -> usize {
        self.blocks.len()
    }
}

impl Tree {
    /// Matches `tokens` under adapter version `adapter`: the LoRA node, then the longest chain
    /// of cached blocks whose keys equal the chained keys of the tokens' full blocks. A prompt
    /// shorter than one block matches the LoRA only. Read-only: record the use with
    /// [`Tree::touch`].
    pub fn match_prefix(&self, adapter: AdapterRef, tokens: &[u32], out: &mut Match) -> Result<()> {
        let mut keys = std::mem::take(&mut out.keys);
        self.block_keys(adapter, tokens, &mut keys);
        let matched = self.match_keys(adapter, &keys, out);
        out.keys = keys;
        matched
    }

    /// [`Tree::match_prefix`] for blocks whose chained keys are already known (as
    /// [`Tree::block_keys`] gives them): no hashing, one index look-up per matched block. A
    /// caller that matches the same tokens again and again keeps their keys.
    pub fn match_keys(&self, adapter: AdapterRef, keys: &[u64], out: &mut Match) -> Result<()> {
        let lora = self.adapter_node(adapter)?;
        out.blocks.clear();
        out.keys.clear();
        out.keys.extend_from_slice(keys);
        out.lora = Some(MatchedBlock {
            node: lora,
            state: self.nodes[lora.key as usize].state(),
        });
        let mut parent = lora.key;
        for key in keys {
            match self.index.get(key) {
                Some(&slot) if self.nodes[slot as usize].parent == parent => {
                    out.blocks.push(MatchedBlock {
                        node: self.id_of(slot),
                        state: self.nodes[slot as usize].state(),
                    });
                    parent = slot;
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// The chained keys of `tokens`' full blocks under `adapter` (what [`Match::keys`] holds).
    pub fn block_keys(&self, adapter: AdapterRef, tokens: &[u32], out: &mut Vec<u64>) {
        out.clear();
        let mut key = hash::lora_seed(adapter.id, adapter.version);
        for block in tokens.chunks_exact(self.config.block_tokens as usize) {
            key = hash::chain(key, block);
            out.push(key);
        }
    }

    /// The key of one full block of `tokens` following the block keyed `prev` (or the
    /// adapter's seed when `prev` is `None`). Errors on a partial block.
    pub fn next_block_key(
        &self,
        adapter: AdapterRef,
        prev: Option<u64>,
        tokens: &[u32],
    ) -> Result<u64> {
        if tokens.len() != self.config.block_tokens as usize {
            return Err(AllocError::PartialBlock {
                tokens: tokens.len(),
                block_tokens: self.config.block_tokens,
            });
        }
        let prev = prev.unwrap_or_else(|| hash::lora_seed(adapter.id, adapter.version));
        Ok(hash::chain(prev, tokens))
    }

    /// Inserts a new KV block in HBM under `parent` (a LoRA or a KV block resident in HBM and
    /// not moving). `key` `Some` publishes it in the shared index; `None` keeps it private to
    /// its writer (a block still being filled), to be published later.
    pub fn insert_kv(&mut self, parent: NodeId, key: Option<u64>, now_ns: u64) -> Result<NodeId> {
        self.settle();
        let node = self.get(parent)?;
        if node.kind == NodeKind::Root {
            return Err(AllocError::UnknownNode { node: parent });
        }
        if node.tier != Tier::Hbm {
            return Err(AllocError::NotInHbm {
                node: parent,
                tier: node.tier,
            });
        }
        if node.flight.is_some() {
            return Err(AllocError::NodeBusy {
                node: parent,
                reason: Busy::InFlight,
            });
        }
        if let Some(key) = key
            && let Some(&existing) = self.index.get(&key)
        {
            return Err(AllocError::Duplicate {
                existing: self.id_of(existing),
            });
        }
        self.ensure_room_for_node()?;
        let pages = self.pools[Tier::Hbm.index()].alloc(self.config.pages_per_block, NONE)?;
        let slot = self.attach(parent.key, NodeKind::Kv, Tier::Hbm, pages);
        if let Some(key) = key {
            self.nodes[slot as usize].key = key;
            self.nodes[slot as usize].published = true;
            self.index.insert(key, slot);
        }
        let id = self.id_of(slot);
        self.touch_one(slot, now_ns);
        Ok(id)
    }

    /// Publishes a private block under `key`, making it matchable.
    pub fn publish(&mut self, id: NodeId, key: u64) -> Result<()> {
        self.settle();
        let node = self.get(id)?;
        if node.kind != NodeKind::Kv {
            return Err(AllocError::WrongKind {
                node: id,
                kind: node.kind,
                wanted: NodeKind::Kv,
            });
        }
        if let Some(&existing) = self.index.get(&key) {
            return Err(AllocError::Duplicate {
                existing: self.id_of(existing),
            });
        }
        if node.published {
            return Err(AllocError::Duplicate { existing: id });
        }
        let node = &mut self.nodes[id.key as usize];
        node.key = key;
        node.published = true;
        self.index.insert(key, id.key);
        Ok(())
    }

    /// Records a visit at `now_ns` on `id` and each of its ancestors up to its LoRA.
    pub fn touch(&mut self, id: NodeId, now_ns: u64) -> Result<()> {
        self.get(id)?;
        let mut slot = id.key;
        while slot != super::ROOT {
            self.touch_one(slot, now_ns);
            slot = self.nodes[slot as usize].parent;
        }
        Ok(())
    }

    pub(crate) fn touch_one(&mut self, slot: u32, now_ns: u64) {
        let half_lives = now_ns as f64 / self.config.visit_half_life_ns as f64;
        let indexed = self.rank_reindex_before(slot);
        let node = &mut self.nodes[slot as usize];
        // frequency(now) = 2^(ref - now/h); one more visit adds 1.
        let before = (f64::from(node.frequency_log2_ref) - half_lives).exp2();
        node.frequency_log2_ref = ((before + 1.0).log2() + half_lives) as f32;
        node.visits = node.visits.saturating_add(1);
        node.last_use_ns = node.last_use_ns.max(now_ns);
        self.rank_reindex_after(slot, indexed);
    }
}
