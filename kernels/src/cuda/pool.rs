//! The memory of the two tiers a GPU serves from: HBM pages carved from one device allocation,
//! and host pages in one pinned (page-locked) allocation, so every copy between them is a DMA.

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaSlice, DevicePtr, PinnedHostSlice};

use super::device::CudaDevice;
use super::error::{Result, alloc_error, driver, invalid};

/// Page count × floats per page as bytes, checked.
fn pool_floats(pages: usize, page_floats: usize) -> Result<usize> {
    if pages == 0 || page_floats == 0 || !page_floats.is_multiple_of(4) {
        return Err(invalid(format!(
            "a page pool needs positive pages and page floats a multiple of 4 (got {pages} × {page_floats})"
        )));
    }
    pages
        .checked_mul(page_floats)
        .filter(|f| f.checked_mul(4).is_some())
        .ok_or_else(|| invalid("page pool size overflows"))
}

/// The HBM tier: `pages` pages of `page_floats` f32 each in one device allocation. KV blocks
/// (layout of [`KvArena`](crate::cpu::KvArena)) and adapter pages share it.
pub struct DevicePagePool {
    pub(crate) buf: CudaSlice<f32>,
    pages: usize,
    page_floats: usize,
}

impl DevicePagePool {
    /// Allocates the pool once, at start-up; [`CudaError::OutOfMemory`](super::CudaError) when
    /// it does not fit.
    pub fn new(dev: &CudaDevice, pages: usize, page_floats: usize) -> Result<Self> {
        let floats = pool_floats(pages, page_floats)?;
        // SAFETY: the pool's contents are undefined until written; every reader of a page
        // reads only pages the caller wrote (KV) or loaded (adapters).
        let buf = unsafe { dev.compute.alloc::<f32>(floats) }.map_err(alloc_error(
            "device",
            "HBM page pool",
            (floats * 4) as u64,
        ))?;
        Ok(DevicePagePool {
            buf,
            pages,
            page_floats,
        })
    }

    /// Pages in the pool.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Floats per page.
    pub fn page_floats(&self) -> usize {
        self.page_floats
    }

    /// Device address of page `page`'s first byte.
    pub(crate) fn page_ptr(&self, dev: &CudaDevice, page: u32) -> Result<CUdeviceptr> {
        if page as usize >= self.pages {
            return Err(invalid(format!(
                "HBM page {page} outside a pool of {}",
                self.pages
            )));
        }
        let (base, _sync) = self.buf.device_ptr(&dev.compute);
        Ok(base + (page as u64) * (self.page_floats as u64) * 4)
    }

    /// Copies `data` (whole pages) into pages `first..` on the compute stream and waits
    /// (loading adapters and tests; swaps go through the copy engine).
    pub fn write_pages(&mut self, dev: &CudaDevice, first: u32, data: &[f32]) -> Result<()> {
        let end = first as usize * self.page_floats + data.len();
        if !data.len().is_multiple_of(self.page_floats) || end > self.pages * self.page_floats {
            return Err(invalid("write outside the HBM pool or not whole pages"));
        }
        let ptr = self.page_ptr(dev, first)?;
        // SAFETY: the range lies inside the pool (checked above); the host slice is pageable,
        // so the copy is staged before this call returns and is then waited for.
        unsafe {
            cudarc::driver::result::memcpy_htod_async(ptr, data, dev.compute.cu_stream())
                .map_err(driver("page write"))?;
        }
        dev.compute.synchronize().map_err(driver("page write sync"))
    }

    /// Reads page `page` back to the host, after all work queued on the compute stream.
    pub fn read_page(&self, dev: &CudaDevice, page: u32) -> Result<Vec<f32>> {
        let ptr = self.page_ptr(dev, page)?;
        let mut out = vec![0.0f32; self.page_floats];
        // SAFETY: the page lies inside the pool; the stream is synchronised before `out` is
        // read or dropped.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(&mut out, ptr, dev.compute.cu_stream())
                .map_err(driver("page read"))?;
        }
        dev.compute
            .synchronize()
            .map_err(driver("page read sync"))?;
        Ok(out)
    }
}

/// The host tier: `pages` pages of `page_floats` f32 in one pinned allocation (not
/// write-combined, since the host reads swapped-out pages back).
pub struct HostPagePool {
    pub(crate) buf: PinnedHostSlice<f32>,
    pages: usize,
    page_floats: usize,
}

impl HostPagePool {
    /// Allocates and zeroes the pinned pool; [`CudaError::OutOfMemory`](super::CudaError) when
    /// the host cannot pin that much.
    pub fn new(dev: &CudaDevice, pages: usize, page_floats: usize) -> Result<Self> {
        let floats = pool_floats(pages, page_floats)?;
        // SAFETY: zeroed right below, before any read.
        let mut buf = unsafe { dev.context().alloc_pinned_with_flags::<f32>(floats, 0) }.map_err(
            alloc_error("pinned host", "host page pool", (floats * 4) as u64),
        )?;
        buf.as_mut_slice()
            .map_err(driver("pinned pool access"))?
            .fill(0.0);
        Ok(HostPagePool {
            buf,
            pages,
            page_floats,
        })
    }

    /// Pages in the pool.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Floats per page.
    pub fn page_floats(&self) -> usize {
        self.page_floats
    }

    /// Pages `first..first + count` as one slice (for the host to fill or read; no copy may be
    /// in flight on them).
    pub fn pages_mut(&mut self, first: u32, count: usize) -> Result<&mut [f32]> {
        let range = self.range(first, count)?;
        Ok(&mut self
            .buf
            .as_mut_slice()
            .map_err(driver("pinned pool access"))?[range])
    }

    /// Pages `first..first + count`, read-only.
    pub fn pages_ref(&self, first: u32, count: usize) -> Result<&[f32]> {
        let range = self.range(first, count)?;
        Ok(&self.buf.as_slice().map_err(driver("pinned pool access"))?[range])
    }

    fn range(&self, first: u32, count: usize) -> Result<std::ops::Range<usize>> {
        let end = first as usize + count;
        if end > self.pages {
            return Err(invalid(format!(
                "host pages {first}..{end} outside a pool of {}",
                self.pages
            )));
        }
        Ok(first as usize * self.page_floats..end * self.page_floats)
    }
}
