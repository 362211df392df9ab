//! A set of node slots with O(1) insert, remove and dense iteration, sized at start-up.
//! Membership positions live in the nodes themselves (`resident_pos`), so the set is one
//! `Vec<u32>` and never allocates after construction.

/// Dense list of node slots. The caller stores each member's position and passes it back.
#[derive(Debug, Clone, Default)]
pub(crate) struct DenseSet {
    items: Vec<u32>,
}

impl DenseSet {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        DenseSet {
            items: Vec::with_capacity(capacity),
        }
    }

    /// Adds `slot`; returns its position.
    pub(crate) fn insert(&mut self, slot: u32) -> u32 {
        self.items.push(slot);
        (self.items.len() - 1) as u32
    }

    /// Removes the member at `pos`; returns the slot that moved into `pos`, if any.
    pub(crate) fn remove(&mut self, pos: u32) -> Option<u32> {
        self.items.swap_remove(pos as usize);
        self.items.get(pos as usize).copied()
    }

    pub(crate) fn as_slice(&self) -> &[u32] {
        &self.items
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}
