//! Same input and seed → byte-identical output, for the handler and the generator; and the
//! generator's fidelity on the shared sample data.

mod common;

use fastlibra_dgg::generator::{Generator, write_output};
use fastlibra_dgg::handler::{HandleOptions, handle};
use fastlibra_dgg::{builtin, compare, dataset, synth};

/// Handler output of a synthetic trace of the built-in services.
fn handled(dir: &common::TempDir, name: &str) -> std::path::PathBuf {
    let csv = dir.path().join(format!("{name}.csv"));
    let services: Vec<_> = builtin::services()
        .into_iter()
        .map(|s| (s.name.to_string(), s.graphs))
        .collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    synth::write_trace_csv(&mut f, &services, 20_000, 7).unwrap();
    drop(f);
    let out = dir.path().join(name);
    let report = handle(&[csv], &out, &HandleOptions::default()).unwrap();
    assert_eq!(report.traces, report.kept_traces);
    assert_eq!(report.services, 4);
    out
}

#[test]
fn handler_and_generator_are_byte_identical_per_seed() {
    let dir = common::TempDir::new("repro");
    let (a, b) = (handled(&dir, "a"), handled(&dir, "b"));
    assert_eq!(common::tree(&a), common::tree(&b));
    let generate = |seed: u64, name: &str| {
        let out = dir.path().join(name);
        let g = Generator::load(&a, None).unwrap();
        write_output(&out, &g.generate(2_000, seed).unwrap()).unwrap();
        common::tree(&out)
    };
    let (x, y, z) = (generate(1, "g1"), generate(1, "g2"), generate(2, "g3"));
    assert!(!x.is_empty());
    assert_eq!(x, y);
    assert_ne!(x, z);
}

#[test]
fn generated_graphs_are_as_close_to_the_real_ones_as_the_references() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let reference = data.join("DGG_gen_cgs/20250109_150211");
    let g = Generator::load(&data, None).unwrap();
    let dir = common::TempDir::new("fidelity");
    write_output(dir.path(), &g.generate(10_000, 1).unwrap()).unwrap();
    let mut warnings = Vec::new();
    let real = dataset::load_clusters(&data, &mut warnings).unwrap();
    let ours = dataset::load_clusters(dir.path(), &mut warnings).unwrap();
    let theirs = dataset::load_clusters(&reference, &mut warnings).unwrap();
    let (ours, theirs) = (
        compare::compare_all(&real, &ours),
        compare::compare_all(&real, &theirs),
    );
    assert_eq!(ours.len(), 6);
    let mean =
        |c: &[compare::ClusterComparison]| c.iter().map(|c| c.score).sum::<f64>() / c.len() as f64;
    println!(
        "mean score: ours {:.4}, reference {:.4}",
        mean(&ours),
        mean(&theirs)
    );
    assert!(mean(&ours) <= mean(&theirs));
}
