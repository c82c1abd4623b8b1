//! The built component and the same rule built natively agree, event for
//! event; snapshots taken in the component restore into a fresh one.

mod common;

use rule_sensitive_untrusted_asn::SensitiveUntrustedAsn;
use rule_unusual_asn::UnusualAsn;
use trailguard_asn::AsnDb;
use trailguard_gen::{HOUR_MS, StolenCiCredentials};
use trailguard_host::testing::without_ids;
use trailguard_host::{AlertDocument, Detector, NativeRule, Pipeline, Runtime, RuntimeOptions};
use trailguard_ingest::{IngestStats, NormalizedEvent, Normalizer, decode_bytes};

fn events(scenario: &StolenCiCredentials) -> Vec<NormalizedEvent> {
    let db = AsnDb::open(&common::fixture_mmdb()).expect("fixture database");
    let normalizer = Normalizer::new(Some(&db));
    let ndjson: String = scenario
        .calls()
        .iter()
        .map(|c| c.to_json().to_string() + "\n")
        .collect();
    let mut out = Vec::new();
    decode_bytes(
        "scenario",
        ndjson.as_bytes(),
        &normalizer,
        &mut IngestStats::default(),
        &mut |e| out.push(e),
    );
    out
}

fn component(runtime: &Runtime) -> Box<dyn Detector> {
    component_of(runtime, "rule-sensitive-untrusted-asn")
}

fn component_of(runtime: &Runtime, name: &str) -> Box<dyn Detector> {
    let path = common::modules_dir().join(format!("{name}.wasm"));
    Box::new(
        runtime
            .load_rule(&path, |_| String::new())
            .expect("component loads"),
    )
}

fn run(detector: Box<dyn Detector>, events: &[NormalizedEvent]) -> Vec<AlertDocument> {
    let mut pipeline = Pipeline::new(vec![detector], 15 * 60_000);
    let mut alerts = Vec::new();
    for batch in events.chunks(37) {
        alerts.extend(pipeline.push(batch.to_vec()));
    }
    alerts.extend(pipeline.finish());
    alerts
}

/// Several attacks and near-misses, one after the other, in one stream.
fn mixed_stream(base: StolenCiCredentials) -> Vec<NormalizedEvent> {
    let mut all = Vec::new();
    for (day, scenario) in [
        StolenCiCredentials { ..base.clone() },
        StolenCiCredentials {
            role: "ci-release".into(),
            trusted_calls: base.trusted_calls / 2,
            ..base.clone()
        },
        StolenCiCredentials {
            role: "ci-nightly".into(),
            attacker_actions: vec![
                "GetSecretValue".into(),
                "ListSecrets".into(),
                "GetObject".into(),
            ],
            ..base.clone()
        },
        StolenCiCredentials {
            role: "ci-infra".into(),
            attacker_ip: "185.220.101.4".into(),
            ..base.clone()
        },
    ]
    .into_iter()
    .enumerate()
    {
        let shifted = StolenCiCredentials {
            attack_ms: scenario.attack_ms + day as i64 * 30 * HOUR_MS,
            ..scenario
        };
        all.extend(events(&shifted));
    }
    all.sort_by_key(|e| e.timestamp_ms);
    all
}

#[test]
fn component_and_native_rule_b_agree() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let all = mixed_stream(StolenCiCredentials::long_history());
    let native = run(
        Box::new(NativeRule::<UnusualAsn>::new("").expect("native")),
        &all,
    );
    let wasm = run(component_of(&runtime, "rule-unusual-asn"), &all);
    assert!(
        native.len() >= 4,
        "every learned role alerts on its attacker: {native:#?}"
    );
    assert_eq!(without_ids(&wasm), without_ids(&native));
}

