//! What crossing the component boundary costs per event, by encoding and
//! batch size (docs/event-encoding.md). Each measurement includes the
//! host's encoding work and the guest touching every string field.
//!
//! Run: `cargo xtask build && cargo bench --bench boundary`

mod common;

use std::collections::HashMap;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::Outcome;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({ path: "benches/guests/encoding-probe/wit", world: "encoding-probe" });
}

use bindings::EncodingProbe;
use bindings::exports::trailguard::encoding_probe::probe::{EventRefs, EventStrings};

fn outcome(o: Outcome) -> u8 {
    o as u8
}

fn strings(e: &NormalizedEvent) -> [Option<&str>; 14] {
    [
        e.event_id.as_deref(),
        e.event_action.as_deref(),
        e.event_provider.as_deref(),
        e.cloud_region.as_deref(),
        e.cloud_account_id.as_deref(),
        e.user_name.as_deref(),
        e.identity_type.as_deref(),
        e.identity_arn.as_deref(),
        e.source_address.as_deref(),
        e.source_ip.as_deref(),
        e.source_as_organization.as_deref(),
        e.user_agent.as_deref(),
        e.error_code.as_deref(),
        e.user_changes_name.as_deref(),
    ]
}

fn refs(e: &NormalizedEvent, r: [u32; 14]) -> EventRefs {
    EventRefs {
        timestamp_ms: e.timestamp_ms,
        event_id: r[0],
        event_action: r[1],
        event_provider: r[2],
        cloud_region: r[3],
        cloud_account_id: r[4],
        user_name: r[5],
        identity_type: r[6],
        identity_arn: r[7],
        source_address: r[8],
        source_ip: r[9],
        source_as_organization: r[10],
        user_agent: r[11],
        error_code: r[12],
        user_changes_name: r[13],
        source_as_number: e.source_as_number.unwrap_or(0),
        outcome: outcome(e.outcome),
    }
}

/// A: one record of strings per event.
fn encode_records(events: &[NormalizedEvent]) -> Vec<EventStrings> {
    events
        .iter()
        .map(|e| {
            let s = strings(e).map(|s| s.map(str::to_owned));
            let [
                event_id,
                event_action,
                event_provider,
                cloud_region,
                cloud_account_id,
                user_name,
                identity_type,
                identity_arn,
                source_address,
                source_ip,
                source_as_organization,
                user_agent,
                error_code,
                user_changes_name,
            ] = s;
            EventStrings {
                timestamp_ms: e.timestamp_ms,
                event_id,
                event_action,
                event_provider,
                cloud_region,
                cloud_account_id,
                user_name,
                identity_type,
                identity_arn,
                source_address,
                source_ip,
                source_as_organization,
                user_agent,
                error_code,
                user_changes_name,
                source_as_number: e.source_as_number.unwrap_or(0),
                outcome: outcome(e.outcome),
            }
        })
        .collect()
}

/// B: distinct strings of the batch in a list, events refer by index.
fn encode_table(events: &[NormalizedEvent]) -> (Vec<String>, Vec<EventRefs>) {
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut table = vec![String::new()];
    let refs = events
        .iter()
        .map(|e| {
            let r = strings(e).map(|s| match s {
                None => 0,
                Some(s) => *index.entry(s).or_insert_with(|| {
                    table.push(s.to_owned());
                    (table.len() - 1) as u32
                }),
            });
            refs(e, r)
        })
        .collect();
    (table, refs)
}

/// C: one text with offsets, no deduplication (the shipped encoding).
fn encode_blob(events: &[NormalizedEvent]) -> (String, Vec<u32>, Vec<EventRefs>) {
    let mut text = String::new();
    let mut offsets = vec![0u32, 0];
    let refs = events
        .iter()
        .map(|e| {
            let r = strings(e).map(|s| match s {
                None => 0,
                Some(s) => {
                    text.push_str(s);
                    offsets.push(text.len() as u32);
                    (offsets.len() - 2) as u32
                }
            });
            refs(e, r)
        })
        .collect();
    (text, offsets, refs)
}

