//! The on-disk slot layout and its checksum.
//!
//! Page `p` lives in slot `p` at byte offset `p × slot_bytes`, where
//! `slot_bytes = HEADER_BYTES + page_bytes`; both are multiples of 4 KiB, so every slot starts
//! and ends on the alignment O_DIRECT needs and one page is one I/O.
//!
//! ```text
//! slot p: | header (4096 B)                                   | page data (page_bytes) |
//!         | magic[8] | page u32 LE | len u32 LE | crc u32 LE | zero padding |            |
//! ```
//!
//! `crc` is CRC32C over the 16 field bytes (magic, page, len) followed by the data, so a write
//! that landed in the wrong slot (misdirected) or a stale page of another size fails the check
//! as surely as a flipped data bit. The writer also keeps each page's checksum in memory; the
//! reader compares against that copy, not only against the one on disk, so a lost write (the
//! slot still holding an older, self-consistent page, or zeros) is caught too.

/// The alignment O_DIRECT needs for offsets, lengths and buffers (bytes).
pub const PAGE_ALIGN: usize = 4096;
/// Bytes of the header block at the start of each slot.
pub const HEADER_BYTES: usize = PAGE_ALIGN;
/// The largest page the file accepts (the slot length must fit io_uring's `u32`).
pub const MAX_PAGE_BYTES: usize = 1 << 30;
/// The deepest queue the file accepts (buffer indices are `u16`; the kernel caps registered
/// buffers well above this).
pub const MAX_QUEUE_DEPTH: u32 = 1024;
/// The first bytes of every written slot.
pub const MAGIC: [u8; 8] = *b"FLIBPG01";
/// Header bytes covered by the checksum: magic, page id, length.
const FIELD_BYTES: usize = 16;
/// Where the checksum sits in the header.
const CRC_AT: usize = FIELD_BYTES;

/// Bytes of one slot for pages of `page_bytes`.
pub const fn slot_bytes(page_bytes: usize) -> usize {
    HEADER_BYTES + page_bytes
}

/// Whether `page_bytes` is a valid page size.
pub const fn page_size_ok(page_bytes: usize) -> bool {
    page_bytes > 0 && page_bytes.is_multiple_of(PAGE_ALIGN) && page_bytes <= MAX_PAGE_BYTES
}

fn fields(page: u32, page_bytes: usize) -> [u8; FIELD_BYTES] {
    let mut out = [0u8; FIELD_BYTES];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&page.to_le_bytes());
    // page_bytes ≤ MAX_PAGE_BYTES < 2^32, checked at creation.
    out[12..16].copy_from_slice(&(page_bytes as u32).to_le_bytes());
    out
}

fn checksum(field_bytes: &[u8], data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(field_bytes), data)
}

/// Writes the header of `slot` (whose data part already holds the page) and returns the
/// checksum it recorded.
pub fn seal(slot: &mut [u8], page: u32) -> u32 {
    let (header, data) = slot.split_at_mut(HEADER_BYTES);
    header.fill(0);
    header[..FIELD_BYTES].copy_from_slice(&fields(page, data.len()));
    let crc = checksum(&header[..FIELD_BYTES], data);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    crc
}

/// What a slot read back from disk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Header and data match what was written.
    Valid,
    /// Something differs: `expected` is the checksum recorded at write time, `found` the one
    /// computed from the header fields and data as read (or, when those agree, the checksum
    /// stored in the header).
    Corrupt {
        /// Checksum recorded when the page was written.
        expected: u32,
        /// Checksum of what came back.
        found: u32,
    },
}

/// Checks a slot read back for `page` against the checksum recorded when it was written.
pub fn verify(slot: &[u8], page: u32, expected: u32) -> Verdict {
    let (header, data) = slot.split_at(HEADER_BYTES);
    let found = checksum(&header[..FIELD_BYTES], data);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&header[CRC_AT..CRC_AT + 4]);
    let stored = u32::from_le_bytes(stored);
    let fields_ok = header[..FIELD_BYTES] == fields(page, data.len());
    if found == expected && stored == expected && fields_ok {
        Verdict::Valid
    } else if found != expected {
        Verdict::Corrupt { expected, found }
    } else {
        Verdict::Corrupt {
            expected,
            found: stored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(page: u32, fill: u8) -> (Vec<u8>, u32) {
        let mut slot = vec![fill; slot_bytes(PAGE_ALIGN)];
        let crc = seal(&mut slot, page);
        (slot, crc)
    }

    #[test]
    fn sealed_slot_verifies() {
        let (slot, crc) = sealed(7, 0xab);
        assert_eq!(verify(&slot, 7, crc), Verdict::Valid);
        assert!(slot[HEADER_BYTES - 1] == 0, "header padding is zeroed");
    }

    #[test]
    fn every_kind_of_damage_is_caught() {
        let (slot, crc) = sealed(7, 0xab);
        // A flipped data bit, a flipped header field, a damaged stored checksum.
        for at in [HEADER_BYTES + 100, 9, CRC_AT + 1] {
            let mut bad = slot.clone();
            bad[at] ^= 1;
            assert!(
                matches!(verify(&bad, 7, crc), Verdict::Corrupt { .. }),
                "byte {at}"
            );
        }
        // Misdirected: page 8's slot read where page 7 was expected.
        let (other, _) = sealed(8, 0xab);
        assert!(matches!(verify(&other, 7, crc), Verdict::Corrupt { .. }));
        // Lost write: the slot still holds zeros.
        let zeros = vec![0u8; slot.len()];
        assert!(matches!(verify(&zeros, 7, crc), Verdict::Corrupt { .. }));
        // Stale: an older, self-consistent version of the same page.
        let (old, _) = sealed(7, 0xcd);
        assert!(matches!(verify(&old, 7, crc), Verdict::Corrupt { .. }));
    }

    #[test]
    fn page_sizes() {
        assert!(page_size_ok(4096) && page_size_ok(2 << 20));
        assert!(!page_size_ok(0) && !page_size_ok(4095) && !page_size_ok(6000));
        assert!(!page_size_ok(MAX_PAGE_BYTES + PAGE_ALIGN));
    }
}
