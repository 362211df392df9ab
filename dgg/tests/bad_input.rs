//! Bad input gives a clear error naming the file and the line or field, and the valid rest is
//! still processed where that makes sense.

mod common;

use std::fs;
use std::path::PathBuf;

use fastlibra_dgg::generator::Generator;
use fastlibra_dgg::handler::{HandleOptions, handle, read_traces};
use fastlibra_dgg::{dataset, json};

const HEADER: &str = "timestamp,traceid,service,rpc_id,um,rpctype,dm,interface,rt";

fn good_trace(id: &str) -> String {
    format!(
        "1,{id},S_1,0,USER,http,MS_a,x,1\n2,{id},S_1,0.1,MS_a,rpc,MS_b,f1,1\n3,{id},S_1,0.1.1,MS_b,mc,MS_c,g,1\n"
    )
}

fn write(dir: &common::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn missing_column_names_the_file_and_column_and_other_files_still_count() {
    let dir = common::TempDir::new("badcol");
    let bad = write(
        &dir,
        "bad.csv",
        "traceid,service,um,rpctype,dm,interface\nT,S,USER,http,A,x\n",
    );
    let good = write(&dir, "good.csv", &format!("{HEADER}\n{}", good_trace("T1")));
    let (_, report) = read_traces(&[bad.clone(), good], &HandleOptions::default()).unwrap();
    assert_eq!(report.kept_traces, 1);
    assert_eq!(report.file_errors.len(), 1);
    let e = &report.file_errors[0];
    assert!(
        e.contains("bad.csv:1:") && e.contains("missing column rpc_id"),
        "{e}"
    );
    // Only bad files: an error.
    let err = read_traces(&[bad], &HandleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing column rpc_id"), "{err}");
}

#[test]
fn empty_file_is_an_error() {
    let dir = common::TempDir::new("empty");
    let empty = write(&dir, "empty.csv", "");
    let err = read_traces(&[empty], &HandleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.csv:1: empty file"), "{err}");
    let missing = dir.path().join("nope.csv");
    let err = read_traces(&[missing], &HandleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.csv"), "{err}");
}

#[test]
fn bad_rows_are_counted_with_their_line_and_their_traces_dropped() {
    let dir = common::TempDir::new("badrows");
    let text = format!(
        "{HEADER}\n{}1,T2,S_1,0,USER,http,MS_a,x,1\n2,T2,S_1,0.x,MS_a,rpc,MS_b,f1,1\n3,T3,S_1\n4,,S_1,0,USER,http,MS_a,x,1\n{}",
        good_trace("T1"),
        good_trace("T4")
    );
    let p = write(&dir, "rows.csv", &text);
    let (_, report) = read_traces(&[p], &HandleOptions::default()).unwrap();
    assert_eq!(report.rows, 10);
    assert_eq!(report.bad_rows.get("bad_rpc_id"), Some(&1));
    assert_eq!(report.bad_rows.get("missing_fields"), Some(&1));
    assert_eq!(report.bad_rows.get("empty_traceid"), Some(&1));
    assert_eq!(report.dropped.get("malformed_row"), Some(&1));
    assert_eq!(report.kept_traces, 2);
    let ex = report.row_examples.join("\n");
    assert!(ex.contains("rows.csv:6: field rpc_id: \"0.x\""), "{ex}");
    assert!(ex.contains("rows.csv:7:"), "{ex}");
}

#[test]
fn failed_checks_are_counted_by_reason() {
    let dir = common::TempDir::new("checks");
    let text = format!(
        "{HEADER}\n{}{}{}{}{}",
        good_trace("OK"),
        "1,NR,S_1,0.1,MS_a,rpc,MS_b,f,1\n",
        "1,UK,S_1,0,USER,http,UNKNOWN,x,1\n",
        "1,DU,S_1,0,USER,http,MS_a,x,1\n2,DU,S_1,0,USER,http,MS_a,x,1\n",
        "1,MP,S_1,0,USER,http,MS_a,x,1\n2,MP,S_1,0.2.1,MS_a,rpc,MS_b,f,1\n"
    );
    let p = write(&dir, "checks.csv", &text);
    let (_, report) = read_traces(&[p], &HandleOptions::default()).unwrap();
    assert_eq!(report.traces, 5);
    assert_eq!(report.kept_traces, 1);
    for reason in [
        "no_root",
        "unknown_endpoint",
        "duplicate_rpc_id",
        "missing_parent",
    ] {
        assert_eq!(
            report.dropped.get(reason),
            Some(&1),
            "{reason}: {:?}",
            report.dropped
        );
    }
}

#[test]
fn v2021_columns_are_accepted() {
    let dir = common::TempDir::new("v2021");
    let text = ",traceid,timestamp,rpcid,um,rpctype,dm,interface,rt\n0,T,1,0,USER,http,MS_a,x,1\n1,T,2,0.1,MS_a,rpc,MS_b,f,1\n";
    let p = write(&dir, "v2021.csv", text);
    let out = dir.path().join("out");
    let report = handle(&[p], &out, &HandleOptions::default()).unwrap();
    assert_eq!(report.kept_traces, 1);
    // Without a service column the entry microservice names the service.
    let info = fs::read_to_string(out.join("service_info.csv")).unwrap();
    assert!(info.contains("\nMS_a,1,1,3,0\n"), "{info}");
}

#[test]
fn malformed_and_truncated_json_name_the_file_and_line() {
    let dir = common::TempDir::new("json");
    let p = write(
        &dir,
        "graph1.json",
        "{\n  \"nodes\": [\n    {\"node\": \"USER\", \"label\": \"relay\"}\n  ],\n  \"edges\": [",
    );
    let err = json::read_graph(&p).unwrap_err().to_string();
    assert!(err.contains("graph1.json:5:"), "{err}");
    let p = write(
        &dir,
        "graph2.json",
        "{\"nodes\": [], \"edges\": [{\"source\": \"USER\"}], \"num\": \"x\"}",
    );
    let err = json::read_graph(&p).unwrap_err().to_string();
    assert!(err.contains("graph2.json:1:"), "{err}");
}

fn tiny_dataset(dir: &common::TempDir) -> PathBuf {
    let root = dir.path().join("data");
    let svc = root.join("real_call_graph_renamed/type0/S_1");
    fs::create_dir_all(&svc).unwrap();
    let g = r#"{"nodes": [{"node": "USER", "label": "relay"}, {"node": "MS_normal+2.1", "label": "normal"}],
        "edges": [{"source": "USER", "target": "MS_normal+2.1", "weight": 1, "rpctype": "http"}], "num": 3}"#;
    fs::write(svc.join("graph1.json"), g).unwrap();
    fs::write(svc.join("graph2.json"), "{\"nodes\": [").unwrap();
    fs::write(
        root.join("service_info.csv"),
        "service,top90_trace_num,top90_cg_num,ms_num,label\nS_1,3,2,2,0\nS_2,5,1,2,0\nS_3,x,1,2,0\n",
    )
    .unwrap();
    root
}

#[test]
fn missing_service_folder_and_broken_graph_are_skipped_with_warnings() {
    let dir = common::TempDir::new("dataset");
    let root = tiny_dataset(&dir);
    let ds = dataset::load_dataset(&root, None).unwrap();
    assert_eq!(ds.services.len(), 1);
    assert_eq!(ds.services[0].graphs.len(), 1);
    let w = ds.warnings.join("\n");
    assert!(
        w.contains("service_info.csv:4: skipped: top90_trace_num \"x\" is not a number"),
        "{w}"
    );
    assert!(w.contains("type0/S_2: service folder missing"), "{w}");
    assert!(w.contains("graph2.json:1:"), "{w}");
}

#[test]
fn missing_service_info_and_zero_n_are_errors() {
    let dir = common::TempDir::new("noinfo");
    let err = Generator::load(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("missing service_info.csv"), "{err}");
    let root = tiny_dataset(&dir);
    let g = Generator::load(&root, None).unwrap();
    let err = g.generate(0, 1).unwrap_err().to_string();
    assert!(err.contains("--n"), "{err}");
    let ok = g.generate(5, 1).unwrap();
    assert_eq!(ok[0].graphs[0].num, 5);
}
