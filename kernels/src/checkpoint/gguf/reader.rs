//! A bounds-checked little-endian cursor over the bytes of a GGUF file.

use std::path::Path;

use crate::checkpoint::error::{CheckpointError, Result};

/// Reads fields one after another; every read checks that the bytes are there and names the
/// field when they are not. Field names are built only on error (closures), so reading a
/// vocabulary of 49k strings costs no formatting.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], path: &'a Path) -> Reader<'a> {
        Reader {
            bytes,
            pos: 0,
            path,
        }
    }

    /// Bytes read so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(super) fn path(&self) -> &'a Path {
        self.path
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: u64, field: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let start = self.pos;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(CheckpointError::Truncated {
                path: self.path.to_path_buf(),
                field: field(),
                offset: start as u64,
                needed: n,
                len: self.bytes.len() as u64,
            });
        };
        self.pos = end;
        Ok(&self.bytes[start..end])
    }

    fn array<const N: usize>(&mut self, field: &dyn Fn() -> String) -> Result<[u8; N]> {
        let bytes = self.take(N as u64, field)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(super) fn u8(&mut self, field: &dyn Fn() -> String) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(super) fn u16(&mut self, field: &dyn Fn() -> String) -> Result<u16> {
        self.array(field).map(u16::from_le_bytes)
    }

    pub(super) fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32> {
        self.array(field).map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64> {
        self.array(field).map(u64::from_le_bytes)
    }

    pub(super) fn f32(&mut self, field: &dyn Fn() -> String) -> Result<f32> {
        self.array(field).map(f32::from_le_bytes)
    }

    pub(super) fn f64(&mut self, field: &dyn Fn() -> String) -> Result<f64> {
        self.array(field).map(f64::from_le_bytes)
    }

    /// A GGUF string: `u64` length, then that many bytes of UTF-8.
    pub(super) fn string(&mut self, field: &dyn Fn() -> String) -> Result<&'a str> {
        let len = self.u64(&|| format!("{} length", field()))?;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|e| self.corrupt(field(), format!("not UTF-8: {e}")))
    }

    /// A [`CheckpointError::Corrupt`] naming this file.
    pub(super) fn corrupt(&self, field: String, reason: String) -> CheckpointError {
        CheckpointError::Corrupt {
            path: self.path.to_path_buf(),
            field,
            reason,
        }
    }
}
