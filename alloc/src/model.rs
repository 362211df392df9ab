//! A simple reference model of the tree, and a runner that drives a [`Tree`] and the model with
//! the same operations and compares them after every step.
//!
//! The model is deliberately naive (vectors, recomputation, no cleverness) so that it is easy
//! to believe. For each operation it predicts success or failure; the runner fails if the tree
//! disagrees, if the page counts differ, or if [`Tree::check_invariants`] finds anything. The
//! property tests and the `alloc_ops` fuzz target both use it: operations decode from plain
//! bytes so any byte string is a valid test case.

use crate::{
    AdapterRef, Candidates, NodeId, NodeKind, NodeView, PinGuard, PinId, RankKey, Tier, Tree,
    TreeConfig,
};

/// One operation on the tree, with indices resolved modulo what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Register (or reload) adapter `id % 4` with `pages % 3 + 1` pages in a tier.
    Register { id: u8, pages: u8, tier: u8 },
    /// Unregister adapter `id % 4`.
    Unregister { id: u8 },
    /// Insert a KV block under node `parent`, published or private.
    Insert { parent: u8, publish: bool },
    /// Pin node `node` (by id or by guard).
    Pin { node: u8, guard: bool },
    /// Release pin `pin` by id (possibly a second time) or drop a guard.
    Unpin { pin: u8 },
    /// Begin moving node `node` to a tier.
    Begin { node: u8, tier: u8 },
    /// Complete node `node`'s transfer.
    Complete { node: u8 },
    /// Abort node `node`'s transfer.
    Abort { node: u8 },
    /// Drop node `node`'s subtree.
    Drop { node: u8 },
    /// Match a request: adapter `id % 4`, `blocks` blocks of tokens from seed `seed`.
    Match { id: u8, blocks: u8, seed: u8 },
    /// Move pin `pin` down to node `node`.
    MovePin { pin: u8, node: u8 },
}

impl Op {
    fn tag(self) -> usize {
        match self {
            Op::Register { .. } => 0,
            Op::Unregister { .. } => 1,
            Op::Insert { .. } => 2,
            Op::Pin { .. } => 3,
            Op::Unpin { .. } => 4,
            Op::Begin { .. } => 5,
            Op::Complete { .. } => 6,
            Op::Abort { .. } => 7,
            Op::Drop { .. } => 8,
            Op::Match { .. } => 9,
            Op::MovePin { .. } => 10,
        }
    }

    /// Decodes one operation from the front of `bytes`; `None` when they run out.
    pub fn decode(bytes: &mut &[u8]) -> Option<Op> {
        let (&[tag, a, b], rest) = bytes.split_first_chunk::<3>()?;
        *bytes = rest;
        Some(match tag % 11 {
            0 => Op::Register {
                id: a,
                pages: b,
                tier: b >> 4,
            },
            1 => Op::Unregister { id: a },
            2 => Op::Insert {
                parent: a,
                publish: b & 1 == 1,
            },
            3 => Op::Pin {
                node: a,
                guard: b & 1 == 1,
            },
            4 => Op::Unpin { pin: a },
            5 => Op::Begin { node: a, tier: b },
            6 => Op::Complete { node: a },
            7 => Op::Abort { node: a },
            8 => Op::Drop { node: a },
            9 => Op::Match {
                id: a,
                blocks: b % 5,
                seed: b >> 3,
            },
            _ => Op::MovePin { pin: a, node: b },
        })
    }
}

#[derive(Debug, Clone)]
struct MNode {
    id: NodeId,
    /// Index of the parent in `Model::nodes`; `None` for a LoRA (parent is the root).
    parent: Option<usize>,
    lora: bool,
    tier: Tier,
    flight: Option<Tier>,
    pages: u32,
    own_pins: u32,
    alive: bool,
}

enum MPin {
    Id(PinId, usize),
    Guard(PinGuard, usize),
}

/// The reference model plus the tree under test.
pub struct Harness {
    tree: Tree,
    nodes: Vec<MNode>,
    pins: Vec<Option<MPin>>,
    released: Vec<PinId>,
    adapters: [Option<(u32, usize)>; 4],
    free: [u32; 3],
    next_key: u64,
    enforce: bool,
    succeeded: [u64; 11],
}

const BLOCK_TOKENS: u32 = 2;

