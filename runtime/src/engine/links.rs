//! Transfer commands and the per-link queues that order them: on-demand loads before
//! background work (prefetch, swap-out, demotion), and at most `depth` commands handed to the
//! driver per link at a time so that later on-demand loads can still overtake.
//!
//! One command may carry several nodes (at most [`TRANSFER_NODES_MAX`], and at most
//! `EngineConfig::transfer_pages_max` pages): the missing blocks of one path, or KV blocks
//! demoted from host to NVMe in the background (a demotion a waiting copy needs travels alone,
//! so its host pages free when its own copy lands). The engine appends a node to such a command while it is still
//! queued (never to one already handed to the driver), so the driver sees one copy and reports
//! one completion for all of them.

use std::collections::VecDeque;

use fastlibra_alloc::{NodeId, Tier};

/// A data path between tiers; each direction is its own link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// Host → HBM.
    H2D = 0,
    /// HBM → host.
    D2H = 1,
    /// NVMe → host.
    NvmeRead = 2,
    /// Host → NVMe.
    NvmeWrite = 3,
}

impl Link {
    /// Every link.
    pub const ALL: [Link; 4] = [Link::H2D, Link::D2H, Link::NvmeRead, Link::NvmeWrite];

    /// The link a move between adjacent tiers uses.
    pub fn between(from: Tier, to: Tier) -> Option<Link> {
        match (from, to) {
            (Tier::Host, Tier::Hbm) => Some(Link::H2D),
            (Tier::Hbm, Tier::Host) => Some(Link::D2H),
            (Tier::Nvme, Tier::Host) => Some(Link::NvmeRead),
            (Tier::Host, Tier::Nvme) => Some(Link::NvmeWrite),
            _ => None,
        }
    }
}

/// Most nodes one [`TransferCmd`] carries.
pub const TRANSFER_NODES_MAX: usize = 32;

/// A copy the driver must carry out, then report with `handle_transfer_done`: every page of
/// every node in [`TransferCmd::nodes`], from `from` to `to`, as one transfer that succeeds,
/// fails or is lost as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferCmd {
    /// Id to report back.
    pub id: u64,
    /// The link it uses.
    pub link: Link,
    /// The nodes whose pages move, `node_count` of them; the rest repeat the first.
    nodes: [NodeId; TRANSFER_NODES_MAX],
    node_count: u8,
    /// Source tier.
    pub from: Tier,
    /// Destination tier.
    pub to: Tier,
    /// Pages moved, all nodes together.
    pub pages: u32,
    /// Bytes moved, all nodes together.
    pub bytes: u64,
    /// A waiting request needs it (else it is background work).
    pub on_demand: bool,
}

impl TransferCmd {
    /// A command that moves one node.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        link: Link,
        node: NodeId,
        from: Tier,
        to: Tier,
        pages: u32,
        bytes: u64,
        on_demand: bool,
    ) -> Self {
        TransferCmd {
            id,
            link,
            nodes: [node; TRANSFER_NODES_MAX],
            node_count: 1,
            from,
            to,
            pages,
            bytes,
            on_demand,
        }
    }

    /// The nodes whose pages move, in the order they must land: a node copied behind its
    /// parent comes after it (complete in this order, abort in the reverse).
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes[..usize::from(self.node_count)]
    }

    /// Whether it can carry no further node.
    pub(crate) fn is_full(&self) -> bool {
        usize::from(self.node_count) == TRANSFER_NODES_MAX
    }

    /// Adds a node (the command must not be full).
    fn push_node(&mut self, node: NodeId, pages: u32, bytes: u64) {
        assert!(
            !self.is_full(),
            "a transfer command carries at most {TRANSFER_NODES_MAX} nodes"
        );
        self.nodes[usize::from(self.node_count)] = node;
        self.node_count += 1;
        self.pages += pages;
        self.bytes += bytes;
    }
}

#[derive(Debug, Default)]
struct Queue {
    urgent: VecDeque<TransferCmd>,
    background: VecDeque<TransferCmd>,
    in_flight: u32,
}

/// The four link queues.
#[derive(Debug, Default)]
pub(crate) struct Links {
    queues: [Queue; 4],
    /// Commands released to the driver, not yet polled.
    outbox: VecDeque<TransferCmd>,
    depth: u32,
    /// Commands per node in the background queues, so that [`Links::promote`] scans a queue
    /// only when the node is in one (queues grow long under pressure).
    background_nodes: rustc_hash::FxHashMap<NodeId, u32>,
}

impl Links {
    pub(crate) fn new(depth: u32) -> Self {
        Links {
            depth: depth.max(1),
            ..Links::default()
        }
    }

