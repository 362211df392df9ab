//! Generating 10,000 call graphs from the shared sample data, model building included
//! (target: ≤ 2 s). Skipped with a message when the data is absent.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use fastlibra_dgg::generator::Generator;

fn bench(c: &mut Criterion) {
    let data = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/dgg-sample-data"
    ));
    if !data.join("service_info.csv").is_file() {
        println!("skipped: {} is absent", data.display());
        return;
    }
    let mut group = c.benchmark_group("dgg_generate");
    group.sample_size(10);
    group.bench_function("load_build_generate_10000", |b| {
        b.iter(|| {
            let g = Generator::load(data, None).expect("load");
            g.generate(10_000, 1).expect("generate")
        })
    });
    let g = Generator::load(data, None).expect("load");
    group.bench_function("generate_10000_prebuilt", |b| {
        b.iter(|| g.generate(10_000, 1).expect("generate"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
