//! The safetensors files of a Hugging Face folder, memory-mapped: `model.safetensors`, or the
//! shards `model.safetensors.index.json` names.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::checkpoint::error::{CheckpointError, Result};
use crate::checkpoint::names::Expected;
use crate::checkpoint::{Tensor, Weights};
use crate::peft::WeightDtype;

/// The weights file of an unsharded folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The index of a sharded folder.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// One mapped safetensors file.
struct Shard {
    path: PathBuf,
    map: Arc<Mmap>,
    /// Byte offset of the data section (after the 8-byte length and the JSON header).
    data_start: usize,
}

/// Where a tensor lies: shard, dtype, shape, byte range inside the shard's data section.
struct Location {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    range: (usize, usize),
}

/// Every tensor of the folder, by name.
pub(super) struct Shards {
    folder: PathBuf,
    shards: Vec<Shard>,
    tensors: HashMap<String, Location>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |e| CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Shards {
    /// Maps the folder's weights: the shards its index names, or `model.safetensors`.
    pub(super) fn open(folder: &Path) -> Result<Shards> {
        let index_path = folder.join(INDEX_FILE);
        let mut shards = Shards {
            folder: folder.to_path_buf(),
            shards: Vec::new(),
            tensors: HashMap::new(),
        };
        if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(io(&index_path))?;
            let weight_map = parse_index(&text, &index_path)?;
            let mut files: Vec<&str> = weight_map.values().map(String::as_str).collect();
            files.sort_unstable();
            files.dedup();
            for file in files {
                shards.add(&folder.join(file))?;
            }
            // Every tensor the index lists must be in the shard it names.
            for (name, file) in &weight_map {
                let location = shards.tensors.get(name);
                let in_file =
                    location.is_some_and(|l| shards.shards[l.shard].path == folder.join(file));
                if !in_file {
                    return Err(CheckpointError::MissingTensor {
                        path: folder.join(file),
                        tensor: name.clone(),
                    });
                }
            }
        } else if folder.join(WEIGHTS_FILE).is_file() {
            shards.add(&folder.join(WEIGHTS_FILE))?;
        } else {
            return Err(CheckpointError::NotACheckpoint {
                path: folder.to_path_buf(),
                reason: format!("neither {WEIGHTS_FILE} nor {INDEX_FILE}"),
            });
        }
        Ok(shards)
    }

    fn add(&mut self, path: &Path) -> Result<()> {
        let file = File::open(path).map_err(io(path))?;
        // SAFETY: read-only map; like every mmap-based loader, this relies on nobody truncating
        // or rewriting the file while it is mapped.
        let map = unsafe { Mmap::map(&file) }.map_err(io(path))?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| CheckpointError::Corrupt {
                path: path.to_path_buf(),
                field: "safetensors header".into(),
                reason: e.to_string(),
            })?;
        let shard = self.shards.len();
        for (name, info) in metadata.tensors() {
            let location = Location {
                shard,
                dtype: info.dtype,
                shape: info.shape.clone(),
                range: info.data_offsets,
            };
            if self.tensors.insert(name.clone(), location).is_some() {
                return Err(CheckpointError::Corrupt {
                    path: path.to_path_buf(),
                    field: format!("tensor `{name}`"),
                    reason: "also stored in another shard".into(),
                });
            }
        }
        self.shards.push(Shard {
            path: path.to_path_buf(),
            map: Arc::new(map),
            data_start: 8 + header_len,
        });
        Ok(())
    }

    /// Every stored name.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Checks that `e` is stored with its shape and a supported dtype (nothing is converted).
    pub(super) fn check(&self, e: &Expected) -> Result<WeightDtype> {
        let l = self
            .tensors
            .get(&e.name)
            .ok_or_else(|| CheckpointError::MissingTensor {
                path: self.folder.clone(),
                tensor: e.name.clone(),
            })?;
        let path = self.shards[l.shard].path.clone();
        let expected = if e.rows == 1 {
            vec![e.cols]
        } else {
            vec![e.rows, e.cols]
        };
        if l.shape != expected {
            return Err(CheckpointError::ShapeMismatch {
                path,
                tensor: e.name.clone(),
                found: format!("{:?}", l.shape),
                expected: format!("{expected:?}"),
            });
        }
        WeightDtype::from_safetensors(l.dtype).ok_or_else(|| CheckpointError::Unsupported {
            path,
            field: format!("tensor `{}`", e.name),
            reason: format!("dtype {:?}; supported: F32, F16, BF16", l.dtype),
        })
    }

    /// Tensor `e` as `f32` (checked first): zero-copy for aligned F32, widened otherwise.
    pub(super) fn load(&self, e: &Expected) -> Result<Tensor> {
        let dtype = self.check(e)?;
        let l = &self.tensors[&e.name];
        let shard = &self.shards[l.shard];
        let (start, end) = (shard.data_start + l.range.0, shard.data_start + l.range.1);
        let mapped = (l.dtype == Dtype::F32)
            .then(|| Weights::mapped(&shard.map, start, e.rows * e.cols))
            .flatten();
        let data = match mapped {
            Some(weights) => weights,
            None => {
                let mut values = Vec::with_capacity(e.rows * e.cols);
                dtype.decode(&shard.map[start..end], &mut values);
                values.into()
            }
        };
        Ok(Tensor {
            rows: e.rows,
            cols: e.cols,
            data,
        })
    }
}

/// The `weight_map` of an index file: tensor name → shard file name.
fn parse_index(text: &str, path: &Path) -> Result<HashMap<String, String>> {
    let corrupt = |field: &str, reason: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        field: field.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt("JSON", e.to_string()))?;
    let map = value
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| corrupt("weight_map", "missing or not an object".into()))?;
    map.iter()
        .map(|(name, file)| match file.as_str() {
            Some(f) if !f.contains('/') && !f.contains('\\') && f != ".." => {
                Ok((name.clone(), f.to_string()))
            }
            _ => Err(corrupt(
                &format!("weight_map.{name}"),
                format!("{file} is not a file name in the folder"),
            )),
        })
        .collect()
}
