//! Streaming trace rows out of CSV files and grouping them into traces.
//!
//! Rows of one trace need not be contiguous (Alibaba files are ordered by time), so rows are
//! collected per trace id and a trace is finished once no row of it has been seen for
//! `window` rows (or at the end of the input). Memory is bounded by the traces open inside
//! the window, not by the length of the input. A trace whose rows are spread wider than the
//! window is split; its fragments then fail the checks (no root, missing parent) and are
//! counted as dropped.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::path::Path;

use rustc_hash::FxHashMap;

use super::intern::{Interner, NONE};
use super::trace::{PendingTrace, Row};
use crate::error::{DggError, Result};

/// Column positions of the fields the handler reads.
#[derive(Clone, Copy, Debug)]
pub struct Columns {
    traceid: usize,
    rpc_id: usize,
    um: usize,
    rpctype: usize,
    dm: usize,
    interface: usize,
    service: Option<usize>,
    max: usize,
}

impl Columns {
    /// Finds the columns by name. Accepts the v2022 names (`rpc_id`, with `service`) and the
    /// v2021 ones (`rpcid`, no `service`); other columns are ignored.
    pub fn from_header(path: &Path, header: &csv::ByteRecord) -> Result<Columns> {
        let find = |names: &[&str]| {
            header.iter().position(|h| {
                names
                    .iter()
                    .any(|n| h.trim_ascii().eq_ignore_ascii_case(n.as_bytes()))
            })
        };
        let need = |names: &[&'static str]| {
            find(names).ok_or_else(|| DggError::Csv {
                path: path.to_path_buf(),
                line: 1,
                msg: format!(
                    "missing column {} (header: {:?})",
                    names[0],
                    String::from_utf8_lossy(header.as_slice())
                ),
            })
        };
        let c = Columns {
            traceid: need(&["traceid", "trace_id"])?,
            rpc_id: need(&["rpc_id", "rpcid"])?,
            um: need(&["um"])?,
            rpctype: need(&["rpctype", "rpc_type"])?,
            dm: need(&["dm"])?,
            interface: need(&["interface"])?,
            service: find(&["service"]),
            max: 0,
        };
        let max = [
            c.traceid,
            c.rpc_id,
            c.um,
            c.rpctype,
            c.dm,
            c.interface,
            c.service.unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Ok(Columns { max, ..c })
    }
}

/// Rows that could not be used, by reason, with the first few examples.
#[derive(Clone, Debug, Default)]
pub struct RowIssues {
    /// Reason → rows.
    pub counts: BTreeMap<&'static str, u64>,
    /// The first issues, as `file:line: field …: what`.
    pub examples: Vec<String>,
}

impl RowIssues {
    const EXAMPLES: usize = 20;

    fn add(&mut self, reason: &'static str, path: &Path, line: u64, detail: String) {
        *self.counts.entry(reason).or_default() += 1;
        if self.examples.len() < Self::EXAMPLES {
            self.examples
                .push(format!("{}:{line}: {detail}", path.display()));
        }
    }
}

struct Slot {
    key: Box<[u8]>,
    trace: PendingTrace,
    first_seen: u64,
    last_seen: u64,
}

/// Groups rows into traces.
pub struct Collector {
    window: u64,
    row_no: u64,
    map: FxHashMap<Box<[u8]>, u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    queue: VecDeque<(u32, u64, u64)>,
    /// Rows read (valid or not).
    pub rows: u64,
    /// Unusable rows.
    pub issues: RowIssues,
}

impl Collector {
    /// A collector that finishes a trace after `window` rows without one of its rows.
    pub fn new(window: u64) -> Collector {
        Collector {
            window: window.max(1),
            row_no: 0,
            map: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            rows: 0,
            issues: RowIssues::default(),
        }
    }

    /// Reads one CSV file, handing finished traces to `sink`.
    pub fn read_file(
        &mut self,
        path: &Path,
        strings: &mut Interner,
        sink: &mut dyn FnMut(PendingTrace),
    ) -> Result<()> {
        let file = std::fs::File::open(path).map_err(|e| DggError::io(path, e))?;
        let file = std::io::BufReader::with_capacity(1 << 20, file);
        self.read_from(path, file, strings, sink)
    }

