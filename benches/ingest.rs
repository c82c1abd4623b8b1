//! Reading CloudTrail: the typed parse alone (the floor), parse + normalize,
//! parse + normalize + enrich; and the AS look-up by itself.
//!
//! Uses the full ASN database from `cargo xtask asn` when it is there (the
//! real look-up cost), else the small test fixture.
//!
//! Run: `cargo xtask asn && cargo bench --bench ingest`

mod common;

use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailguard_asn::AsnDb;
use trailguard_gen::{TrafficConfig, generate};
use trailguard_ingest::{IngestStats, Normalizer, decode_bytes, parse_only};

const EVENTS: u64 = 20_000;

/// Generated traffic (CI roles, humans, a service, attacks) as NDJSON.
fn traffic() -> Vec<u8> {
    let config = TrafficConfig {
        events: EVENTS,
        ..TrafficConfig::default()
    };
    let mut text = Vec::new();
    generate(&config, &mut |call| {
        text.extend(call.to_json().to_string().into_bytes());
        text.push(b'\n');
    });
    text
}

fn database() -> AsnDb {
    let full = common::root().join("target/asn/asn.mmdb");
    let path = if full.is_file() {
        full
    } else {
        eprintln!("target/asn/asn.mmdb missing (`cargo xtask asn`): using the test fixture");
        common::root().join("tests/data/asn/asn-fixture.mmdb")
    };
    AsnDb::open(&path).expect("ASN database")
}

fn decode(c: &mut Criterion) {
    let text = traffic();
    let db = database();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(20);
    group.bench_function("parse-only", |b| b.iter(|| parse_only(&text)));
    for (name, normalizer) in [
        ("parse-normalize", Normalizer::new(None)),
        ("parse-normalize-enrich", Normalizer::new(Some(&db))),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                decode_bytes(
                    "bench",
                    &text,
                    &normalizer,
                    &mut IngestStats::default(),
                    &mut |_| n += 1,
                );
                n
            })
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let db = database();
    let text = traffic();
    let mut ips: Vec<IpAddr> = Vec::new();
    decode_bytes(
        "bench",
        &text,
        &Normalizer::new(None),
        &mut IngestStats::default(),
        &mut |e| {
            if let Some(ip) = e.source_ip.as_deref().and_then(|s| s.parse().ok()) {
                ips.push(ip);
            }
        },
    );
    ips.truncate(1024);
    let mut group = c.benchmark_group("asn");
    group.throughput(Throughput::Elements(ips.len() as u64));
    group.bench_function("lookup", |b| {
        b.iter(|| {
            ips.iter()
                .filter(|&&ip| matches!(db.lookup(ip), Ok(Some(_))))
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, decode, lookup);
criterion_main!(benches);
