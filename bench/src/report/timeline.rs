//! Time averages over the HBM timeline.
//!
//! Samples are taken at swapper ticks, so each one stands for HBM use until the next sample; the
//! last one stands until the end of the run. A timeline whose samples span no time (one sample,
//! or all at the end) is averaged plainly; an empty one averages to 0.

use fastlibra_runtime::outcome::MemorySample;

/// Time-weighted mean of `f` over `samples`, each held until the next (the last until `end_ns`).
pub fn time_average(
    samples: &[MemorySample],
    end_ns: u64,
    f: impl Fn(&MemorySample) -> f64,
) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut weighted = 0.0;
    let mut total_ns = 0u64;
    for (i, sample) in samples.iter().enumerate() {
        let until_ns = samples.get(i + 1).map_or(end_ns, |next| next.t_ns);
        let held_ns = until_ns.saturating_sub(sample.t_ns);
        weighted += f(sample) * held_ns as f64;
        total_ns += held_ns;
    }
    if total_ns == 0 {
        return samples.iter().map(&f).sum::<f64>() / samples.len() as f64;
    }
    weighted / total_ns as f64
}

/// Share of KV pages that are invalid (their LoRA is not in HBM); 0 when there is no KV.
pub fn invalid_kv_share(s: &MemorySample) -> f64 {
    let kv = u64::from(s.kv_valid_pages) + u64::from(s.kv_invalid_pages);
    if kv == 0 {
        0.0
    } else {
        f64::from(s.kv_invalid_pages) / kv as f64
    }
}

/// Share of HBM pages in use by LoRA adapters and KV (valid or not); 0 when capacity is 0.
pub fn hbm_used_share(s: &MemorySample) -> f64 {
    if s.capacity_pages == 0 {
        return 0.0;
    }
    let used =
        u64::from(s.lora_pages) + u64::from(s.kv_valid_pages) + u64::from(s.kv_invalid_pages);
    used as f64 / f64::from(s.capacity_pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ns: u64, lora: u32, valid: u32, invalid: u32) -> MemorySample {
        MemorySample {
            t_ns,
            capacity_pages: 100,
            lora_pages: lora,
            kv_valid_pages: valid,
            kv_invalid_pages: invalid,
        }
    }

    #[test]
    fn weights_by_time_held() {
        // 0–10: invalid share 0; 10–40: 0.5. Time average = 30 × 0.5 / 40 = 0.375.
        let samples = [sample(0, 10, 10, 0), sample(10, 10, 10, 10)];
        let avg = time_average(&samples, 40, invalid_kv_share);
        assert!((avg - 0.375).abs() < 1e-12, "{avg}");
        // Use: 0.2 for 10 ns, 0.3 for 30 ns → 0.275.
        let util = time_average(&samples, 40, hbm_used_share);
        assert!((util - 0.275).abs() < 1e-12, "{util}");
    }

    #[test]
    fn degenerate_timelines() {
        assert_eq!(time_average(&[], 100, invalid_kv_share), 0.0);
        let one = [sample(50, 0, 1, 3)];
        assert!((time_average(&one, 50, invalid_kv_share) - 0.75).abs() < 1e-12);
        assert_eq!(invalid_kv_share(&sample(0, 5, 0, 0)), 0.0);
        let empty_hbm = MemorySample::default();
        assert_eq!(hbm_used_share(&empty_hbm), 0.0);
    }
}