    /// Reads CSV from `input` (`path` only names it in errors and row examples), handing
    /// finished traces to `sink`.
    pub fn read_from(
        &mut self,
        path: &Path,
        input: impl Read,
        strings: &mut Interner,
        sink: &mut dyn FnMut(PendingTrace),
    ) -> Result<()> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(input);
        let header = rdr
            .byte_headers()
            .map_err(|e| DggError::Csv {
                path: path.to_path_buf(),
                line: 1,
                msg: e.to_string(),
            })?
            .clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(DggError::Csv {
                path: path.to_path_buf(),
                line: 1,
                msg: "empty file (no header)".into(),
            });
        }
        let cols = Columns::from_header(path, &header)?;
        let mut rec = csv::ByteRecord::new();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map(|p| p.line()).unwrap_or(0);
                    self.row(path, line, &rec, &cols, strings);
                    self.evict(sink);
                }
                Err(e) => {
                    if let csv::ErrorKind::Io(_) = e.kind() {
                        return Err(DggError::Csv {
                            path: path.to_path_buf(),
                            line: 0,
                            msg: e.to_string(),
                        });
                    }
                    self.rows += 1;
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    self.issues.add("csv_error", path, line, e.to_string());
                }
            }
        }
        Ok(())
    }

    fn row(
        &mut self,
        path: &Path,
        line: u64,
        rec: &csv::ByteRecord,
        c: &Columns,
        strings: &mut Interner,
    ) {
        self.rows += 1;
        if rec.len() <= c.max {
            let detail = format!(
                "{} fields, the header needs at least {}",
                rec.len(),
                c.max + 1
            );
            self.issues.add("missing_fields", path, line, detail);
            return;
        }
        let traceid = &rec[c.traceid];
        if traceid.is_empty() {
            self.issues
                .add("empty_traceid", path, line, "field traceid: empty".into());
            return;
        }
        self.row_no += 1;
        let slot = self.slot(traceid);
        let raw = &rec[c.rpc_id];
        let rpc: &[u8] = if raw == b"0.0" { b"0" } else { raw };
        let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        s.last_seen = self.row_no;
        if !valid_rpc_id(rpc) {
            s.trace.poisoned = true;
            let detail = format!(
                "field rpc_id: {:?} is not a dotted list of numbers",
                String::from_utf8_lossy(raw)
            );
            self.issues.add("bad_rpc_id", path, line, detail);
            return;
        }
        let t = &mut s.trace;
        let rpc_start = t.arena.len() as u32;
        t.arena.extend_from_slice(rpc);
        t.rows.push(Row {
            rpc_start,
            rpc_len: rpc.len() as u32,
            um: strings.intern(rec[c.um].trim_ascii()),
            dm: strings.intern(rec[c.dm].trim_ascii()),
            rpctype: strings.intern(rec[c.rpctype].trim_ascii()),
            iface: strings.intern(rec[c.interface].trim_ascii()),
            service: c
                .service
                .map_or(NONE, |i| strings.intern(rec[i].trim_ascii())),
        });
    }

    fn slot(&mut self, traceid: &[u8]) -> u32 {
        if let Some(&s) = self.map.get(traceid) {
            return s;
        }
        let slot = Slot {
            key: traceid.into(),
            trace: PendingTrace::default(),
            first_seen: self.row_no,
            last_seen: self.row_no,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(traceid.into(), id);
        self.queue.push_back((id, self.row_no, self.row_no));
        id
    }

    fn evict(&mut self, sink: &mut dyn FnMut(PendingTrace)) {
        while let Some(&(id, first, seen)) = self.queue.front() {
            if seen + self.window >= self.row_no {
                break;
            }
            self.queue.pop_front();
            let Some(Some(s)) = self.slots.get(id as usize) else {
                continue;
            };
            if s.first_seen != first {
                continue;
            }
            if s.last_seen != seen {
                let last = s.last_seen;
                self.queue.push_back((id, first, last));
                continue;
            }
            self.finish(id, sink);
        }
    }

    fn finish(&mut self, id: u32, sink: &mut dyn FnMut(PendingTrace)) {
        if let Some(s) = self.slots.get_mut(id as usize).and_then(Option::take) {
            self.map.remove(&s.key);
            self.free.push(id);
            sink(s.trace);
        }
    }

    /// Finishes every open trace, oldest first.
    pub fn flush(&mut self, sink: &mut dyn FnMut(PendingTrace)) {
        let mut open: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (s.first_seen, i as u32)))
            .collect();
        open.sort_unstable();
        for (_, id) in open {
            self.finish(id, sink);
        }
        self.queue.clear();
    }
}

/// Whether `id` is numbers separated by single dots.
fn valid_rpc_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id
            .split(|&b| b == b'.')
            .all(|part| !part.is_empty() && part.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_ids() {
        assert!(valid_rpc_id(b"0"));
        assert!(valid_rpc_id(b"0.1.12"));
        assert!(!valid_rpc_id(b""));
        assert!(!valid_rpc_id(b"0..1"));
        assert!(!valid_rpc_id(b"0.a"));
        assert!(!valid_rpc_id(b"0.1."));
    }
}
