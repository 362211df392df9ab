//! Fault injection: what can go wrong under the engine, drawn from a seed so that any failing
//! run replays exactly.
//!
//! | fault | where | what the driver reports |
//! |---|---|---|
//! | NVMe read error | NVMe → host copy | `handle_transfer_lost` after the link latency (the source page cannot be read) |
//! | corrupt page | NVMe → host and host → HBM copies | `handle_transfer_lost` after the whole copy (the checksum at the destination failed) |
//! | NVMe write error | host → NVMe copy | `handle_transfer_done(ok = false)`: the host copy is intact |
//! | PCIe transfer failure | host ↔ HBM copies | `handle_transfer_done(ok = false)`: the source is intact |
//! | latency spike | any copy | the copy takes `latency_spike_factor` times longer |
//! | slow link | one link, for a window of time | copies starting in the window take `factor` times longer |
//! | stalled step | compute | the step takes `step_stall_factor` times longer (a shard that stalls) |
//! | device out of memory | start-up | part of HBM is taken by someone else: fewer pages, or [`super::SimError::DeviceOutOfMemory`] when too few are left |
//!
//! Device memory is allocated once, at start-up (static allocation): the pools never grow, so
//! running out of device memory can only happen there. A device that has less free memory
//! than the plan assumed is modelled by withholding a fraction of the HBM pages; when fewer
//! than the engine's minimum remain the run does not start and says why.
//!
//! The default plan injects nothing, and a run with it is the plain simulator's run.

use crate::engine::Link;

/// What goes wrong in one simulated run, and how often. Probabilities are per transfer (or
/// per step) and lie in `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Seed of the fault draws (independent of the workload's and the driver's seeds).
    pub seed: u64,
    /// NVMe → host reads that fail outright: the data is lost.
    pub nvme_read_error: f64,
    /// NVMe → host and host → HBM copies whose pages fail their checksum: the data is lost.
    pub corrupt_page: f64,
    /// Host → NVMe writes that fail; the host copy stays.
    pub nvme_write_error: f64,
    /// Host ↔ HBM copies that fail; the source stays.
    pub pcie_error: f64,
    /// Copies that take `latency_spike_factor` times longer.
    pub latency_spike: f64,
    /// How much longer a spiked copy takes.
    pub latency_spike_factor: u32,
    /// One link slowed down for a while.
    pub slow_link: Option<SlowLink>,
    /// Steps that take `step_stall_factor` times longer.
    pub step_stall: f64,
    /// How much longer a stalled step takes.
    pub step_stall_factor: u32,
    /// Fraction of the planned HBM pages that another tenant holds (device out of memory).
    pub hbm_withheld_fraction: f64,
}

/// A link that runs `factor` times slower between two times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowLink {
    /// The link.
    pub link: Link,
    /// Slow-down factor.
    pub factor: u32,
    /// Copies starting at or after this time are slow, ns...
    pub from_ns: u64,
    /// ...and before this time, ns.
    pub until_ns: u64,
}

/// How a transfer ends, decided when it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It completes.
    #[default]
    Ok,
    /// It fails; the source is intact (`handle_transfer_done(ok = false)`).
    Failed,
    /// Its source data is unusable (`handle_transfer_lost`).
    Lost,
}

/// What was injected in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// NVMe read errors.
    pub nvme_read_errors: u64,
    /// Corrupt pages detected at the destination.
    pub corrupt_pages: u64,
    /// NVMe write errors.
    pub nvme_write_errors: u64,
    /// Host ↔ HBM copy failures.
    pub pcie_errors: u64,
    /// Copies slowed by a latency spike.
    pub latency_spikes: u64,
    /// Copies slowed by the slow link.
    pub slow_copies: u64,
    /// Stalled steps.
    pub stalled_steps: u64,
    /// HBM pages withheld at start-up.
    pub hbm_pages_withheld: u32,
}

impl FaultPlan {
    /// Whether this plan injects anything at all.
    pub fn is_empty(&self) -> bool {
        *self
            == FaultPlan {
                seed: self.seed,
                ..FaultPlan::default()
            }
    }
}

/// The fault draws of one run.
#[derive(Debug)]
pub(crate) struct Injector {
    plan: FaultPlan,
    rng: SplitMix64,
    pub(crate) counts: FaultCounts,
}

impl Injector {
    pub(crate) fn new(plan: &FaultPlan) -> Injector {
        Injector {
            rng: SplitMix64(plan.seed ^ 0x5eed_fa17_0000_0001),
            plan: plan.clone(),
            counts: FaultCounts::default(),
        }
    }

    /// HBM pages left after another tenant took its share of `planned`.
    pub(crate) fn hbm_pages(&mut self, planned: u32) -> u32 {
        let fraction = self.plan.hbm_withheld_fraction.clamp(0.0, 1.0);
        let withheld = (f64::from(planned) * fraction).ceil() as u32;
        self.counts.hbm_pages_withheld = withheld.min(planned);
        planned - self.counts.hbm_pages_withheld
    }

