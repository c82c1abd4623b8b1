//! Each rule natively vs as a component, per event, on the same batches.
//!
//! Run: `cargo xtask build && cargo bench --bench rules`

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rule_sensitive_untrusted_asn::SensitiveUntrustedAsn;
use trailguard_host::{Detector, NativeRule, Runtime, RuntimeOptions};

fn rules(c: &mut Criterion) {
    let events = common::events(1024 * 16);
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let path = common::component("modules", "rule-sensitive-untrusted-asn.wasm");
    let mut group = c.benchmark_group("rule/aws-sensitive-untrusted-asn");
    group.throughput(Throughput::Elements(1024));
    let mut native: Box<dyn Detector> =
        Box::new(NativeRule::<SensitiveUntrustedAsn>::new("").expect("native rule"));
    let mut component: Box<dyn Detector> = Box::new(
        runtime
            .load_rule(&path, |_| String::new())
            .expect("component"),
    );
    for (name, detector) in [("native", &mut native), ("component", &mut component)] {
        let mut batches = events.chunks(1024).cycle();
        group.bench_function(BenchmarkId::new(name, 1024), |b| {
            b.iter(|| {
                detector
                    .process(batches.next().unwrap_or_default())
                    .expect("process")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