/// Operations one fuzz case runs at most (bytes past them are ignored): a tree of a few
/// dozen pages is full or empty many times over in this many operations, and short cases
/// keep the fuzzer at tens of thousands of executions per second.
pub const CASE_OPS_MAX: usize = 128;

/// One fuzz case: the first byte picks the tier sizes and whether the dependency is
/// enforced, the rest are operations (at most [`CASE_OPS_MAX`]). Used by the `alloc_ops` fuzz
/// target and by the test that replays its corpus.
pub fn run_case(data: &[u8]) -> Result<(), String> {
    let Some((&shape, ops)) = data.split_first() else {
        return Ok(());
    };
    let ops = &ops[..ops.len().min(3 * CASE_OPS_MAX)];
    let pages = [
        2 + u32::from(shape & 7),
        1 + u32::from((shape >> 3) & 3),
        u32::from(shape >> 5),
    ];
    Harness::new(pages, shape & 0x80 == 0).run_bytes(ops)
}

impl Harness {
    /// A harness over a small tree (`pages` per tier) so that tiers fill up often.
    pub fn new(pages: [u32; 3], enforce_dependency: bool) -> Harness {
        let mut config = TreeConfig::new(pages, 1, BLOCK_TOKENS);
        config.enforce_dependency = enforce_dependency;
        config.max_pins = 64;
        // Both rank keys get exercised: one per dependency mode.
        config.rank = if enforce_dependency {
            RankKey::Decayed {
                recency_per_ns: 0.25,
            }
        } else {
            RankKey::LastUse
        };
        let tree = Tree::new(config).expect("valid config");
        Harness {
            tree,
            nodes: Vec::new(),
            pins: Vec::new(),
            released: Vec::new(),
            adapters: [None; 4],
            free: pages,
            next_key: 1,
            enforce: enforce_dependency,
            succeeded: [0; 11],
        }
    }

    /// Runs every operation decoded from `bytes`, checking after each.
    pub fn run_bytes(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        let mut step = 0;
        while let Some(op) = Op::decode(&mut bytes) {
            self.apply(op, step as u64)
                .map_err(|e| format!("step {step} {op:?}: {e}"))?;
            step += 1;
        }
        Ok(())
    }

    /// How many operations of each kind succeeded (in `Op::decode`'s tag order), so tests can
    /// check that random sequences reach every operation's success path.
    pub fn succeeded(&self) -> [u64; 11] {
        self.succeeded
    }

    /// Applies one operation to both and compares.
    pub fn apply(&mut self, op: Op, now: u64) -> Result<(), String> {
        let before = self.fingerprint();
        let tag = op.tag();
        match op {
            Op::Register { id, pages, tier } => self.register(id, pages, tier, now)?,
            Op::Unregister { id } => self.unregister(id)?,
            Op::Insert { parent, publish } => self.insert(parent, publish, now)?,
            Op::Pin { node, guard } => self.pin(node, guard)?,
            Op::Unpin { pin } => self.unpin(pin)?,
            Op::Begin { node, tier } => self.begin(node, tier)?,
            Op::Complete { node } => self.finish(node, true)?,
            Op::Abort { node } => self.finish(node, false)?,
            Op::Drop { node } => self.drop_node(node)?,
            Op::Match { id, blocks, seed } => self.matches(id, blocks, seed)?,
            Op::MovePin { pin, node } => self.move_pin(pin, node)?,
        }
        self.tree.settle();
        if self.fingerprint() != before || matches!(op, Op::Match { .. } | Op::Unpin { .. }) {
            self.succeeded[tag] += 1;
        }
        self.compare()
    }

    fn fingerprint(&self) -> (usize, usize, [u32; 3], usize, usize) {
        let in_flight = self
            .nodes
            .iter()
            .filter(|n| n.alive && n.flight.is_some())
            .count();
        let alive = self.nodes.iter().filter(|n| n.alive).count();
        let pins = self.pins.iter().filter(|p| p.is_some()).count();
        let pinned_where = (0..self.nodes.len())
            .map(|i| i * self.nodes[i].own_pins as usize)
            .sum();
        (alive, in_flight, self.free, pins, pinned_where)
    }