    /// Decides a transfer's fate and duration. `full_ns` is its normal duration and
    /// `latency_ns` the link's fixed latency.
    pub(crate) fn transfer(
        &mut self,
        link: Link,
        start_ns: u64,
        full_ns: u64,
        latency_ns: u64,
    ) -> (Fate, u64) {
        let mut ns = full_ns;
        if self.draw(self.plan.latency_spike) {
            self.counts.latency_spikes += 1;
            ns = ns.saturating_mul(u64::from(self.plan.latency_spike_factor.max(1)));
        }
        if let Some(slow) = self.plan.slow_link
            && slow.link == link
            && (slow.from_ns..slow.until_ns).contains(&start_ns)
        {
            self.counts.slow_copies += 1;
            ns = ns.saturating_mul(u64::from(slow.factor.max(1)));
        }
        let fate = match link {
            Link::NvmeRead if self.draw(self.plan.nvme_read_error) => {
                self.counts.nvme_read_errors += 1;
                return (Fate::Lost, latency_ns.max(1));
            }
            Link::NvmeRead | Link::H2D if self.draw(self.plan.corrupt_page) => {
                self.counts.corrupt_pages += 1;
                Fate::Lost
            }
            Link::NvmeWrite if self.draw(self.plan.nvme_write_error) => {
                self.counts.nvme_write_errors += 1;
                Fate::Failed
            }
            Link::H2D | Link::D2H if self.draw(self.plan.pcie_error) => {
                self.counts.pcie_errors += 1;
                Fate::Failed
            }
            _ => Fate::Ok,
        };
        (fate, ns)
    }

    /// A step's duration, stalled or not.
    pub(crate) fn step(&mut self, ns: u64) -> u64 {
        if self.draw(self.plan.step_stall) {
            self.counts.stalled_steps += 1;
            ns.saturating_mul(u64::from(self.plan.step_stall_factor.max(1)))
        } else {
            ns
        }
    }

    /// `true` with probability `p` (no draw at all when `p` is zero, so that a fault kind that
    /// is off does not shift the others' draws).
    fn draw(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.unit() < p
    }
}

/// SplitMix64: a tiny, well-mixed generator; enough for fault draws.
#[derive(Debug)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plan_injects_nothing() {
        let plan = FaultPlan {
            seed: 9,
            ..FaultPlan::default()
        };
        assert!(plan.is_empty());
        let mut injector = Injector::new(&plan);
        for link in Link::ALL {
            assert_eq!(injector.transfer(link, 0, 100, 10), (Fate::Ok, 100));
        }
        assert_eq!(injector.step(50), 50);
        assert_eq!(injector.hbm_pages(1000), 1000);
        assert_eq!(injector.counts, FaultCounts::default());
    }

    #[test]
    fn certain_faults_always_fire_on_their_links_only() {
        let plan = FaultPlan {
            nvme_read_error: 1.0,
            nvme_write_error: 1.0,
            ..FaultPlan::default()
        };
        assert!(!plan.is_empty());
        let mut injector = Injector::new(&plan);
        assert_eq!(
            injector.transfer(Link::NvmeRead, 0, 100, 10),
            (Fate::Lost, 10)
        );
        assert_eq!(
            injector.transfer(Link::NvmeWrite, 0, 100, 10),
            (Fate::Failed, 100)
        );
        assert_eq!(injector.transfer(Link::H2D, 0, 100, 10), (Fate::Ok, 100));
        assert_eq!(injector.counts.nvme_read_errors, 1);
        assert_eq!(injector.counts.nvme_write_errors, 1);
    }

    #[test]
    fn a_slow_link_is_slow_only_in_its_window() {
        let plan = FaultPlan {
            slow_link: Some(SlowLink {
                link: Link::H2D,
                factor: 10,
                from_ns: 1_000,
                until_ns: 2_000,
            }),
            ..FaultPlan::default()
        };
        let mut injector = Injector::new(&plan);
        assert_eq!(injector.transfer(Link::H2D, 999, 100, 10).1, 100);
        assert_eq!(injector.transfer(Link::H2D, 1_000, 100, 10).1, 1_000);
        assert_eq!(injector.transfer(Link::D2H, 1_500, 100, 10).1, 100);
        assert_eq!(injector.transfer(Link::H2D, 2_000, 100, 10).1, 100);
        assert_eq!(injector.counts.slow_copies, 1);
    }

    #[test]
    fn withheld_hbm_rounds_up_and_never_underflows() {
        let mut injector = Injector::new(&FaultPlan {
            hbm_withheld_fraction: 0.25,
            ..FaultPlan::default()
        });
        assert_eq!(injector.hbm_pages(10), 7);
        let mut all = Injector::new(&FaultPlan {
            hbm_withheld_fraction: 2.0,
            ..FaultPlan::default()
        });
        assert_eq!(all.hbm_pages(10), 0);
    }
}
