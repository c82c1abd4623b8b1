//! Each rule natively vs as a component, per event, on the same batches; and
//! the component with and without epoch interruption (the CPU-time limit),
//! to measure what the limit costs.
//!
//! Run: `cargo xtask build && cargo bench --bench rules`

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rule_sensitive_untrusted_asn::SensitiveUntrustedAsn;
use rule_unusual_asn::UnusualAsn;
use trailguard_host::{Detector, NativeRule, Runtime, RuntimeOptions};

fn rules(c: &mut Criterion) {
    let events = common::events(1024 * 16);
    let limited = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let unlimited = Runtime::new(RuntimeOptions {
        epoch_interruption: false,
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    type Make = fn() -> Box<dyn Detector>;
    let cases: [(&str, &str, Make); 2] = [
        (
            "aws-sensitive-untrusted-asn",
            "rule-sensitive-untrusted-asn",
            || Box::new(NativeRule::<SensitiveUntrustedAsn>::new("").expect("native rule")),
        ),
        ("aws-unusual-asn", "rule-unusual-asn", || {
            Box::new(NativeRule::<UnusualAsn>::new("").expect("native rule"))
        }),
    ];
    for (id, file, native) in cases {
        let path = common::component("modules", &format!("{file}.wasm"));
        let mut group = c.benchmark_group(format!("rule/{id}"));
        group.throughput(Throughput::Elements(1024));
        let variants: [(&str, Box<dyn Detector>); 3] = [
            ("native", native()),
            (
                "component",
                Box::new(
                    limited
                        .load_rule(&path, |_| String::new())
                        .expect("component"),
                ),
            ),
            (
                "component-no-epoch",
                Box::new(
                    unlimited
                        .load_rule(&path, |_| String::new())
                        .expect("component"),
                ),
            ),
        ];
        for (name, mut detector) in variants {
            let mut batches = events.chunks(1024).cycle();
            let mut watermark = 0;
            group.bench_function(BenchmarkId::new(name, 1024), |b| {
                b.iter(|| {
                    let batch = batches.next().unwrap_or_default();
                    let alerts = detector.process(batch).expect("process");
                    // Keep time moving as the pipeline would, so windowed
                    // rules do their per-batch work too.
                    watermark = batch
                        .iter()
                        .map(|e| e.timestamp_ms)
                        .max()
                        .unwrap_or(watermark)
                        .max(watermark);
                    (
                        alerts,
                        detector.advance(watermark - 15 * 60_000).expect("advance"),
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, rules);
criterion_main!(benches);
