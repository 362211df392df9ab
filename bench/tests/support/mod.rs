//! Helpers shared by the end-to-end tests: a scratch folder, running the binary, and a small
//! XML well-formedness check for the SVG plots (no XML crate needed for what plotters writes).

#![allow(dead_code)]

pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The short real-runtime runs' flags: `backend` (`cpu` or `cuda`), the built-in DGG
/// services with one tenant each, 2 s of arrivals at 2/s, two shards, 8 MiB HBM, 4 MiB host.
pub fn small_real_run(backend: &str) -> Vec<&str> {
    vec![
        "--backend",
        backend,
        "--workload",
        "dgg",
        "--tenants",
        "1",
        "--rate",
        "2",
        "--duration",
        "2",
        "--cores",
        "2",
        "--hbm",
        "8M",
        "--host",
        "4M",
    ]
}

/// A fresh, empty folder for one test (under Cargo's per-target temporary folder).
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// Runs `fastlibra bench ARGS` in `dir`.
pub fn bench_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastlibra"))
        .current_dir(dir)
        .arg("bench")
        .args(args)
        .output()
        .expect("run fastlibra")
}

/// Reads a file, naming it on failure.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks that `text` is one well-formed XML element named `svg` (after an optional XML
/// declaration): every tag closed in order, attribute values quoted, nothing after the root.
/// Returns the names of every element, in document order.
pub fn check_svg(text: &str) -> Result<Vec<String>, String> {
    let mut rest = text.trim_start();
    if rest.starts_with("<?xml") {
        let end = rest.find("?>").ok_or("unterminated XML declaration")?;
        rest = rest[end + 2..].trim_start();
    }
    let mut stack: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut closed_root = false;
    while let Some(open) = rest.find('<') {
        if closed_root && !rest[..open].trim().is_empty() {
            return Err("text after the root element".into());
        }
        rest = &rest[open..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").ok_or("unterminated comment")?;
            rest = &rest[end + 3..];
            continue;
        }
        let end = tag_end(rest).ok_or("unterminated tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack
                .pop()
                .ok_or_else(|| format!("</{name}> closes nothing"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
            closed_root = stack.is_empty();
            continue;
        }
        if closed_root {
            return Err("a second root element".into());
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body
            .split_whitespace()
            .next()
            .ok_or("empty tag")?
            .to_string();
        if names.is_empty() && name != "svg" {
            return Err(format!("root is <{name}>, not <svg>"));
        }
        check_attributes(&body[name.len()..])?;
        names.push(name.clone());
        if self_closing {
            closed_root = stack.is_empty();
        } else {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed <{}>", stack.join("> <")));
    }
    if names.is_empty() {
        return Err("no element".into());
    }
    Ok(names)
}

/// Index of the `>` ending the tag at the start of `s`, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// `name="value"` pairs only.
fn check_attributes(mut s: &str) -> Result<(), String> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or_else(|| format!("attribute without value: {s}"))?;
        let value = s[eq + 1..].trim_start();
        let q = value.chars().next().filter(|c| *c == '"' || *c == '\'');
        let q = q.ok_or_else(|| format!("unquoted attribute value: {s}"))?;
        let close = value[1..].find(q).ok_or("unterminated attribute value")?;
        s = &value[close + 2..];
    }
}

#[test]
fn the_checker_rejects_broken_xml() {
    assert!(check_svg("<svg a=\"1\"><g><text>x</text></g></svg>").is_ok());
    assert!(check_svg("<?xml version=\"1.0\"?>\n<svg><rect/></svg>\n").is_ok());
    assert!(check_svg("<svg><g></svg>").is_err());
    assert!(check_svg("<svg><g></g>").is_err());
    assert!(check_svg("<html></html>").is_err());
    assert!(check_svg("<svg a=1></svg>").is_err());
    assert!(check_svg("<svg></svg><svg></svg>").is_err());
}
