//! The tiers that live in memory: the emulated device's HBM and the host tier. Each is one
//! allocation made at start-up and cut into pages of the same size; nothing is allocated per
//! request afterwards.
//!
//! The HBM tier is the CPU model's [`KvArena`] (pages of `f32`): KV blocks are written and read
//! there by the forward pass, and adapter pages are stored there as raw bytes (viewed through
//! `zerocopy`), exactly as a GPU keeps both in one device allocation.

use fastlibra_kernels::cpu::KvArena;
use zerocopy::IntoBytes;

/// The host tier: `pages × page_bytes` bytes in one allocation.
#[derive(Debug)]
pub struct HostArena {
    bytes: Vec<u8>,
    page_bytes: usize,
}

impl HostArena {
    /// Allocates `pages` zeroed pages of `page_bytes`.
    pub fn new(pages: u32, page_bytes: usize) -> HostArena {
        HostArena {
            bytes: vec![0; pages as usize * page_bytes],
            page_bytes,
        }
    }

    /// Writes one byte in every 4 KiB, so that the kernel backs the whole arena now rather
    /// than page by page on first use (a zeroed allocation is mapped lazily).
    pub fn prefault(&mut self) {
        for b in self.bytes.iter_mut().step_by(OS_PAGE_BYTES) {
            *b = 0;
        }
    }

    /// Pages in the arena.
    pub fn pages(&self) -> u32 {
        (self.bytes.len() / self.page_bytes.max(1)) as u32
    }

    /// Page `page`'s bytes, or `None` outside the arena.
    pub fn get(&self, page: u32) -> Option<&[u8]> {
        let start = page as usize * self.page_bytes;
        self.bytes.get(start..start + self.page_bytes)
    }

    /// Page `page`'s bytes to write, or `None` outside the arena.
    pub fn get_mut(&mut self, page: u32) -> Option<&mut [u8]> {
        let start = page as usize * self.page_bytes;
        self.bytes.get_mut(start..start + self.page_bytes)
    }

    /// Page `page`'s bytes.
    pub fn page(&self, page: u32) -> &[u8] {
        let start = page as usize * self.page_bytes;
        &self.bytes[start..start + self.page_bytes]
    }

    /// Page `page`'s bytes, to write.
    pub fn page_mut(&mut self, page: u32) -> &mut [u8] {
        let start = page as usize * self.page_bytes;
        &mut self.bytes[start..start + self.page_bytes]
    }
}

/// The smallest page size of the operating system, bytes.
const OS_PAGE_BYTES: usize = 4096;

/// Writes one float in every 4 KiB of the HBM arena (see [`HostArena::prefault`]).
pub fn prefault_hbm(arena: &mut KvArena) {
    for page in 0..arena.pages() as u32 {
        if let Some(p) = arena.page_mut(page) {
            for f in p.iter_mut().step_by(OS_PAGE_BYTES / 4) {
                *f = 0.0;
            }
        }
    }
}

/// Page `page` of the HBM arena as bytes.
pub fn hbm_page(arena: &KvArena, page: u32) -> &[u8] {
    arena.page(page).map(IntoBytes::as_bytes).unwrap_or(&[])
}

/// Page `page` of the HBM arena as bytes, to write.
pub fn hbm_page_mut(arena: &mut KvArena, page: u32) -> &mut [u8] {
    match arena.page_mut(page) {
        Some(p) => p.as_mut_bytes(),
        None => &mut [],
    }
}

/// Copies pages from the host tier into HBM (`src[i] → dst[i]`).
pub fn host_to_hbm(host: &HostArena, hbm: &mut KvArena, src: &[u32], dst: &[u32]) {
    for (&s, &d) in src.iter().zip(dst) {
        hbm_page_mut(hbm, d).copy_from_slice(host.page(s));
    }
}

/// Copies pages from HBM into the host tier (`src[i] → dst[i]`).
pub fn hbm_to_host(hbm: &KvArena, host: &mut HostArena, src: &[u32], dst: &[u32]) {
    for (&s, &d) in src.iter().zip(dst) {
        host.page_mut(d).copy_from_slice(hbm_page(hbm, s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_between_tiers() {
        let mut hbm = KvArena::new(4, 1024, 16).expect("arena");
        let mut host = HostArena::new(3, 4096);
        host.page_mut(2)
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        host_to_hbm(&host, &mut hbm, &[2], &[3]);
        hbm_to_host(&hbm, &mut host, &[3], &[0]);
        assert_eq!(host.page(0), host.page(2));
        assert_ne!(host.page(1), host.page(2));
        assert_eq!(host.pages(), 3);
    }
}
