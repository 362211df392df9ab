//! An adapter split along its rank into fixed-size pages (S-LoRA's unified paging), so
//! adapter weights and KV blocks share one page pool.
//!
//! Rank slice `j` is, for every layer and target, row `j` of `A` and column `j` of `B`: the
//! part of the adapter that rank `j` contributes. The layout is **slice-major**:
//!
//! ```text
//!   byte stream = slice 0 ‖ slice 1 ‖ … ‖ slice r-1        (then zero padding to a whole page)
//!   slice j     = layer 0 ‖ layer 1 ‖ … ‖ layer L-1
//!   layer l     = target t0 ‖ t1 ‖ …                        (configured targets, in layer order
//!                                                            q, k, v, o, gate, up, down)
//!   target t    = A[j, 0..in] ‖ B[0..out, j]                (little-endian, in the stored dtype)
//! ```
//!
//! Every slice has the same size, `slice_bytes = L × Σ_t (in_t + out_t) × dtype bytes`
//! (= [`crate::ModelSpec::lora_bytes_per_rank`] for that dtype), and starts at byte
//! `j × slice_bytes`, so a slice may span a page boundary. The stream is cut into pages of
//! `page_bytes`; there are `ceil(r × slice_bytes / page_bytes)` pages (at least one), which is
//! what `PageGeometry::pages_for(lora_bytes(r, targets))` gives the allocator.

use std::ops::Range;

use super::adapter::{Adapter, AdapterShape, LoraPair};
use super::error::{PeftError, Result};
use crate::model::LoraTarget;

/// Where every value of a paged adapter lives.
#[derive(Clone, Debug, PartialEq)]
pub struct PageLayout {
    /// Bytes per page.
    pub page_bytes: usize,
    /// Rank, alpha, targets, dtype.
    pub shape: AdapterShape,
    /// Base model name.
    pub base_model: String,
    /// Decoder layers.
    pub layers: usize,
    /// `(target, in, out)` of each configured target, in layer order (same in every layer).
    pub projections: Vec<(LoraTarget, usize, usize)>,
}

impl PageLayout {
    /// Elements of one rank slice.
    pub fn slice_elements(&self) -> usize {
        self.layers * self.projections.iter().map(|p| p.1 + p.2).sum::<usize>()
    }
    /// Bytes of one rank slice.
    pub fn slice_bytes(&self) -> usize {
        self.slice_elements() * self.shape.dtype.bytes()
    }
    /// Bytes of all slices, without padding.
    pub fn total_bytes(&self) -> usize {
        self.shape.rank as usize * self.slice_bytes()
    }
    /// Pages the adapter takes: `ceil(total_bytes / page_bytes)`, at least one.
    pub fn page_count(&self) -> usize {
        self.total_bytes().div_ceil(self.page_bytes.max(1)).max(1)
    }
    /// Byte range of slice `j` in the stream of pages.
    pub fn slice_range(&self, j: u32) -> Range<usize> {
        let start = j as usize * self.slice_bytes();
        start..start + self.slice_bytes()
    }
    /// The pages slice `j` touches (what must be resident to compute with rank `j`).
    pub fn slice_pages(&self, j: u32) -> Range<usize> {
        let bytes = self.slice_range(j);
        let page_bytes = self.page_bytes.max(1);
        bytes.start / page_bytes..bytes.end.div_ceil(page_bytes)
    }
}

/// An adapter cut into pages of equal size (the last one zero-padded).
#[derive(Clone, Debug, PartialEq)]
pub struct PagedAdapter {
    /// The pages, each `layout.page_bytes` long.
    pub pages: Vec<Vec<u8>>,
    /// Where each value lives.
    pub layout: PageLayout,
}

