//! Which engine transfer each HBM page being copied belongs to, so that copies finishing in
//! batches of pages (as a device's copy streams complete them) become whole transfers done.
//! Free of any device: the CUDA device uses it, its tests run everywhere.

use rustc_hash::FxHashMap;

/// Pages in flight by transfer. See the module docs.
#[derive(Debug, Default)]
pub struct CopyTracker {
    /// HBM page → the transfer copying it.
    owner: FxHashMap<u32, u64>,
    /// Transfer → pages not arrived yet.
    left: FxHashMap<u64, u32>,
}

impl CopyTracker {
    /// Records that `transfer` copies `hbm_pages`. A transfer of no pages is done at once
    /// (returns `true`). Refuses a page already in flight or a transfer already known.
    pub fn start(&mut self, transfer: u64, hbm_pages: &[u32]) -> Result<bool, String> {
        if self.left.contains_key(&transfer) {
            return Err(format!("transfer {transfer} is already in flight"));
        }
        if let Some(p) = hbm_pages.iter().find(|p| self.owner.contains_key(p)) {
            return Err(format!(
                "HBM page {p} is already being copied by transfer {}",
                self.owner[p]
            ));
        }
        if hbm_pages.is_empty() {
            return Ok(true);
        }
        for &p in hbm_pages {
            if self.owner.insert(p, transfer).is_some() {
                // Repeated inside this transfer: undo and refuse.
                self.owner.retain(|_, t| *t != transfer);
                return Err(format!("HBM page {p} appears twice in transfer {transfer}"));
            }
        }
        self.left.insert(transfer, hbm_pages.len() as u32);
        Ok(false)
    }

    /// Records that `hbm_pages` arrived; appends the transfers this finishes to `done`.
    /// Refuses a page not in flight.
    pub fn complete(&mut self, hbm_pages: &[u32], done: &mut Vec<u64>) -> Result<(), String> {
        for p in hbm_pages {
            let transfer = self
                .owner
                .remove(p)
                .ok_or_else(|| format!("HBM page {p} arrived but was not being copied"))?;
            let left = self
                .left
                .get_mut(&transfer)
                .ok_or_else(|| format!("page {p} belongs to unknown transfer {transfer}"))?;
            *left -= 1;
            if *left == 0 {
                self.left.remove(&transfer);
                done.push(transfer);
            }
        }
        Ok(())
    }

    /// Whether any page is in flight.
    pub fn is_idle(&self) -> bool {
        self.left.is_empty()
    }

    /// Every page in flight belongs to a transfer whose count of pages left matches.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut count: FxHashMap<u64, u32> = FxHashMap::default();
        for t in self.owner.values() {
            *count.entry(*t).or_default() += 1;
        }
        if count != self.left {
            return Err(format!(
                "copies in flight: pages by transfer {count:?}, counted {:?}",
                self.left
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_is_done_when_its_last_page_arrives_in_any_batch() {
        let mut t = CopyTracker::default();
        assert_eq!(t.start(7, &[3, 4, 5]), Ok(false));
        assert_eq!(t.start(8, &[9]), Ok(false));
        let mut done = Vec::new();
        t.complete(&[4, 9], &mut done).unwrap();
        assert_eq!(done, vec![8]);
        t.check_invariants().unwrap();
        t.complete(&[5, 3], &mut done).unwrap();
        assert_eq!(done, vec![8, 7]);
        assert!(t.is_idle());
        t.check_invariants().unwrap();
    }

    #[test]
    fn refuses_pages_in_flight_twice_and_strangers() {
        let mut t = CopyTracker::default();
        assert_eq!(t.start(1, &[]), Ok(true));
        t.start(1, &[2]).unwrap();
        assert!(t.start(1, &[3]).is_err(), "same transfer twice");
        assert!(t.start(2, &[2]).is_err(), "page busy");
        assert!(t.start(3, &[5, 5]).is_err(), "page twice in one transfer");
        t.check_invariants().unwrap();
        assert!(t.complete(&[6], &mut Vec::new()).is_err(), "unknown page");
        t.complete(&[2], &mut Vec::new()).unwrap();
        assert!(t.is_idle());
    }
}
