//! Weights in memory: `f32` values either inside a memory map (zero-copy) or owned.

use std::sync::Arc;

use memmap2::Mmap;

/// The `f32` values of one tensor, shared read-only. Cloning is cheap (an `Arc`).
#[derive(Clone, Debug)]
pub enum Weights {
    /// `len` little-endian `f32` values at byte `offset` of a memory-mapped file (used where the
    /// file already stores them as aligned `f32`: no copy at all).
    Mapped {
        /// The file's map, shared with every other tensor of the file.
        map: Arc<Mmap>,
        /// Byte offset of the first value; a multiple of 4.
        offset: usize,
        /// Number of `f32` values (not bytes).
        len: usize,
    },
    /// Values computed at load (dequantised, widened or permuted).
    Owned(Arc<[f32]>),
}

impl Weights {
    /// A zero-copy view of `len` values at `offset` of `map`, or `None` when that is not
    /// possible: the range lies outside the map, `offset` is not 4-byte aligned, or the host is
    /// big-endian.
    pub fn mapped(map: &Arc<Mmap>, offset: usize, len: usize) -> Option<Weights> {
        let end = len
            .checked_mul(4)
            .and_then(|bytes| offset.checked_add(bytes))?;
        let bytes = map.get(offset..end)?;
        let aligned = bytes.as_ptr().align_offset(std::mem::align_of::<f32>()) == 0;
        (aligned && cfg!(target_endian = "little")).then(|| Weights::Mapped {
            map: Arc::clone(map),
            offset,
            len,
        })
    }

    /// The values.
    ///
    /// # Panics
    /// If a [`Weights::Mapped`] was built by hand with a range outside its map or an unaligned
    /// offset ([`Weights::mapped`] never builds one).
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Weights::Owned(values) => values,
            Weights::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + len * 4];
                // SAFETY: every bit pattern is a valid f32, and `align_to` only puts
                // correctly aligned, whole elements in the middle slice.
                let (head, values, tail) = unsafe { bytes.align_to::<f32>() };
                assert!(
                    head.is_empty() && tail.is_empty(),
                    "unaligned mapped weights"
                );
                values
            }
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Weights::Owned(values) => values.len(),
            Weights::Mapped { len, .. } => *len,
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the values live in a memory map rather than in owned memory.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Weights::Mapped { .. })
    }
}

impl From<Vec<f32>> for Weights {
    fn from(values: Vec<f32>) -> Weights {
        Weights::Owned(values.into())
    }
}

/// One weight tensor, row-major `rows × cols` in PyTorch's layout (a linear layer's weight is
/// `out × in`; a vector has `rows = 1`). Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Rows (output features of a linear layer).
    pub rows: usize,
    /// Columns (input features).
    pub cols: usize,
    /// `rows × cols` values.
    pub data: Weights,
}

impl Tensor {
    /// The values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        self.data.as_slice()
    }

    /// Row `r`.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.as_slice()[r * self.cols..(r + 1) * self.cols]
    }
}
