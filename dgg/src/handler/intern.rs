//! Byte-string interning: every microservice, interface, call type and service name of a trace
//! becomes a `u32`, so per-row work is a hash lookup and graphs are small integer vectors.

use rustc_hash::FxHashMap;

/// Id meaning "no interface".
pub const NONE: u32 = u32::MAX;

/// An append-only table of byte strings.
#[derive(Debug, Default)]
pub struct Interner {
    ids: FxHashMap<Box<[u8]>, u32>,
    strings: Vec<Box<[u8]>>,
}

impl Interner {
    /// The id of `s`, interning it if new.
    pub fn intern(&mut self, s: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.ids.insert(s.into(), id);
        self.strings.push(s.into());
        id
    }

    /// The id of `s`, if interned.
    pub fn get(&self, s: &[u8]) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The bytes of `id`.
    pub fn bytes(&self, id: u32) -> &[u8] {
        &self.strings[id as usize]
    }

    /// The text of `id` (invalid UTF-8 replaced).
    pub fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.bytes(id)).into_owned()
    }
}