/// D: as C, with the events as columns of scalars.
struct Columns {
    text: String,
    offsets: Vec<u32>,
    timestamps: Vec<i64>,
    refs: Vec<u32>,
    as_numbers: Vec<u32>,
    outcomes: Vec<u8>,
}

fn encode_columns(events: &[NormalizedEvent]) -> Columns {
    let mut c = Columns {
        text: String::new(),
        offsets: vec![0, 0],
        timestamps: Vec::with_capacity(events.len()),
        refs: Vec::with_capacity(events.len() * 14),
        as_numbers: Vec::with_capacity(events.len()),
        outcomes: Vec::with_capacity(events.len()),
    };
    for e in events {
        c.timestamps.push(e.timestamp_ms);
        c.as_numbers.push(e.source_as_number.unwrap_or(0));
        c.outcomes.push(outcome(e.outcome));
        for s in strings(e) {
            c.refs.push(match s {
                None => 0,
                Some(s) => {
                    c.text.push_str(s);
                    c.offsets.push(c.text.len() as u32);
                    (c.offsets.len() - 2) as u32
                }
            });
        }
    }
    c
}

fn boundary(c: &mut Criterion) {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).expect("engine");
    let component = Component::from_file(
        &engine,
        common::component("bench-components", "encoding-probe.wasm"),
    )
    .expect("probe component");
    let mut store = Store::new(&engine, ());
    let probe = EncodingProbe::instantiate(&mut store, &component, &Linker::new(&engine))
        .expect("instantiate");
    let api = probe.trailguard_encoding_probe_probe();
    let all = common::events(1024);

    // The three encodings must agree before they are compared.
    let expected: u64 = all
        .iter()
        .map(|e| {
            strings(e)
                .iter()
                .flatten()
                .map(|s| s.len() as u64)
                .sum::<u64>()
        })
        .sum();
    let (text, offsets, r) = encode_blob(&all);
    assert_eq!(
        api.call_blob(&mut store, &text, &offsets, &r)
            .expect("blob"),
        expected
    );
    let (t, r) = encode_table(&all);
    assert_eq!(api.call_table(&mut store, &t, &r).expect("table"), expected);
    let d = encode_columns(&all);
    let columns = api
        .call_columns(
            &mut store,
            &d.text,
            &d.offsets,
            &d.timestamps,
            &d.refs,
            &d.as_numbers,
            &d.outcomes,
        )
        .expect("columns");
    assert_eq!(columns, expected);
    assert_eq!(
        api.call_records(&mut store, &encode_records(&all))
            .expect("records"),
        expected
    );

    let mut group = c.benchmark_group("boundary");
    for size in [64usize, 256, 1024] {
        let batch = &all[..size];
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(
            BenchmarkId::new("A-records-of-strings", size),
            batch,
            |b, batch| {
                b.iter(|| {
                    api.call_records(&mut store, &encode_records(batch))
                        .expect("call")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("B-string-list-dedup", size),
            batch,
            |b, batch| {
                b.iter(|| {
                    let (t, r) = encode_table(batch);
                    api.call_table(&mut store, &t, &r).expect("call")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("C-text-and-offsets", size),
            batch,
            |b, batch| {
                b.iter(|| {
                    let (text, offsets, r) = encode_blob(batch);
                    api.call_blob(&mut store, &text, &offsets, &r)
                        .expect("call")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("D-text-offsets-columns", size),
            batch,
            |b, batch| {
                b.iter(|| {
                    let d = encode_columns(batch);
                    api.call_columns(
                        &mut store,
                        &d.text,
                        &d.offsets,
                        &d.timestamps,
                        &d.refs,
                        &d.as_numbers,
                        &d.outcomes,
                    )
                    .expect("call")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("C-host-encoding-only", size),
            batch,
            |b, batch| b.iter(|| encode_blob(batch)),
        );
    }
    group.finish();
}

criterion_group!(benches, boundary);
criterion_main!(benches);