#[test]
fn component_and_native_rule_agree() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let all = mixed_stream(StolenCiCredentials::default());

    let native = run(
        Box::new(NativeRule::<SensitiveUntrustedAsn>::new("").expect("native")),
        &all,
    );
    let wasm = run(component(&runtime), &all);
    assert_eq!(
        native.len(),
        3,
        "three of the four scenarios alert: {native:#?}"
    );
    assert_eq!(without_ids(&wasm), without_ids(&native));
}

#[test]
fn component_snapshot_restores_into_a_fresh_instance() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let all = events(&StolenCiCredentials::default());
    let (first, second) = all.split_at(all.len() / 2);

    let mut before = component(&runtime);
    before.process(first).expect("process");
    let state = before.snapshot().expect("snapshot");
    assert!(!state.is_empty());

    let mut after = component(&runtime);
    after.restore(&state).expect("restore");
    after.process(second).expect("process");
    let alerts = after.advance(i64::MAX).expect("advance");
    assert_eq!(alerts.len(), 1);

    let mut fresh = component(&runtime);
    let err = fresh
        .restore(b"not a snapshot")
        .expect_err("garbage is refused");
    assert!(
        err.to_string().contains("aws-sensitive-untrusted-asn"),
        "{err}"
    );
    assert!(fresh.advance(i64::MAX).expect("still usable").is_empty());
}

/// Events from `identity_types`, one per type, in that order.
fn typed_events(identity_types: &[Option<&str>]) -> Vec<NormalizedEvent> {
    identity_types
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut e = NormalizedEvent::at(1_000 * i as i64);
            e.event_id = Some(format!("id-{i}").into());
            e.event_action = Some("ListBuckets".into());
            e.identity_type = kind.map(Into::into);
            e.outcome = trailguard_rule_sdk::Outcome::Success;
            e
        })
        .collect()
}

fn hostile(runtime: &Runtime, mode: &str) -> Result<trailguard_host::ComponentRule, String> {
    let path = common::root().join("target/test-components/hostile-rule.wasm");
    runtime
        .load_rule(&path, |_| {
            format!(r#"{{"mode":"{mode}","after_events":0}}"#)
        })
        .map_err(|e| e.to_string())
}

#[test]
fn only_events_passing_a_rules_filters_cross_into_it() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let mut echo = hostile(&runtime, "echo-root").expect("loads");
    assert_eq!(echo.filters().len(), 1);
    let events = typed_events(&[
        Some("IAMUser"),
        Some("Root"),
        None,
        Some("AssumedRole"),
        Some("Root"),
    ]);
    // The rule alerts once per event it receives: only the two root calls.
    let ids: Vec<String> = echo
        .process(&events)
        .expect("process")
        .iter()
        .map(|a| a.document.clone())
        .collect();
    assert_eq!(ids, [r#"{"event.id":"id-1"}"#, r#"{"event.id":"id-4"}"#]);
    // A batch with no root call is not sent at all.
    let none = typed_events(&[Some("IAMUser"), None]);
    assert!(echo.process(&none).expect("process").is_empty());
}

#[test]
fn a_rule_declaring_too_many_filters_is_refused_by_name() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let message = hostile(&runtime, "greedy-filters").expect_err("refused");
    assert!(message.contains("test-hostile"), "{message}");
    assert!(message.contains("filters"), "{message}");
    assert!(message.contains("limit of 16"), "{message}");
}

#[test]
fn root_activity_filtered_agrees_with_native() {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let kinds: Vec<Option<&str>> = (0..500)
        .map(|i| match i % 7 {
            0 => Some("Root"),
            1 => None,
            2 => Some("IAMUser"),
            _ => Some("AssumedRole"),
        })
        .collect();
    let all = typed_events(&kinds);
    let native = run(
        Box::new(NativeRule::<rule_root_activity::RootActivity>::new("").expect("native")),
        &all,
    );
    let wasm = run(component_of(&runtime, "rule-root-activity"), &all);
    assert_eq!(native.len(), 72, "one alert per root call");
    assert_eq!(without_ids(&wasm), without_ids(&native));
}
