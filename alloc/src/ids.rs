//! Ids handed out by the tree. Each carries a serial number so that an id kept past the end of
//! what it named (a dropped node, a released pin) is recognised as stale instead of silently
//! naming whatever reuses the slot.

/// A node of the dependency tree: a slot in the node table and the serial it was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub(crate) key: u32,
    pub(crate) serial: u32,
}

impl NodeId {
    /// The slot index (stable while the node lives; reused after it is dropped).
    pub fn slot(self) -> u32 {
        self.key
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.key, self.serial)
    }
}

/// A live pin: one reference that keeps a node (and its ancestors) in HBM and unmoved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PinId {
    pub(crate) key: u32,
    pub(crate) serial: u32,
}

impl std::fmt::Display for PinId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pin#{}.{}", self.key, self.serial)
    }
}

/// A registered adapter version, as requests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdapterRef {
    /// Adapter id (chosen by the caller, for example an index into its adapter list).
    pub id: u32,
    /// Version; a reload with new weights makes a new version.
    pub version: u32,
}

/// "No such entry" in the `u32` link fields of pages and nodes.
pub(crate) const NONE: u32 = u32::MAX;
