//! What a compute backend needs to run the step in flight: per sequence, its new tokens, the
//! position they start at, its adapter, and the HBM pages of its KV blocks. The simulator
//! does not need this (it only times steps); the CPU and CUDA runtimes do.

use fastlibra_alloc::{AdapterRef, NodeId, NodeKind, Tier};

use super::Engine;

/// One sequence of the step in flight, as a backend computes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSeq {
    /// The request.
    pub request: u64,
    /// The adapter version whose weights it computes with.
    pub adapter: AdapterRef,
    /// That version's LoRA node (its weights sit in HBM pages while the step runs).
    pub lora_node: NodeId,
    /// Tokens computed now, at positions `start_pos..start_pos + tokens.len()`.
    pub tokens: Vec<u32>,
    /// Positions whose KV is already in the block table's pages.
    pub start_pos: u32,
    /// HBM pages of the sequence's KV blocks, shallowest first, covering at least
    /// `start_pos + tokens.len()` positions (`pages_per_block` pages per block).
    pub block_table: Vec<u32>,
    /// Whether this sequence samples a token in this step (its order among the samplers is
    /// the order of `StepCmd::samples`).
    pub samples: bool,
}

impl Engine {
    /// The sequences of the step in flight, in the order of its entries (samplers in the
    /// order of `StepCmd::samples`); empty when no step is in flight. Every page listed is
    /// pinned in HBM until the step is reported done.
    pub fn step_inputs(&self) -> Vec<StepSeq> {
        let Some(step) = &self.step else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(step.entries.len());
        for &(slot, id, n, samples) in &step.entries {
            let Some(r) = self.requests.get(slot as usize).filter(|r| r.id == id) else {
                continue;
            };
            let Some(deepest) = r.deepest else { continue };
            let mut chain = Vec::with_capacity(r.chain_blocks as usize);
            let mut node = Some(deepest);
            let mut lora_node = deepest;
            while let Some(id) = node {
                let Ok(view) = self.tree.node(id) else { break };
                if view.kind() != NodeKind::Kv {
                    lora_node = id;
                    break;
                }
                chain.push(id);
                node = self.tree.parent(id).ok().flatten();
            }
            chain.reverse();
            let mut block_table = Vec::with_capacity(chain.len());
            for id in chain {
                if let Ok(pages) = self.tree.pages(id, Tier::Hbm) {
                    block_table.extend(pages);
                }
            }
            let start = r.computed as usize;
            let end = (start + n as usize).min(r.tokens.len());
            out.push(StepSeq {
                request: id,
                adapter: r.adapter_ref,
                lora_node,
                tokens: r.tokens[start..end].to_vec(),
                start_pos: r.computed,
                block_table,
                samples,
            });
        }
        out
    }

    /// The whole context of `request` up to its last token in the step in flight (history,
    /// prompt and generated tokens), so a verifier can recompute it from scratch; `None` if
    /// the request is not in that step. Valid until the step is reported done.
    pub fn step_context(&self, request: u64) -> Option<&[u32]> {
        let step = self.step.as_ref()?;
        let &(slot, _, n, _) = step.entries.iter().find(|e| e.1 == request)?;
        let r = self
            .requests
            .get(slot as usize)
            .filter(|r| r.id == request)?;
        let end = (r.computed as usize + n as usize).min(r.tokens.len());
        Some(&r.tokens[..end])
    }
}
