//! The spill directory that holds the NVMe tier's page files.

use std::path::{Path, PathBuf};

/// Where page files go: a folder the user named (kept), or a fresh folder under the system's
/// temporary directory that is removed when this value is dropped.
#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
    remove: bool,
}

impl SpillDir {
    /// Uses `dir` if given (created if missing, kept at exit), else makes
    /// `<temp>/fastlibra-spill-<pid>-<n>` (removed at exit).
    pub fn new(dir: Option<&Path>) -> std::io::Result<SpillDir> {
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
            return Ok(SpillDir {
                path: dir.to_path_buf(),
                remove: false,
            });
        }
        let base = std::env::temp_dir();
        for n in 0..1000u32 {
            let path = base.join(format!("fastlibra-spill-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(SpillDir { path, remove: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free spill folder name"))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_is_removed_and_a_named_one_kept() {
        let default = SpillDir::new(None).expect("temp folder");
        let path = default.path().to_path_buf();
        assert!(path.is_dir());
        drop(default);
        assert!(!path.exists());

        let named = path.with_extension("named");
        drop(SpillDir::new(Some(&named)).expect("named folder"));
        assert!(named.is_dir());
        std::fs::remove_dir_all(&named).expect("clean up");
    }
}
