//! Memory tiers, fastest first.

/// A memory tier. Every tier is one pool of equal-size pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// GPU high-bandwidth memory: where a request's LoRA and KV must be to run.
    Hbm = 0,
    /// Pinned host memory.
    Host = 1,
    /// NVMe spill space.
    Nvme = 2,
}

impl Tier {
    /// All tiers, fastest first.
    pub const ALL: [Tier; 3] = [Tier::Hbm, Tier::Host, Tier::Nvme];

    /// Index of the tier in per-tier arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Short lowercase name (`hbm`, `host`, `nvme`).
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Hbm => "hbm",
            Tier::Host => "host",
            Tier::Nvme => "nvme",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
