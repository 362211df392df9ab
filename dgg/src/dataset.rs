//! Folders of call graphs: the data handler's output (`service_info.csv` and
//! `real_call_graph_renamed/type{K}/{service}/graph{N}.json`) and the generator's output
//! (`type{K}/graph{N}.json`).
//!
//! Loading is forgiving where that makes sense: a service listed in `service_info.csv` whose
//! folder is missing, or a graph file that does not parse, is skipped with a warning that names
//! it, and the rest is used. A missing `service_info.csv` is an error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{DggError, Result};
use crate::graph::CallGraph;
use crate::json;

/// Name of the folder of real call graphs inside a handler output folder.
pub const REAL_DIR: &str = "real_call_graph_renamed";
/// Name of the per-service table inside a handler output folder.
pub const SERVICE_INFO: &str = "service_info.csv";

/// One row of `service_info.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Service name (its folder name).
    pub service: String,
    /// Traces covered by the service's kept (top 90 %) call graphs.
    pub top90_trace_num: u64,
    /// Number of kept call graphs.
    pub top90_cg_num: u64,
    /// Number of distinct microservices in the kept call graphs, `USER` included.
    pub ms_num: u64,
    /// Cluster (`type{label}`).
    pub label: u32,
}

/// A service with its call graphs.
#[derive(Clone, Debug)]
pub struct Service {
    /// Its `service_info.csv` row.
    pub info: ServiceInfo,
    /// Its call graphs, in file order (`graph1.json`, `graph2.json`, …).
    pub graphs: Vec<CallGraph>,
}

/// A handler output folder, loaded.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Services with at least one readable call graph, in `service_info.csv` order.
    pub services: Vec<Service>,
    /// What was skipped, and why (one line each, naming the file or folder).
    pub warnings: Vec<String>,
}

/// Reads `service_info.csv`. Rows that cannot be parsed are skipped and reported in `warnings`.
pub fn read_service_info(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<ServiceInfo>> {
    if !path.is_file() {
        return Err(DggError::MissingServiceInfo {
            path: path.to_path_buf(),
        });
    }
    let file = fs::File::open(path).map_err(|e| DggError::Csv {
        path: path.to_path_buf(),
        line: 1,
        msg: e.to_string(),
    })?;
    read_service_info_from(path, file, warnings)
}

/// [`read_service_info`] on an open reader; `path` names it in errors and warnings.
pub(crate) fn read_service_info_from(
    path: &Path,
    reader: impl std::io::Read,
    warnings: &mut Vec<String>,
) -> Result<Vec<ServiceInfo>> {
    let csv_err = |line: u64, msg: String| DggError::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut rdr = csv::Reader::from_reader(reader);
    let header = rdr
        .headers()
        .map_err(|e| csv_err(1, e.to_string()))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let need =
        |name: &'static str| col(name).ok_or_else(|| csv_err(1, format!("missing column {name}")));
    let (c_service, c_traces, c_label) =
        (need("service")?, need("top90_trace_num")?, need("label")?);
    let (c_cgs, c_ms) = (col("top90_cg_num"), col("ms_num"));
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!("{}:{line}: skipped: {e}", path.display()));
                continue;
            }
        };
        let field = |c: usize| rec.get(c).unwrap_or("").trim();
        let num = |c: Option<usize>, name: &str| -> std::result::Result<u64, String> {
            match c {
                None => Ok(0),
                Some(c) => field(c)
                    .parse()
                    .map_err(|_| format!("{name} {:?} is not a number", field(c))),
            }
        };
        let parsed = (|| {
            let label = num(Some(c_label), "label")?;
            let label = u32::try_from(label).map_err(|_| "label out of range".to_string())?;
            Ok::<_, String>(ServiceInfo {
                service: field(c_service).to_string(),
                top90_trace_num: num(Some(c_traces), "top90_trace_num")?,
                top90_cg_num: num(c_cgs, "top90_cg_num")?,
                ms_num: num(c_ms, "ms_num")?,
                label,
            })
        })();
        match parsed {
            Ok(row) if !row.service.is_empty() => rows.push(row),
            Ok(_) => warnings.push(format!("{}:{line}: skipped: empty service", path.display())),
            Err(msg) => warnings.push(format!("{}:{line}: skipped: {msg}", path.display())),
        }
    }
    Ok(rows)
}

/// Writes `service_info.csv` (`service,top90_trace_num,top90_cg_num,ms_num,label`).
pub fn write_service_info(path: &Path, rows: &[ServiceInfo]) -> Result<()> {
    json::write_file(path, service_info_text(rows).as_bytes())
}

