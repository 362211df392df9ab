//! Served names → adapter ids and versions.
//!
//! Every shard registers every adapter in the same order, so an adapter has one id on all of
//! them (id 0 is the base model: a rank-1 adapter of zeros, which computes exactly the base
//! model's output). A name loaded again keeps its id and gets a new version (the tree gives
//! it a new, empty subtree); an unloaded name is forgotten, and loading it later gives it a
//! new id. Ids are never reused.

use std::path::PathBuf;

use super::api::AdapterListing;

/// One served adapter.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: u32,
    pub(crate) listing: AdapterListing,
}

/// The adapters being served, in load order.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    entries: Vec<Entry>,
    /// Names of ids no longer served (unloaded), for metrics about requests still running.
    retired: Vec<(u32, String)>,
}

impl Registry {
    /// The id serving `name`, if loaded.
    pub(crate) fn id_of(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|e| e.listing.name == name)
            .map(|e| e.id)
    }

    /// The name of adapter `id` (served or retired).
    pub(crate) fn name_of(&self, id: u32) -> Option<String> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.listing.name.clone())
            .or_else(|| {
                self.retired
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, n)| n.clone())
            })
    }

    /// The listing of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.listing.name == name)
    }

    /// Adds a first version of `name` under `id`.
    pub(crate) fn add(&mut self, id: u32, name: &str, path: PathBuf, rank: u32, now_s: u64) {
        self.entries.push(Entry {
            id,
            listing: AdapterListing {
                name: name.to_string(),
                path,
                version: 1,
                rank,
                created_unix_s: now_s,
            },
        });
    }

    /// Records a new version of `name`; returns its listing.
    pub(crate) fn bump(
        &mut self,
        name: &str,
        path: PathBuf,
        rank: u32,
        now_s: u64,
    ) -> Option<AdapterListing> {
        let e = self.entries.iter_mut().find(|e| e.listing.name == name)?;
        e.listing.version += 1;
        e.listing.path = path;
        e.listing.rank = rank;
        e.listing.created_unix_s = now_s;
        Some(e.listing.clone())
    }

    /// Forgets `name`; returns its id.
    pub(crate) fn remove(&mut self, name: &str) -> Option<u32> {
        let at = self.entries.iter().position(|e| e.listing.name == name)?;
        let e = self.entries.remove(at);
        self.retired.push((e.id, e.listing.name));
        Some(e.id)
    }

    /// The listings in load order.
    pub(crate) fn listings(&self) -> Vec<AdapterListing> {
        self.entries.iter().map(|e| e.listing.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_bump_the_version_and_unloads_forget_the_name_but_not_the_id() {
        let mut r = Registry::default();
        r.add(1, "a", "x".into(), 8, 10);
        r.add(2, "b", "y".into(), 4, 11);
        assert_eq!(r.id_of("b"), Some(2));
        let l = r.bump("a", "z".into(), 16, 12).unwrap();
        assert_eq!((l.version, l.rank, l.path), (2, 16, PathBuf::from("z")));
        assert_eq!(r.remove("a"), Some(1));
        assert_eq!(r.id_of("a"), None);
        assert_eq!(
            r.name_of(1).as_deref(),
            Some("a"),
            "retired ids keep a name"
        );
        assert_eq!(r.listings().len(), 1);
        assert!(r.bump("a", "z".into(), 1, 1).is_none());
    }
}
