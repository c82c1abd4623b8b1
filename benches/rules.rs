//! Each rule natively vs as a component, per event, on the same batches; and
//! the component with and without epoch interruption (the CPU-time limit),
//! to measure what the limit costs. Also what building one alert document
//! costs a rule: the SDK's `AlertBuilder` against a map of JSON values built
//! and then serialized (how it worked before; the same text).
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

/// A Sigma pack's alert: the event's normalized fields and the fields the
/// rule named.
fn alert_documents(c: &mut Criterion) {
    use serde::Serialize;
    use trailguard_rule_sdk::{AlertBuilder, Event, Outcome};

    #[derive(Serialize)]
    struct NamedField {
        name: &'static str,
        value: &'static str,
    }
    let named = || {
        [
            NamedField {
                name: "userIdentity.sessionContext.sessionIssuer.type",
                value: "Role",
            },
            NamedField {
                name: "userIdentity.type",
                value: "AssumedRole",
            },
        ]
    };
    let event = Event {
        event_id: Some("9e377824-391d-4c15-8000-000000000001"),
        event_action: Some("DescribeInstances"),
        event_provider: Some("ec2.amazonaws.com"),
        cloud_region: Some("us-east-1"),
        cloud_account_id: Some("123456789012"),
        user_name: Some("ci-role-0"),
        identity_type: Some("AssumedRole"),
        identity_arn: Some("arn:aws:sts::123456789012:assumed-role/ci-role-0/job-0"),
        source_address: Some("18.207.242.83"),
        source_ip: Some("18.207.242.83"),
        source_as_organization: Some("Amazon.com, Inc."),
        user_agent: Some("aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.ubuntu.22"),
        source_as_number: Some(14618),
        outcome: Outcome::Success,
        ..Event::at(1_775_001_600_000)
    };
    let builder = || {
        AlertBuilder::from_event(&event)
            .field("trailguard.sigma.fields", named())
            .build()
            .document
    };
    let json_map = || {
        let mut fields = serde_json::Map::new();
        for (name, value) in [
            ("event.id", event.event_id),
            ("event.action", event.event_action),
            ("event.provider", event.event_provider),
            ("cloud.region", event.cloud_region),
            ("cloud.account.id", event.cloud_account_id),
            ("user.name", event.user_name),
            ("aws.cloudtrail.user_identity.type", event.identity_type),
            ("aws.cloudtrail.user_identity.arn", event.identity_arn),
            ("source.address", event.source_address),
            ("source.ip", event.source_ip),
            ("source.as.organization.name", event.source_as_organization),
            ("user_agent.original", event.user_agent),
        ] {
            if let Some(value) = value {
                fields.insert(name.to_owned(), value.into());
            }
        }
        fields.insert("source.as.number".to_owned(), 14618.into());
        fields.insert("event.outcome".to_owned(), "success".into());
        fields.insert(
            "trailguard.sigma.fields".to_owned(),
            serde_json::to_value(named()).unwrap_or_default(),
        );
        serde_json::to_string(&fields).unwrap_or_default()
    };
    // Not a benchmark of two different things: both write this text.
    assert_eq!(builder(), json_map());
    let mut group = c.benchmark_group("alert-document");
    group.bench_function("alert-builder", |b| b.iter(builder));
    group.bench_function("json-map", |b| b.iter(json_map));
    group.finish();
}

criterion_group!(benches, rules, alert_documents);
criterion_main!(benches);