/// The text of `service_info.csv` for `rows`. Fields are quoted where CSV needs it (a service
/// name with a comma, a quote or a line break), so that the file reads back as written.
pub(crate) fn service_info_text(rows: &[ServiceInfo]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "service",
        "top90_trace_num",
        "top90_cg_num",
        "ms_num",
        "label",
    ];
    // Writing to a Vec cannot fail.
    w.write_record(header).expect("in memory");
    for r in rows {
        w.write_record([
            r.service.clone(),
            r.top90_trace_num.to_string(),
            r.top90_cg_num.to_string(),
            r.ms_num.to_string(),
            r.label.to_string(),
        ])
        .expect("in memory");
    }
    let bytes = w.into_inner().expect("in memory");
    String::from_utf8(bytes).expect("written from strings")
}

/// `graph{N}.json` files directly in `dir`, sorted by N.
pub fn graph_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DggError::io(dir, e))? {
        let entry = entry.map_err(|e| DggError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(n) = name
            .strip_prefix("graph")
            .and_then(|s| s.strip_suffix(".json"))
        else {
            continue;
        };
        if let Ok(n) = n.parse::<u64>() {
            files.push((n, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Parses files on all cores; results in input order.
pub fn parse_files(paths: &[PathBuf]) -> Vec<Result<CallGraph>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 || paths.len() < 64 {
        return paths.iter().map(|p| json::read_graph(p)).collect();
    }
    let chunk = paths.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || part.iter().map(|p| json::read_graph(p)).collect::<Vec<_>>())
            })
            .collect();
        let mut out = Vec::with_capacity(paths.len());
        for (h, part) in handles.into_iter().zip(paths.chunks(chunk)) {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(_) => out.extend(part.iter().map(|p| {
                    Err(DggError::NoData {
                        path: p.clone(),
                        msg: "parser thread panicked".into(),
                    })
                })),
            }
        }
        out
    })
}

/// Loads a handler output folder: the services of `service_info.csv` whose cluster is in
/// `types` (all when `None`), each with its graphs.
pub fn load_dataset(root: &Path, types: Option<&[u32]>) -> Result<Dataset> {
    let mut warnings = Vec::new();
    let infos = read_service_info(&root.join(SERVICE_INFO), &mut warnings)?;
    let graph_root = root.join(REAL_DIR);
    let mut wanted = Vec::new();
    let mut all_paths = Vec::new();
    for info in infos {
        if types.is_some_and(|t| !t.contains(&info.label)) {
            continue;
        }
        let dir = graph_root
            .join(format!("type{}", info.label))
            .join(&info.service);
        if !dir.is_dir() {
            warnings.push(format!(
                "{}: service folder missing; service skipped",
                dir.display()
            ));
            continue;
        }
        let files = graph_files(&dir)?;
        let range = all_paths.len()..all_paths.len() + files.len();
        all_paths.extend(files);
        wanted.push((info, dir, range));
    }
    let mut parsed = parse_files(&all_paths).into_iter();
    let mut services = Vec::new();
    for (info, dir, range) in wanted {
        let mut graphs = Vec::with_capacity(range.len());
        for r in parsed.by_ref().take(range.len()) {
            match r {
                Ok(g) => graphs.push(g),
                Err(e) => warnings.push(format!("{e}; graph skipped")),
            }
        }
        if graphs.is_empty() {
            warnings.push(format!(
                "{}: no readable graph{{N}}.json; service skipped",
                dir.display()
            ));
            continue;
        }
        services.push(Service { info, graphs });
    }
    if services.is_empty() {
        return Err(DggError::NoData {
            path: root.to_path_buf(),
            msg: "no service with call graphs".into(),
        });
    }
    Ok(Dataset { services, warnings })
}

/// Loads every `graph*.json` of a folder of clusters, keyed by cluster: `root/type{K}/graph*.json`
/// (generated) or `root/type{K}/{service}/graph*.json` (real); `root` may also be a handler
/// output folder (its `real_call_graph_renamed/` is used). Unreadable files are skipped with a
/// warning.
pub fn load_clusters(
    root: &Path,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<u32, Vec<CallGraph>>> {
    let base = if root.join(REAL_DIR).is_dir() {
        root.join(REAL_DIR)
    } else {
        root.to_path_buf()
    };
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&base).map_err(|e| DggError::io(&base, e))? {
        let entry = entry.map_err(|e| DggError::io(&base, e))?;
        let name = entry.file_name();
        let Some(k) = name
            .to_str()
            .and_then(|n| n.strip_prefix("type"))
            .and_then(|k| k.parse().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let mut files = graph_files(&dir)?;
        let mut subdirs: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| DggError::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for sub in subdirs {
            files.extend(graph_files(&sub)?);
        }
        let mut graphs = Vec::with_capacity(files.len());
        for r in parse_files(&files) {
            match r {
                Ok(g) => graphs.push(g),
                Err(e) => warnings.push(format!("{e}; graph skipped")),
            }
        }
        out.insert(k, graphs);
    }
    if out.is_empty() {
        return Err(DggError::NoData {
            path: base,
            msg: "no type{K} folders".into(),
        });
    }
    Ok(out)
}
