//! `fastlibra dgg …`: the DGG subcommands (handled by the `fastlibra-dgg` crate).
//!
//! - `handle`: trace CSV files → `service_info.csv` + `real_call_graph_renamed/…`
//! - `generate`: a handler output folder → `type{K}/graph{N}.json` (+ dependency graphs)
//! - `compare`: real vs generated call graphs, per cluster
//! - `synth`: a synthetic trace CSV from call graphs (for timing the handler)

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use fastlibra_dgg::{compare, dataset, generator, handler, synth};

/// Arguments of `fastlibra dgg`.
#[derive(Args, Debug)]
pub struct DggArgs {
    #[command(subcommand)]
    command: DggCommand,
}

#[derive(Subcommand, Debug)]
enum DggCommand {
    /// Build, filter, label, cluster and rename call graphs from Alibaba call-graph CSV files.
    Handle(HandleArgs),
    /// Generate call graphs from a handler output folder.
    Generate(GenerateArgs),
    /// Compare generated call graphs with real ones, per cluster.
    Compare(CompareArgs),
    /// Write a synthetic trace CSV (built-in services or a folder of call graphs).
    Synth(SynthArgs),
}

#[derive(Args, Debug)]
struct HandleArgs {
    /// Trace CSV files (v2021 or v2022 columns), read in the order given.
    #[arg(long = "trace", required = true, num_args = 1..)]
    traces: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// A trace is finished after this many rows without one of its rows.
    #[arg(long, default_value_t = 1_000_000)]
    window: u64,
    /// Number of clusters (default: best silhouette in 2..=20).
    #[arg(long)]
    clusters: Option<usize>,
    /// Seed of k-means.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Handler output folder (`service_info.csv`, `real_call_graph_renamed/`).
    #[arg(long)]
    input: PathBuf,
    /// Number of call graphs to draw, over all selected clusters.
    #[arg(long)]
    n: u64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Clusters to use (default: all), e.g. `0,1,5`.
    #[arg(long, value_delimiter = ',')]
    types: Option<Vec<u32>>,
    /// Where the 90 % rule applies: `service` (default, as the handler cut the real graphs),
    /// `cluster` (the reference), or `none`.
    #[arg(long, default_value = "service")]
    filter: String,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// Real call graphs (a handler output folder or a folder of `type{K}/{service}/`).
    #[arg(long)]
    real: PathBuf,
    /// Generated call graphs (a folder of `type{K}/graph{N}.json`).
    #[arg(long)]
    generated: PathBuf,
    /// Also write the comparison as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Number of data rows (at least).
    #[arg(long)]
    rows: u64,
    /// Output CSV file.
    #[arg(long)]
    out: PathBuf,
    /// Handler output folder to draw call graphs from (default: the built-in services).
    #[arg(long)]
    graphs: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs a `dgg` subcommand.
pub fn run(args: DggArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.command {
        DggCommand::Handle(a) => run_handle(a),
        DggCommand::Generate(a) => run_generate(a),
        DggCommand::Compare(a) => run_compare(a),
        DggCommand::Synth(a) => run_synth(a),
    }
}

fn print_warnings(warnings: &[String]) {
    const SHOWN: usize = 10;
    for w in warnings.iter().take(SHOWN) {
        eprintln!("warning: {w}");
    }
    if warnings.len() > SHOWN {
        eprintln!("warning: … and {} more", warnings.len() - SHOWN);
    }
}

fn run_handle(a: HandleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let opts = handler::HandleOptions {
        window_rows: a.window,
        clusters: a.clusters,
        seed: a.seed,
    };
    let start = Instant::now();
    let report = handler::handle(&a.traces, &a.out, &opts)?;
    let secs = start.elapsed().as_secs_f64();
    print!("{}", report.summary());
    println!(
        "{:.2} s, {:.0} rows/s",
        secs,
        report.rows as f64 / secs.max(1e-9)
    );
    if !report.file_errors.is_empty() {
        return Err(format!(
            "{} trace file(s) could not be used",
            report.file_errors.len()
        )
        .into());
    }
    Ok(())
}

fn run_generate(a: GenerateArgs) -> Result<(), Box<dyn std::error::Error>> {
    if a.n == 0 {
        return Err("invalid argument --n: must be at least 1".into());
    }
    let start = Instant::now();
    let g = generator::Generator::load(&a.input, a.types.as_deref())?;
    print_warnings(&g.warnings);
    let built = start.elapsed().as_secs_f64();
    let filter = match a.filter.as_str() {
        "cluster" => generator::Filter::PerCluster,
        "service" => generator::Filter::PerService,
        "none" => generator::Filter::None,
        other => {
            return Err(
                format!("invalid argument --filter: {other:?} (cluster, service or none)").into(),
            );
        }
    };
    let clusters = g.generate_filtered(a.n, a.seed, filter)?;
    let generated = start.elapsed().as_secs_f64();
    generator::write_output(&a.out, &clusters)?;
    for c in &clusters {
        println!(
            "type{}: drew {}, distinct {}, kept {} (90 %)",
            c.cluster,
            c.drawn,
            c.distinct,
            c.graphs.len()
        );
    }
    println!("model {built:.2} s, generation {:.2} s", generated - built);
    Ok(())
}

fn run_compare(a: CompareArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut warnings = Vec::new();
    let real = dataset::load_clusters(&a.real, &mut warnings)?;
    let generated = dataset::load_clusters(&a.generated, &mut warnings)?;
    print_warnings(&warnings);
    let cmp = compare::compare_all(&real, &generated);
    if cmp.is_empty() {
        return Err("no cluster present on both sides".into());
    }
    print!("{}", compare::render_table(&cmp));
    let mean = cmp.iter().map(|c| c.score).sum::<f64>() / cmp.len() as f64;
    println!("mean score over {} clusters: {mean:.4}", cmp.len());
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&cmp)?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn run_synth(a: SynthArgs) -> Result<(), Box<dyn std::error::Error>> {
    let services: Vec<(String, Vec<fastlibra_dgg::CallGraph>)> = match &a.graphs {
        Some(dir) => {
            let ds = dataset::load_dataset(dir, None)?;
            print_warnings(&ds.warnings);
            ds.services
                .into_iter()
                .map(|s| (s.info.service, s.graphs))
                .collect()
        }
        None => fastlibra_dgg::builtin::services()
            .into_iter()
            .map(|s| (s.name.to_string(), s.graphs))
            .collect(),
    };
    let file = std::fs::File::create(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let rows = synth::write_trace_csv(&mut w, &services, a.rows, a.seed)?;
    std::io::Write::flush(&mut w)?;
    println!("{rows} rows written to {}", a.out.display());
    Ok(())
}