impl Adapter {
    /// Splits the adapter along its rank into pages of `page_bytes` (see the module docs for
    /// the layout). Values are stored in the adapter's dtype, so the round trip is exact.
    pub fn paged(&self, page_bytes: u64) -> Result<PagedAdapter> {
        let page_bytes = usize::try_from(page_bytes)
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| PeftError::Paging(format!("page size {page_bytes} bytes")))?;
        let layout = PageLayout {
            page_bytes,
            shape: self.shape,
            base_model: self.base_model.clone(),
            layers: self.layers.len(),
            projections: self
                .layer(0)
                .iter()
                .map(|p| (p.target, p.input, p.output))
                .collect(),
        };
        let dtype = self.shape.dtype;
        let rank = self.shape.rank as usize;
        let mut stream = Vec::with_capacity(layout.page_count() * page_bytes);
        for j in 0..rank {
            for pair in self.layers.iter().flatten() {
                for &v in &pair.a[j * pair.input..(j + 1) * pair.input] {
                    dtype.encode(v, &mut stream);
                }
                for o in 0..pair.output {
                    dtype.encode(pair.b[o * rank + j], &mut stream);
                }
            }
        }
        debug_assert_eq!(stream.len(), layout.total_bytes());
        stream.resize(layout.page_count() * page_bytes, 0);
        let pages = stream.chunks(page_bytes).map(<[u8]>::to_vec).collect();
        Ok(PagedAdapter { pages, layout })
    }
}

impl PagedAdapter {
    fn check(&self) -> Result<()> {
        if self.layout.page_bytes == 0 {
            return Err(PeftError::Paging("page size 0 bytes".into()));
        }
        let want = self.layout.page_count();
        if self.pages.len() != want {
            return Err(PeftError::Paging(format!(
                "{} pages; the layout needs {want}",
                self.pages.len()
            )));
        }
        match self
            .pages
            .iter()
            .position(|p| p.len() != self.layout.page_bytes)
        {
            Some(i) => Err(PeftError::Paging(format!(
                "page {i} holds {} bytes, not {}",
                self.pages[i].len(),
                self.layout.page_bytes
            ))),
            None => Ok(()),
        }
    }

    /// The values of rank slice `j`, in layout order (per layer, per target: `A` row `j`,
    /// then `B` column `j`), widened to `f32`.
    pub fn read_slice(&self, j: u32) -> Result<Vec<f32>> {
        self.check()?;
        if j >= self.layout.shape.rank {
            return Err(PeftError::Paging(format!(
                "slice {j} of a rank-{} adapter",
                self.layout.shape.rank
            )));
        }
        let page_bytes = self.layout.page_bytes;
        let range = self.layout.slice_range(j);
        let mut bytes = Vec::with_capacity(range.len());
        let mut at = range.start;
        while at < range.end {
            let (page, offset) = (at / page_bytes, at % page_bytes);
            let take = (page_bytes - offset).min(range.end - at);
            bytes.extend_from_slice(&self.pages[page][offset..offset + take]);
            at += take;
        }
        let mut out = Vec::with_capacity(self.layout.slice_elements());
        self.layout.shape.dtype.decode(&bytes, &mut out);
        Ok(out)
    }

    /// Reassembles the adapter from its pages (the inverse of [`Adapter::paged`]).
    pub fn to_adapter(&self) -> Result<Adapter> {
        let layout = &self.layout;
        let rank = layout.shape.rank as usize;
        let mut layers: Vec<Vec<LoraPair>> = (0..layout.layers)
            .map(|_| {
                layout
                    .projections
                    .iter()
                    .map(|&(target, input, output)| LoraPair {
                        target,
                        input,
                        output,
                        a: vec![0.0; rank * input],
                        b: vec![0.0; output * rank],
                    })
                    .collect()
            })
            .collect();
        for j in 0..layout.shape.rank {
            let slice = self.read_slice(j)?;
            let mut at = 0;
            let j = j as usize;
            for pair in layers.iter_mut().flatten() {
                pair.a[j * pair.input..(j + 1) * pair.input]
                    .copy_from_slice(&slice[at..at + pair.input]);
                at += pair.input;
                for o in 0..pair.output {
                    pair.b[o * rank + j] = slice[at + o];
                }
                at += pair.output;
            }
        }
        Ok(Adapter {
            shape: layout.shape,
            base_model: layout.base_model.clone(),
            layers,
        })
    }
}
