//! Batch reads and writes: a small driver of the submit / reap / take cycle that keeps up to
//! `queue_depth` operations in flight until the batch is done.

use super::error::IoError;
use super::page_file::{Completion, PageFile, PageReadStatus};

impl PageFile {
    /// Writes every `(page, data)` pair, keeping up to `queue_depth` writes in flight. Pages
    /// are checked first (range, exactly one page of data), so a bad argument writes nothing.
    /// A page named twice is written in order (the later data wins). Needs an idle file (no
    /// operation from [`submit_write`](Self::submit_write) and friends outstanding). On an I/O
    /// error the other writes still finish, then the first error is returned; the failed pages
    /// read as never written.
    pub fn write_pages(&mut self, writes: &[(u32, &[u8])]) -> Result<(), IoError> {
        self.require_idle()?;
        for &(page, data) in writes {
            self.check_page(page)?;
            self.check_len(page, data.len())?;
        }
        let mut done = Vec::with_capacity(self.queue_depth() as usize);
        let mut first_err = None;
        for &(page, data) in writes {
            while self.free_buffers() == 0 || self.is_busy(page) {
                self.reap_writes(&mut done, &mut first_err)?;
            }
            self.submit_write(page, data)?;
        }
        while self.in_flight() > 0 {
            self.reap_writes(&mut done, &mut first_err)?;
        }
        first_err.map_or(Ok(()), Err)
    }

    fn reap_writes(
        &mut self,
        done: &mut Vec<Completion>,
        first_err: &mut Option<IoError>,
    ) -> Result<(), IoError> {
        done.clear();
        self.reap(1, done)?;
        for completion in done.drain(..) {
            if let Err(e) = completion.result {
                first_err.get_or_insert(e);
            }
        }
        Ok(())
    }

    /// Reads `pages[i]` into `out[i]` (each exactly one page), keeping up to `queue_depth`
    /// reads in flight, and returns each page's status. Only [`PageReadStatus::Valid`] pages
    /// are copied out; a page never written or failing its check leaves its buffer untouched.
    /// Arguments are checked first; needs an idle file. On an I/O error the other reads still
    /// finish, then the first error is returned.
    pub fn read_pages(
        &mut self,
        pages: &[u32],
        out: &mut [&mut [u8]],
    ) -> Result<Vec<PageReadStatus>, IoError> {
        if pages.len() != out.len() {
            return Err(IoError::BatchMismatch {
                pages: pages.len(),
                buffers: out.len(),
            });
        }
        self.require_idle()?;
        for (&page, buf) in pages.iter().zip(out.iter()) {
            self.check_page(page)?;
            self.check_len(page, buf.len())?;
        }
        let mut status: Vec<PageReadStatus> = pages
            .iter()
            .map(|&page| PageReadStatus::NeverWritten { page })
            .collect();
        let mut index_of = vec![usize::MAX; self.queue_depth() as usize];
        let mut done = Vec::with_capacity(self.queue_depth() as usize);
        let mut first_err = None;
        let mut sink = ReadSink {
            index_of: &mut index_of,
            out,
            status: &mut status,
            first_err: &mut first_err,
            done: &mut done,
        };
        for (i, &page) in pages.iter().enumerate() {
            if !self.is_written(page) {
                continue;
            }
            while self.free_buffers() == 0 || self.is_busy(page) {
                sink.reap(self)?;
            }
            let ticket = self.submit_read(page)?;
            sink.index_of[ticket.buffer()] = i;
        }
        while self.in_flight() > 0 {
            sink.reap(self)?;
        }
        first_err.map_or(Ok(status), Err)
    }
}

/// Where `read_pages` puts what it reaps.
struct ReadSink<'a, 'b> {
    /// Batch index of the read each buffer carries.
    index_of: &'a mut [usize],
    out: &'a mut [&'b mut [u8]],
    status: &'a mut [PageReadStatus],
    first_err: &'a mut Option<IoError>,
    done: &'a mut Vec<Completion>,
}

impl ReadSink<'_, '_> {
    fn reap(&mut self, file: &mut PageFile) -> Result<(), IoError> {
        self.done.clear();
        file.reap(1, self.done)?;
        for completion in self.done.drain(..) {
            let i = self.index_of[completion.ticket.buffer()];
            match completion.result {
                Ok(()) => self.status[i] = file.take_read(completion.ticket, self.out[i])?,
                Err(e) => {
                    self.first_err.get_or_insert(e);
                }
            }
        }
        Ok(())
    }
}