    pub(crate) fn push(&mut self, cmd: TransferCmd) {
        let queue = &mut self.queues[cmd.link as usize];
        if cmd.on_demand {
            queue.urgent.push_back(cmd);
        } else {
            queue.background.push_back(cmd);
            for &node in cmd.nodes() {
                *self.background_nodes.entry(node).or_default() += 1;
            }
        }
    }

    /// The last command queued (not yet released to the driver) on `link`, in the on-demand
    /// queue if `urgent`, else in the background queue.
    pub(crate) fn tail(&self, link: Link, urgent: bool) -> Option<&TransferCmd> {
        let queue = &self.queues[link as usize];
        if urgent {
            queue.urgent.back()
        } else {
            queue.background.back()
        }
    }

    /// Adds `node` to the command [`Links::tail`] returns for the same arguments; returns that
    /// command's id.
    pub(crate) fn append(
        &mut self,
        link: Link,
        urgent: bool,
        node: NodeId,
        pages: u32,
        bytes: u64,
    ) -> u64 {
        let queue = &mut self.queues[link as usize];
        let cmd = if urgent {
            queue.urgent.back_mut()
        } else {
            queue.background.back_mut()
        };
        let cmd = cmd.expect("a queued command to append to");
        cmd.push_node(node, pages, bytes);
        if !urgent {
            *self.background_nodes.entry(node).or_default() += 1;
        }
        cmd.id
    }

    /// Moves queued commands to the outbox while their link has room.
    pub(crate) fn release(&mut self) {
        for queue in &mut self.queues {
            while queue.in_flight < self.depth {
                let cmd = match queue.urgent.pop_front() {
                    Some(cmd) => cmd,
                    None => match queue.background.pop_front() {
                        Some(cmd) => {
                            for &node in cmd.nodes() {
                                left_background(&mut self.background_nodes, node);
                            }
                            cmd
                        }
                        None => break,
                    },
                };
                queue.in_flight += 1;
                self.outbox.push_back(cmd);
            }
        }
    }

    /// A waiting request now needs the queued background copy of `node`: the command that
    /// carries it (with all its nodes) moves to the on-demand queue (it keeps its id). False if
    /// it is not waiting in a background queue.
    pub(crate) fn promote(&mut self, node: fastlibra_alloc::NodeId) -> bool {
        if !self.background_nodes.contains_key(&node) {
            return false;
        }
        for queue in &mut self.queues {
            if let Some(pos) = queue
                .background
                .iter()
                .position(|c| c.nodes().contains(&node))
            {
                let mut cmd = queue.background.remove(pos).expect("found");
                cmd.on_demand = true;
                for &moved in cmd.nodes() {
                    left_background(&mut self.background_nodes, moved);
                }
                queue.urgent.push_back(cmd);
                return true;
            }
        }
        false
    }

    pub(crate) fn poll(&mut self) -> Option<TransferCmd> {
        self.outbox.pop_front()
    }

    pub(crate) fn done(&mut self, link: Link) {
        let queue = &mut self.queues[link as usize];
        queue.in_flight = queue.in_flight.saturating_sub(1);
    }

    /// Commands queued or in flight on `link`.
    pub(crate) fn busy(&self, link: Link) -> usize {
        let q = &self.queues[link as usize];
        q.urgent.len() + q.background.len() + q.in_flight as usize
    }
}

/// One node of a background command left the background queues.
fn left_background(counts: &mut rustc_hash::FxHashMap<NodeId, u32>, node: NodeId) {
    if let Some(count) = counts.get_mut(&node) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: u64, on_demand: bool) -> TransferCmd {
        let mut tree =
            fastlibra_alloc::Tree::new(fastlibra_alloc::TreeConfig::new([1, 1, 1], 1, 1))
                .expect("config");
        let node = tree
            .register_adapter(0, 1, Tier::Host, 0)
            .expect("room")
            .node;
        TransferCmd::new(id, Link::H2D, node, Tier::Host, Tier::Hbm, 1, 1, on_demand)
    }

    #[test]
    fn on_demand_loads_overtake_queued_prefetches() {
        let mut links = Links::new(1);
        links.push(cmd(1, false));
        links.push(cmd(2, false));
        links.release();
        assert_eq!(links.poll().map(|c| c.id), Some(1));
        assert_eq!(links.poll(), None, "depth 1: one command at a time");
        links.push(cmd(3, true));
        links.done(Link::H2D);
        links.release();
        assert_eq!(
            links.poll().map(|c| c.id),
            Some(3),
            "the on-demand load goes next"
        );
        links.done(Link::H2D);
        links.release();
        assert_eq!(links.poll().map(|c| c.id), Some(2));
        assert_eq!(links.busy(Link::H2D), 1);
    }
}
