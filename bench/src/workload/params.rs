//! The parameters every synthetic generator shares.

use fastlibra_runtime::workload::AdapterSpec;

use super::error::{WorkloadError, invalid};

/// Most sessions one generator produces in one go (bounds memory: a session is a few KiB of
/// token ids).
pub const MAX_SESSIONS: u64 = 1_000_000;

/// Most adapters a workload may name.
pub const MAX_ADAPTERS: u32 = 1_000_000;

/// Parameters shared by the chatbot, translation and agents generators.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadParams {
    /// Number of LoRA adapters. Default 100 (the FASTLIBRA/ELORA evaluation's order of
    /// magnitude; raise it to stress the cache).
    pub lora_count: u32,
    /// Adapter ranks, assigned round-robin by adapter index, so each rank gets an equal share.
    /// Default `[32, 64]`: half rank 32, half rank 64.
    pub ranks: Vec<u32>,
    /// Mean arrivals per second: sessions for `chatbot` and `agents`, requests for
    /// `translation` (each a one-turn session). Default 1.0.
    pub rate_per_s: f64,
    /// Length of the arrival window, seconds; turns after the first may answer later.
    /// Default 300.
    pub duration_s: f64,
    /// Seed of every random draw; the same parameters and seed give the same workload.
    /// Default 0.
    pub seed: u64,
}

impl Default for WorkloadParams {
    fn default() -> Self {
        WorkloadParams {
            lora_count: 100,
            ranks: vec![32, 64],
            rate_per_s: 1.0,
            duration_s: 300.0,
            seed: 0,
        }
    }
}

impl WorkloadParams {
    /// Checks every field, and that `rate × duration` stays under [`MAX_SESSIONS`].
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.lora_count == 0 || self.lora_count > MAX_ADAPTERS {
            return Err(invalid(
                "lora_count",
                "between 1 and 1000000",
                self.lora_count,
            ));
        }
        if self.ranks.is_empty() || self.ranks.contains(&0) {
            return Err(invalid(
                "ranks",
                "a non-empty list of positive ranks",
                format!("{:?}", self.ranks),
            ));
        }
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0) {
            return Err(invalid(
                "rate_per_s",
                "finite and positive",
                self.rate_per_s,
            ));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return Err(invalid(
                "duration_s",
                "finite and positive",
                self.duration_s,
            ));
        }
        let expected = self.rate_per_s * self.duration_s;
        if expected > MAX_SESSIONS as f64 {
            return Err(WorkloadError::TooLarge {
                expected: expected.round() as u64,
                max: MAX_SESSIONS,
            });
        }
        Ok(())
    }

    /// The arrival window in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        super::sample::secs_to_ns(self.duration_s)
    }

    /// The adapters: `lora-000` … named with zero-padded indices, ranks round-robin.
    pub fn adapters(&self) -> Vec<AdapterSpec> {
        let width = self.lora_count.saturating_sub(1).max(1).ilog10() as usize + 1;
        (0..self.lora_count)
            .map(|i| AdapterSpec {
                name: format!("lora-{i:0width$}"),
                rank: self
                    .ranks
                    .get(i as usize % self.ranks.len().max(1))
                    .copied()
                    .unwrap_or(1),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_split_ranks_evenly() {
        let adapters = WorkloadParams::default().adapters();
        assert_eq!(adapters.len(), 100);
        assert_eq!(adapters[0].name, "lora-00");
        assert_eq!(adapters[99].name, "lora-99");
        assert_eq!(adapters.iter().filter(|a| a.rank == 32).count(), 50);
        assert_eq!(adapters.iter().filter(|a| a.rank == 64).count(), 50);
        let one = WorkloadParams {
            lora_count: 1,
            ..WorkloadParams::default()
        };
        assert_eq!(one.adapters()[0].name, "lora-0");
    }

    #[test]
    fn bad_params_are_named() {
        let field = |p: WorkloadParams| match p.validate() {
            Err(WorkloadError::InvalidParam { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let d = WorkloadParams::default;
        assert_eq!(
            field(WorkloadParams {
                lora_count: 0,
                ..d()
            }),
            "lora_count"
        );
        assert_eq!(
            field(WorkloadParams {
                ranks: vec![],
                ..d()
            }),
            "ranks"
        );
        assert_eq!(
            field(WorkloadParams {
                ranks: vec![8, 0],
                ..d()
            }),
            "ranks"
        );
        assert_eq!(
            field(WorkloadParams {
                rate_per_s: 0.0,
                ..d()
            }),
            "rate_per_s"
        );
        assert_eq!(
            field(WorkloadParams {
                rate_per_s: -1.0,
                ..d()
            }),
            "rate_per_s"
        );
        assert_eq!(
            field(WorkloadParams {
                rate_per_s: f64::NAN,
                ..d()
            }),
            "rate_per_s"
        );
        assert_eq!(
            field(WorkloadParams {
                duration_s: 0.0,
                ..d()
            }),
            "duration_s"
        );
        assert!(matches!(
            WorkloadParams {
                rate_per_s: 1e6,
                duration_s: 1e3,
                ..d()
            }
            .validate(),
            Err(WorkloadError::TooLarge { .. })
        ));
        assert!(d().validate().is_ok());
    }
}