    fn compare(&self) -> Result<(), String> {
        self.tree.check_invariants().map_err(|e| e.to_string())?;
        for tier in Tier::ALL {
            let free = self.tree.usage(tier).free;
            if free != self.free[tier.index()] {
                return Err(format!(
                    "{tier}: tree has {free} free, model {}",
                    self.free[tier.index()]
                ));
            }
        }
        let alive = self.nodes.iter().filter(|n| n.alive).count();
        if alive != self.tree.node_count() {
            return Err(format!(
                "tree has {} nodes, model {alive}",
                self.tree.node_count()
            ));
        }
        let live_pins = self.pins.iter().filter(|p| p.is_some()).count();
        if live_pins != self.tree.live_pins() {
            return Err(format!(
                "tree has {} pins, model {live_pins}",
                self.tree.live_pins()
            ));
        }
        self.compare_ranked()
    }

    /// Ranked selection returns what a full scan with the same scores returns.
    fn compare_ranked(&self) -> Result<(), String> {
        let rank = self.tree.config().rank;
        let offset = |kind: NodeKind, tier: Tier| match (kind, tier) {
            (NodeKind::Lora, Tier::Nvme) => None,
            (NodeKind::Lora, _) => Some(1.5),
            (_, Tier::Host) => Some(-0.75),
            _ => Some(0.0),
        };
        // Left-out kinds score past every real one (every node has been visited, so no real
        // key is infinite), and are filtered from the scan's answer.
        let score = |v: NodeView<'_>, excluded: f32| {
            offset(v.kind(), v.tier()).map_or(excluded, |o| {
                o + rank.key(v.frequency_log2_ref(), v.last_use_ns())
            })
        };
        let (mut scanned, mut ranked) = (Vec::new(), Vec::new());
        let all = [
            Candidates::SwapOut,
            Candidates::SwapIn,
            Candidates::Stable(Tier::Host),
            Candidates::Leaves(Tier::Nvme),
            Candidates::Leaves(Tier::Hbm),
        ];
        for which in all {
            for k in [1, 3, 64] {
                self.tree
                    .lowest(which, k, |v| score(v, f32::INFINITY), &mut scanned);
                scanned.retain(|s| s.score != f32::INFINITY);
                self.tree.lowest_ranked(which, k, offset, &mut ranked);
                if scanned != ranked {
                    return Err(format!(
                        "lowest {which:?} k={k}: scan {scanned:?}, ranked {ranked:?}"
                    ));
                }
                self.tree
                    .highest(which, k, |v| score(v, f32::NEG_INFINITY), &mut scanned);
                scanned.retain(|s| s.score != f32::NEG_INFINITY);
                self.tree.highest_ranked(which, k, offset, &mut ranked);
                if scanned != ranked {
                    return Err(format!(
                        "highest {which:?} k={k}: scan {scanned:?}, ranked {ranked:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn live(&self, index: u8) -> Option<usize> {
        let alive = || (0..self.nodes.len()).filter(|&i| self.nodes[i].alive);
        let count = alive().count();
        (count > 0).then(|| alive().nth(index as usize % count))?
    }

    fn subtree(&self, root: usize) -> Vec<usize> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            out.extend(
                (0..self.nodes.len())
                    .filter(|&c| self.nodes[c].alive && self.nodes[c].parent == Some(parent)),
            );
            i += 1;
        }
        out
    }

    fn pinned_below(&self, n: usize) -> bool {
        self.subtree(n).iter().any(|&i| self.nodes[i].own_pins > 0)
    }

    fn sitting_in_hbm(&self, n: usize) -> bool {
        self.nodes[n].tier == Tier::Hbm && self.nodes[n].flight.is_none()
    }

    fn agree<T, E: std::fmt::Debug>(
        expected: bool,
        got: &Result<T, E>,
        what: &str,
    ) -> Result<(), String> {
        match (expected, got) {
            (true, Err(e)) => Err(format!("{what}: model expected success, tree said {e:?}")),
            (false, Ok(_)) => Err(format!("{what}: model expected an error, tree succeeded")),
            _ => Ok(()),
        }
    }

    fn register(&mut self, id: u8, pages: u8, tier: u8, now: u64) -> Result<(), String> {
        let (id, pages, tier) = (
            u32::from(id % 4),
            u32::from(pages % 3 + 1),
            Tier::ALL[tier as usize % 3],
        );
        let expected = self.free[tier.index()] >= pages;
        let got = self.tree.register_adapter(id, pages, tier, now);
        Self::agree(expected, &got, "register")?;
        if let Ok(reg) = got {
            self.free[tier.index()] -= pages;
            if reg.retired.is_some() != self.adapters[id as usize].is_some() {
                return Err("register: retired version disagrees".into());
            }
            self.nodes.push(MNode {
                id: reg.node,
                parent: None,
                lora: true,
                tier,
                flight: None,
                pages,
                own_pins: 0,
                alive: true,
            });
            self.adapters[id as usize] = Some((reg.adapter.version, self.nodes.len() - 1));
        }
        Ok(())
    }

    fn unregister(&mut self, id: u8) -> Result<(), String> {
        let id = u32::from(id % 4);
        let Some((_, n)) = self.adapters[id as usize] else {
            let got = self.tree.unregister_adapter(id);
            return Self::agree(false, &got, "unregister unknown");
        };
        let expected = self.droppable(n);
        let got = self.tree.unregister_adapter(id);
        Self::agree(expected, &got, "unregister")?;
        if got.is_ok() {
            self.remove_subtree(n);
        }
        Ok(())
    }

    fn droppable(&self, n: usize) -> bool {
        let sub = self.subtree(n);
        sub.iter()
            .all(|&i| self.nodes[i].own_pins == 0 && self.nodes[i].flight.is_none())
    }

    fn remove_subtree(&mut self, n: usize) {
        for i in self.subtree(n) {
            let node = &mut self.nodes[i];
            node.alive = false;
            self.free[node.tier.index()] += node.pages;
        }
        for slot in &mut self.adapters {
            if slot.is_some_and(|(_, a)| !self.nodes[a].alive) {
                *slot = None;
            }
        }
    }

    fn insert(&mut self, parent: u8, publish: bool, now: u64) -> Result<(), String> {
        let Some(p) = self.live(parent) else {
            return Ok(());
        };
        let expected = self.sitting_in_hbm(p) && self.free[0] >= 1;
        let key = publish.then(|| {
            self.next_key += 1;
            self.next_key.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        let got = self.tree.insert_kv(self.nodes[p].id, key, now);
        Self::agree(expected, &got, "insert")?;
        if let Ok(id) = got {
            self.free[0] -= 1;
            self.nodes.push(MNode {
                id,
                parent: Some(p),
                lora: false,
                tier: Tier::Hbm,
                flight: None,
                pages: 1,
                own_pins: 0,
                alive: true,
            });
        }
        Ok(())
    }

    fn pin(&mut self, node: u8, guard: bool) -> Result<(), String> {
        let Some(n) = self.live(node) else {
            return Ok(());
        };
        let mut path_ok = true;
        let mut cur = Some(n);
        while let Some(i) = cur {
            path_ok &= self.sitting_in_hbm(i);
            cur = self.nodes[i].parent;
        }
        let live = self.pins.iter().filter(|p| p.is_some()).count();
        let expected = path_ok && live < 64;
        let id = self.nodes[n].id;
        if guard {
            let got = self.tree.pin_guard(id);
            Self::agree(expected, &got, "pin guard")?;
            if let Ok(g) = got {
                self.nodes[n].own_pins += 1;
                self.pins.push(Some(MPin::Guard(g, n)));
            }
        } else {
            let got = self.tree.pin(id);
            Self::agree(expected, &got, "pin")?;
            if let Ok(p) = got {
                self.nodes[n].own_pins += 1;
                self.pins.push(Some(MPin::Id(p, n)));
            }
        }
        Ok(())
    }

    fn unpin(&mut self, pin: u8) -> Result<(), String> {
        if self.pins.is_empty() {
            return Ok(());
        }
        let i = pin as usize % self.pins.len();
        match self.pins[i].take() {
            Some(MPin::Id(p, n)) => {
                let got = self.tree.unpin(p);
                Self::agree(true, &got, "unpin")?;
                self.nodes[n].own_pins -= 1;
                self.released.push(p);
            }
            Some(MPin::Guard(g, n)) => {
                drop(g);
                self.nodes[n].own_pins -= 1;
            }
            None => {
                // A second release of a pin id must be a typed error.
                if let Some(&p) = self.released.get(pin as usize % self.released.len().max(1)) {
                    let got = self.tree.unpin(p);
                    Self::agree(false, &got, "double unpin")?;
                }
            }
        }
        Ok(())
    }

    fn move_pin(&mut self, pin: u8, node: u8) -> Result<(), String> {
        if self.pins.is_empty() {
            return Ok(());
        }
        let i = pin as usize % self.pins.len();
        let Some(record) = &self.pins[i] else {
            return Ok(());
        };
        let (id, from) = match record {
            MPin::Id(p, n) => (*p, *n),
            MPin::Guard(g, n) => (g.id(), *n),
        };
        // Mostly a node of the pinned subtree (the interesting case), sometimes any node.
        let to = if node & 1 == 0 {
            let below = self.subtree(from);
            below[(node >> 1) as usize % below.len()]
        } else {
            let Some(any) = self.live(node >> 1) else {
                return Ok(());
            };
            any
        };
        // Expected: `to` is `from` or below it, and everything from `to` up to `from` sits in HBM.
        let mut expected = false;
        let mut cur = Some(to);
        while let Some(c) = cur {
            if c == from {
                expected = true;
                break;
            }
            if !self.sitting_in_hbm(c) {
                break;
            }
            cur = self.nodes[c].parent;
        }
        let got = self.tree.move_pin_down(id, self.nodes[to].id);
        Self::agree(expected, &got, "move pin down")?;
        if got.is_ok() {
            self.nodes[from].own_pins -= 1;
            self.nodes[to].own_pins += 1;
            match &mut self.pins[i] {
                Some(MPin::Id(_, n)) | Some(MPin::Guard(_, n)) => *n = to,
                None => {}
            }
        }
        Ok(())
    }

    fn begin(&mut self, node: u8, tier: u8) -> Result<(), String> {
        let Some(n) = self.live(node) else {
            return Ok(());
        };
        let to = Tier::ALL[tier as usize % 3];
        let m = &self.nodes[n];
        let parent_ok = match m.parent {
            None => true,
            Some(p) => (!self.enforce && self.nodes[p].lora) || self.sitting_in_hbm(p),
        };
        let children_in_hbm = (0..self.nodes.len()).any(|c| {
            let c = &self.nodes[c];
            c.alive && c.parent == Some(n) && (c.tier == Tier::Hbm || c.flight == Some(Tier::Hbm))
        });
        let expected = m.flight.is_none()
            && !self.pinned_below(n)
            && m.tier != to
            && (to != Tier::Hbm || parent_ok)
            && (m.tier != Tier::Hbm || !children_in_hbm || (!self.enforce && m.lora))
            && self.free[to.index()] >= m.pages;
        let got = self.tree.begin_transfer(m.id, to);
        Self::agree(expected, &got, "begin transfer")?;
        if got.is_ok() {
            self.free[to.index()] -= self.nodes[n].pages;
            self.nodes[n].flight = Some(to);
        }
        Ok(())
    }

    fn finish(&mut self, node: u8, complete: bool) -> Result<(), String> {
        let Some(n) = self.live(node) else {
            return Ok(());
        };
        let m = &self.nodes[n];
        let expected = m.flight.is_some();
        let got = if complete {
            self.tree.complete_transfer(m.id)
        } else {
            self.tree.abort_transfer(m.id)
        };
        Self::agree(expected, &got, if complete { "complete" } else { "abort" })?;
        if let (Ok(_), Some(to)) = (got, self.nodes[n].flight) {
            let m = &mut self.nodes[n];
            if complete {
                self.free[m.tier.index()] += m.pages;
                m.tier = to;
            } else {
                self.free[to.index()] += m.pages;
            }
            m.flight = None;
        }
        Ok(())
    }

    fn drop_node(&mut self, node: u8) -> Result<(), String> {
        let Some(n) = self.live(node) else {
            return Ok(());
        };
        let expected = self.droppable(n);
        let got = self.tree.drop_subtree(self.nodes[n].id);
        Self::agree(expected, &got, "drop")?;
        if got.is_ok() {
            self.remove_subtree(n);
        }
        Ok(())
    }

    fn matches(&mut self, id: u8, blocks: u8, seed: u8) -> Result<(), String> {
        let id = u32::from(id % 4);
        let tokens: Vec<u32> = (0..u32::from(blocks) * BLOCK_TOKENS)
            .map(|i| u32::from(seed) + i)
            .collect();
        let version = self.adapters[id as usize].map_or(0, |(v, _)| v);
        let mut m = crate::Match::default();
        let got = self
            .tree
            .match_prefix(AdapterRef { id, version }, &tokens, &mut m);
        Self::agree(self.adapters[id as usize].is_some(), &got, "match")?;
        if got.is_ok() && m.keys.len() != blocks as usize {
            return Err("match: wrong number of keys".into());
        }
        Ok(())
    }
}
