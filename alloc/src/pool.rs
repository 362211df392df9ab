//! One tier's page pool: a fixed number of equal pages, a free map, and per-page metadata.
//!
//! Everything is allocated once in [`PagePool::new`]: the free map (`bitvec`, one bit per page,
//! set = free), and two `u32` arrays, `owner` (the node slot that owns the page) and `next` (the
//! next page of the same owner). A node's pages therefore form an intrusive singly linked list
//! ([`PageList`]) and taking or returning pages never touches the heap. Allocation scans the
//! free map from a rotating word cursor and takes the lowest free pages it finds, which keeps a
//! node's pages mostly adjacent so that device copies coalesce. A summary map (one bit per
//! word of the free map, set = the word has a free page) lets that scan skip 64 full words at
//! a time: in a nearly full tier (the NVMe tier once it fills) free pages are few and
//! scattered, and a plain word scan cost O(pages / 64) per page taken.

use bitvec::prelude::*;

use crate::error::{AllocError, Result};
use crate::ids::NONE;
use crate::tier::Tier;

/// A page index within one tier.
pub type PageId = u32;

/// The pages of one owner in one tier: the head of a list linked through the pool's `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageList {
    pub(crate) head: u32,
    pub(crate) len: u32,
}

impl PageList {
    /// The empty list.
    pub const EMPTY: PageList = PageList { head: NONE, len: 0 };

    /// Number of pages in the list.
    pub fn len(self) -> u32 {
        self.len
    }

    /// Whether the list holds no page.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// A tier's pool of pages.
#[derive(Debug, Clone)]
pub struct PagePool {
    tier: Tier,
    free: BitVec<u64, Lsb0>,
    /// Bit `w` set iff word `w` of `free` has a set bit.
    nonempty: Vec<u64>,
    owner: Vec<u32>,
    next: Vec<u32>,
    pages_free: u32,
    cursor_word: usize,
}

impl PagePool {
    /// A pool of `pages` pages, all free.
    pub fn new(tier: Tier, pages: u32) -> Self {
        let len = pages as usize;
        let mut free = bitvec![u64, Lsb0; 1; len];
        // The allocator scans whole words: the padding bits past the last page must read
        // "not free".
        if !len.is_multiple_of(64)
            && let Some(last) = free.as_raw_mut_slice().last_mut()
        {
            *last &= (1u64 << (len % 64)) - 1;
        }
        let words = free.as_raw_slice();
        let mut nonempty = vec![0u64; words.len().div_ceil(64)];
        for (w, &bits) in words.iter().enumerate() {
            if bits != 0 {
                nonempty[w / 64] |= 1 << (w % 64);
            }
        }
        PagePool {
            tier,
            free,
            nonempty,
            owner: vec![NONE; len],
            next: vec![NONE; len],
            pages_free: pages,
            cursor_word: 0,
        }
    }

    /// The tier this pool belongs to.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Total pages.
    pub fn capacity(&self) -> u32 {
        self.owner.len() as u32
    }

    /// Free pages.
    pub fn pages_free(&self) -> u32 {
        self.pages_free
    }

    /// Pages in use.
    pub fn pages_used(&self) -> u32 {
        self.capacity() - self.pages_free
    }

    /// Takes `count` pages for `owner`, all or nothing.
    pub fn alloc(&mut self, count: u32, owner: u32) -> Result<PageList> {
        if count > self.pages_free {
            return Err(AllocError::OutOfPages {
                tier: self.tier,
                needed: count,
                free: self.pages_free,
            });
        }
        let mut list = PageList::EMPTY;
        let mut tail = NONE;
        for _ in 0..count {
            let page = self.take_one();
            self.owner[page as usize] = owner;
            if tail == NONE {
                list.head = page;
            } else {
                self.next[tail as usize] = page;
            }
            tail = page;
        }
        list.len = count;
        Ok(list)
    }

    /// Returns every page of `list` to the free map.
    pub fn free(&mut self, list: PageList) {
        let mut page = list.head;
        for _ in 0..list.len {
            let index = page as usize;
            assert!(!self.free[index], "{} page {page} freed twice", self.tier);
            let next = self.next[index];
            self.owner[index] = NONE;
            self.next[index] = NONE;
            self.free.set(index, true);
            self.nonempty[index / 4096] |= 1 << ((index / 64) % 64);
            page = next;
        }
        debug_assert_eq!(page, NONE, "page list longer than its length");
        self.pages_free += list.len;
    }

    /// Re-labels every page of `list` as owned by `owner`.
    pub(crate) fn set_owner(&mut self, list: PageList, owner: u32) {
        let mut page = list.head;
        for _ in 0..list.len {
            self.owner[page as usize] = owner;
            page = self.next[page as usize];
        }
    }

    /// The pages of `list`, in order.
    pub fn iter(&self, list: PageList) -> PageIter<'_> {
        PageIter {
            next: &self.next,
            page: list.head,
            left: list.len,
        }
    }

    /// The owner slot of `page`, or `None` if it is free.
    pub fn owner(&self, page: PageId) -> Option<u32> {
        let owner = self.owner[page as usize];
        (owner != NONE).then_some(owner)
    }

    /// Whether `page` is free according to the free map.
    pub fn is_free(&self, page: PageId) -> bool {
        self.free[page as usize]
    }

