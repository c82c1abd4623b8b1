//! For rule authors: prove a built component and the same rule run natively
//! agree, on the same events, batches and watermarks.
//!
//! ```ignore
//! // modules/my-rule/tests/component.rs
//! use trailguard_host::testing::{assert_component_agrees, built_component};
//! let alerts = assert_component_agrees::<MyRule>(&built_component("rule-my-rule"), "", &events);
//! ```

use std::path::PathBuf;

use trailguard_ingest::{NormalizedEvent, RecordPaths, RecordValues};
use trailguard_rule_sdk::testing::TestEvent;
use trailguard_rule_sdk::{Field, Rule};

use crate::{AlertDocument, Detector, NativeRule, Pipeline, Runtime, RuntimeOptions};

/// `target/modules/<crate_name>.wasm` of the workspace (or of
/// `CARGO_TARGET_DIR`), where `cargo xtask build` writes components.
///
/// # Panics
///
/// When the component has not been built, with the command that builds it.
pub fn built_component(crate_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // Tests run with the crate's directory as working directory; the
            // workspace's target directory is above it.
            let here = std::env::current_dir().ok()?;
            here.ancestors()
                .map(|d| d.join("target"))
                .find(|t| t.join("modules").is_dir())
        });
    let path = target.map(|t| t.join("modules").join(format!("{crate_name}.wasm")));
    match path {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "component {crate_name}.wasm not built: run `cargo xtask build` (or `cargo xtask test`)"
        ),
    }
}

/// The normalized event a [`TestEvent`] stands for, with its record
/// fields.
pub fn normalized(e: &TestEvent) -> NormalizedEvent {
    let view = e.view();
    let mut event = NormalizedEvent::at(e.timestamp_ms);
    for field in Field::ALL {
        event.set(field, field.of(&view).map(Into::into));
    }
    event.source_as_number = e.source_as_number;
    event.outcome = e.outcome;
    if !e.record.is_empty() {
        event.record = RecordValues::new(
            RecordPaths::new(e.record.iter().map(|(p, _)| p.clone())),
            e.record.iter().map(|(_, v)| v.clone()).collect(),
        );
    }
    event
}

fn run(
    detector: Box<dyn Detector>,
    events: &[NormalizedEvent],
    batch: usize,
) -> Vec<AlertDocument> {
    let mut pipeline = Pipeline::new(vec![detector], 15 * 60_000);
    let mut alerts = Vec::new();
    for chunk in events.chunks(batch.max(1)) {
        alerts.extend(pipeline.push(chunk.to_vec()));
    }
    alerts.extend(pipeline.finish());
    if let Some(failure) = pipeline.stats().failures.first() {
        panic!("rule failed: {}", failure.message);
    }
    alerts
}

/// The alerts without their `kibana.alert.uuid`: an alert id binds the
/// component's digest, which the same rule run natively has none of, so a
/// component and its native twin agree on everything else.
pub fn without_ids(alerts: &[AlertDocument]) -> Vec<AlertDocument> {
    alerts
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.remove(crate::field::UUID);
            a
        })
        .collect()
}

/// Runs `events` (in batches of 97, to exercise batch boundaries) through
/// rule `R` natively and through the component at `component`, both with
/// `config`, and panics with both alert lists if they differ. Returns the
/// alerts.
pub fn assert_component_agrees<R: Rule + Send + 'static>(
    component: &std::path::Path,
    config: &str,
    events: &[NormalizedEvent],
) -> Vec<AlertDocument> {
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let wasm = runtime
        .load_rule(component, |_| config.to_owned())
        .unwrap_or_else(|e| panic!("{e}"));
    let native = NativeRule::<R>::new(config).unwrap_or_else(|e| panic!("{e}"));
    let native_alerts = run(Box::new(native), events, 97);
    let wasm_alerts = run(Box::new(wasm), events, 97);
    assert_eq!(
        without_ids(&wasm_alerts),
        without_ids(&native_alerts),
        "the component (left) and the native rule (right) disagree"
    );
    native_alerts
}