    /// The number of set bits in the free map (ground truth for the invariant check).
    pub(crate) fn count_free_bits(&self) -> u32 {
        self.free.count_ones() as u32
    }

    fn take_one(&mut self) -> PageId {
        let Some(w) = self.next_nonempty_word(self.cursor_word) else {
            unreachable!("{}: pages_free > 0 but the free map is empty", self.tier)
        };
        let bits = self.free.as_raw_slice()[w];
        let page = w * 64 + bits.trailing_zeros() as usize;
        self.cursor_word = w;
        self.free.set(page, false);
        if bits & (bits - 1) == 0 {
            self.nonempty[w / 64] &= !(1 << (w % 64));
        }
        self.pages_free -= 1;
        page as PageId
    }

    /// The first word of the free map with a free page, in the order `start`, `start + 1`, …,
    /// wrapping to 0: the word a plain scan from `start` would stop at.
    fn next_nonempty_word(&self, start: usize) -> Option<usize> {
        let summary = &self.nonempty;
        let first = start / 64;
        let at_or_after = summary.get(first)? & (!0u64 << (start % 64));
        if at_or_after != 0 {
            return Some(first * 64 + at_or_after.trailing_zeros() as usize);
        }
        // The summary words after `first`, then from 0 through `first` again (its bits before
        // `start`).
        (first + 1..summary.len())
            .chain(0..=first)
            .find(|&i| summary[i] != 0)
            .map(|i| i * 64 + summary[i].trailing_zeros() as usize)
    }

    /// The summary map agrees with the free map.
    pub(crate) fn summary_matches(&self) -> bool {
        let words = self.free.as_raw_slice();
        (0..words.len()).all(|w| (words[w] != 0) == (self.nonempty[w / 64] >> (w % 64) & 1 == 1))
    }
}

/// Iterator over the pages of a [`PageList`].
pub struct PageIter<'a> {
    next: &'a [u32],
    page: u32,
    left: u32,
}

impl Iterator for PageIter<'_> {
    type Item = PageId;

    fn next(&mut self) -> Option<PageId> {
        if self.left == 0 {
            return None;
        }
        let page = self.page;
        self.page = self.next[page as usize];
        self.left -= 1;
        Some(page)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for PageIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_all_or_nothing() {
        let mut pool = PagePool::new(Tier::Host, 10);
        let a = pool.alloc(7, 1).unwrap();
        assert_eq!(pool.pages_free(), 3);
        let err = pool.alloc(4, 2).unwrap_err();
        assert_eq!(
            err,
            AllocError::OutOfPages {
                tier: Tier::Host,
                needed: 4,
                free: 3
            }
        );
        assert_eq!(pool.pages_free(), 3);
        assert_eq!(pool.iter(a).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        pool.free(a);
        assert_eq!(pool.pages_free(), 10);
        assert_eq!(pool.count_free_bits(), 10);
    }

    #[test]
    fn pages_are_reused_and_owned() {
        let mut pool = PagePool::new(Tier::Hbm, 130);
        let a = pool.alloc(65, 7).unwrap();
        let b = pool.alloc(65, 8).unwrap();
        assert_eq!(pool.pages_free(), 0);
        assert!(pool.iter(b).all(|p| pool.owner(p) == Some(8)));
        pool.free(a);
        let c = pool.alloc(3, 9).unwrap();
        assert!(pool.iter(c).all(|p| p < 65 && pool.owner(p) == Some(9)));
        assert!(pool.alloc(62, 1).is_ok());
        assert!(pool.alloc(1, 1).is_err());
    }

    #[test]
    #[should_panic(expected = "freed twice")]
    fn double_free_is_caught() {
        let mut pool = PagePool::new(Tier::Nvme, 4);
        let a = pool.alloc(1, 0).unwrap();
        pool.free(a);
        pool.free(a);
    }

    /// The page a plain scan of the free map from the cursor would take (the reference for
    /// the summary-map search).
    fn plain_scan(pool: &PagePool) -> PageId {
        let words = pool.free.as_raw_slice();
        (0..words.len())
            .map(|step| (pool.cursor_word + step) % words.len())
            .find(|&w| words[w] != 0)
            .map(|w| (w * 64 + words[w].trailing_zeros() as usize) as PageId)
            .expect("a free page")
    }

    proptest::proptest! {
        /// Across several summary words, with frees behind and ahead of the cursor, the
        /// summary search takes exactly the page a plain word scan takes, and the summary
        /// stays in step with the free map.
        #[test]
        fn summary_search_takes_the_plain_scans_page(
            pages in 1u32..20_000,
            ops in proptest::collection::vec((0u32..300, proptest::bool::ANY), 1..60),
        ) {
            let mut pool = PagePool::new(Tier::Nvme, pages);
            let mut held: Vec<PageList> = Vec::new();
            for (i, (count, free_one)) in ops.into_iter().enumerate() {
                if free_one && !held.is_empty() {
                    let list = held.swap_remove(count as usize % held.len());
                    pool.free(list);
                } else if count > 0 && count <= pool.pages_free() {
                    let expected = plain_scan(&pool);
                    let list = pool.alloc(count, i as u32).unwrap();
                    proptest::prop_assert_eq!(list.head, expected);
                    held.push(list);
                }
                proptest::prop_assert!(pool.summary_matches());
                proptest::prop_assert_eq!(pool.count_free_bits(), pool.pages_free());
            }
        }
    }
}
