//! [`Engine`]: the whole detection path behind one value, for programs that
//! embed trailguard (the CLI and the Kafka worker are two of them).
//!
//! Events go in (normalized, or raw CloudTrail bytes in any delivery shape),
//! are deduplicated by eventID, batched, fed to every rule in event time,
//! and alerts come out; the state (every rule's snapshot, the watermark,
//! the dedup set, the open suppression groups) saves and loads as one
//! [`EngineState`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use trailguard_asn::AsnDb;
use trailguard_ingest::{Deduplicator, IngestStats, NormalizedEvent, Normalizer, decode_bytes};

use crate::{
    AlertDocument, CompiledRule, Detector, HostError, Pipeline, PipelineState, PipelineStats,
    RecoveryPolicy, RuleInfo, Runtime, Suppression,
};

/// How an [`Engine`] runs. Start from [`EngineOptions::default`] and set
/// fields; new fields may be added in minor versions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Rule id → the rule's JSON configuration (absent: its defaults).
    pub rule_configs: BTreeMap<String, String>,
    /// Rule id → how its alerts are suppressed.
    pub suppression: BTreeMap<String, Suppression>,
    /// How failing rules are recovered.
    pub recovery: RecoveryPolicy,
    /// How late (event time) an event may arrive after newer ones and still
    /// count for its evaluations. Default 15 minutes.
    pub allowed_lateness_ms: i64,
    /// Events per batch handed to the rules. Default 1024.
    pub batch_size: usize,
    /// Drop an event whose eventID was seen within this much event time;
    /// 0 keeps duplicates. Default 60 minutes.
    pub dedup_window_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            rule_configs: BTreeMap::new(),
            suppression: BTreeMap::new(),
            recovery: RecoveryPolicy::default(),
            allowed_lateness_ms: 15 * 60_000,
            batch_size: 1024,
            dedup_window_ms: 60 * 60_000,
        }
    }
}

/// A rule left out because its constructor failed (trapped, ran out of a
/// limit); the others run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadFailure {
    /// Rule id.
    pub rule: String,
    /// Its component file.
    pub file: PathBuf,
    /// What happened.
    pub message: String,
}

/// Everything an [`Engine`] needs to resume exactly where it was. Serialize
/// it with any serde format (the CLI and the Kafka worker use postcard).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineState {
    /// Every rule's snapshot, the watermark, counters, suppression groups.
    pub pipeline: PipelineState,
    /// The eventIDs seen within the deduplication window.
    pub dedup: Option<Deduplicator>,
    /// Events dropped as duplicates so far.
    pub duplicates: u64,
}

/// Rules running over a stream of events.
///
/// ```no_run
/// use trailguard_host::{Engine, EngineOptions, Runtime, RuntimeOptions};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(RuntimeOptions::default())?;
/// let rule = runtime.compile_rule("target/modules/rule-unusual-asn.wasm".as_ref())?;
/// let mut engine = Engine::new(&runtime, &[rule], EngineOptions::default())?;
/// let mut stats = Default::default();
/// let mut alerts = engine.push_cloudtrail("delivery.json", &std::fs::read("delivery.json")?, &mut stats);
/// alerts.extend(engine.finish());
/// # Ok(()) }
/// ```
pub struct Engine {
    pipeline: Pipeline,
    dedup: Option<Deduplicator>,
    duplicates: u64,
    batch: Vec<NormalizedEvent>,
    batch_size: usize,
    asn: Option<Arc<AsnDb>>,
    rule_configs: BTreeMap<String, String>,
    failed_at_load: Vec<LoadFailure>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pipeline", &self.pipeline)
            .field("batched", &self.batch.len())
            .finish()
    }
}

impl Engine {
    /// A detector of every rule, fresh. A rule whose constructor fails is
    /// left out and listed in [`Engine::failed_at_load`]; a rule refusing
    /// its configuration, two rules with one id, or a configuration or
    /// suppression for an id no rule has are errors.
    pub fn new(
        runtime: &Runtime,
        rules: &[CompiledRule],
        options: EngineOptions,
    ) -> Result<Engine, HostError> {
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        let mut failed_at_load = Vec::new();
        let config_of = |info: &RuleInfo| {
            options
                .rule_configs
                .get(&info.id)
                .cloned()
                .unwrap_or_default()
        };
        for rule in rules {
            let detector = match runtime.instantiate(rule, config_of) {
                Ok(d) => d,
                Err(HostError::Rule {
                    rule: id,
                    call,
                    message,
                }) => {
                    failed_at_load.push(LoadFailure {
                        rule: id,
                        file: rule.path().to_owned(),
                        message: format!("{call}: {message}"),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(first) = detectors.iter().find(|d| d.info().id == detector.info().id) {
                return Err(HostError::Load {
                    path: rule.path().to_owned(),
                    message: format!(
                        "a second rule with id {} (a rule of that id is already loaded: {}); load each rule once",
                        detector.info().id,
                        first.info().name
                    ),
                });
            }
            detectors.push(Box::new(detector));
        }
        let known = |id: &str| {
            detectors.iter().any(|d| d.info().id == id)
                || failed_at_load.iter().any(|f| f.rule == id)
        };
        let loaded = || {
            detectors
                .iter()
                .map(|d| d.info().id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for id in options
            .rule_configs
            .keys()
            .chain(options.suppression.keys())
        {
            if !known(id) {
                return Err(HostError::Config {
                    rule: id.clone(),
                    message: format!("no loaded rule has this id (loaded: {})", loaded()),
                });
            }
        }
        let mut pipeline =
            Pipeline::new(detectors, options.allowed_lateness_ms).with_policy(options.recovery);
        for (id, suppression) in options.suppression {
            pipeline = pipeline.with_suppression(&id, suppression);
        }
        Ok(Engine {
            pipeline,
            dedup: (options.dedup_window_ms > 0)
                .then(|| Deduplicator::new(options.dedup_window_ms)),
            duplicates: 0,
            batch: Vec::new(),
            batch_size: options.batch_size.max(1),
            asn: None,
            rule_configs: options.rule_configs,
            failed_at_load,
        })
    }

    /// Enriches raw CloudTrail given to [`Engine::push_cloudtrail`] with the
    /// source AS from `asn`.
    pub fn with_asn(mut self, asn: Arc<AsnDb>) -> Engine {
        self.asn = Some(asn);
        self
    }

    /// Takes one event; returns the alerts it completed (when it fills a
    /// batch). A duplicate (same eventID within the window) is dropped and
    /// counted.
    pub fn push(&mut self, event: NormalizedEvent) -> Vec<AlertDocument> {
        if self.dedup.as_mut().is_some_and(|d| d.is_duplicate(&event)) {
            self.duplicates += 1;
            return Vec::new();
        }
        self.batch.push(event);
        if self.batch.len() >= self.batch_size {
            self.flush()
        } else {
            Vec::new()
        }
    }

    /// Takes events in order; returns the alerts of the batches they filled.
    pub fn push_all(
        &mut self,
        events: impl IntoIterator<Item = NormalizedEvent>,
    ) -> Vec<AlertDocument> {
        let mut alerts = Vec::new();
        for event in events {
            alerts.extend(self.push(event));
        }
        alerts
    }

    /// Decodes one CloudTrail input (`name` for messages: a file name, a
    /// Kafka position) in any delivery shape, plain or gzip, and takes its
    /// events. Rejected records are counted in `stats` with their position.
    pub fn push_cloudtrail(
        &mut self,
        name: &str,
        bytes: &[u8],
        stats: &mut IngestStats,
    ) -> Vec<AlertDocument> {
        let normalizer = Normalizer::new(self.asn.as_deref());
        let mut events = Vec::new();
        decode_bytes(name, bytes, &normalizer, stats, &mut |e| events.push(e));
        self.push_all(events)
    }

    /// Hands the events batched so far to the rules.
    pub fn flush(&mut self) -> Vec<AlertDocument> {
        if self.batch.is_empty() {
            return Vec::new();
        }
        self.pipeline.push(std::mem::take(&mut self.batch))
    }

    /// Event time has reached `timestamp_ms` elsewhere (see
    /// [`crate::Watermark::note_progress`]): flushes, then announces the
    /// watermark if it moved.
    pub fn note_progress(&mut self, timestamp_ms: i64) -> Vec<AlertDocument> {
        let mut alerts = self.flush();
        alerts.extend(self.pipeline.note_progress(timestamp_ms));
        alerts
    }

    /// The input has ended: flushes and runs every remaining evaluation.
    pub fn finish(&mut self) -> Vec<AlertDocument> {
        let mut alerts = self.flush();
        alerts.extend(self.pipeline.finish());
        alerts
    }

    /// Flushes (the alerts are returned) and captures the state. A rule
    /// whose snapshot fails is quarantined and saved as such.
    pub fn checkpoint(&mut self) -> (Vec<AlertDocument>, EngineState) {
        let alerts = self.flush();
        let state = EngineState {
            pipeline: self.pipeline.save_state(),
            dedup: self.dedup.clone(),
            duplicates: self.duplicates,
        };
        (alerts, state)
    }

    /// Resumes from a state saved by [`Engine::checkpoint`] (of an engine
    /// with the same rules; a rule the state does not know starts fresh).
    /// Returns warnings; a rule refusing its snapshot is an error.
    pub fn load_state(&mut self, state: EngineState) -> Result<Vec<String>, HostError> {
        self.batch.clear();
        let warnings = self.pipeline.load_state(state.pipeline)?;
        if state.dedup.is_some() || self.dedup.is_none() {
            self.dedup = state.dedup;
        }
        self.duplicates = state.duplicates;
        Ok(warnings)
    }

    /// Replaces the running rule of the same id with a new build of it,
    /// carrying its state over (between two batches: no event is lost). If
    /// the new one refuses the state, the old one keeps running and the
    /// error says why. Returns the rule id.
    pub fn reload(&mut self, runtime: &Runtime, rule: &CompiledRule) -> Result<String, HostError> {
        let configs = &self.rule_configs;
        let detector = runtime.instantiate(rule, |info| {
            configs.get(&info.id).cloned().unwrap_or_default()
        })?;
        let id = detector.info().id.clone();
        self.pipeline.replace_rule(Box::new(detector))?;
        Ok(id)
    }

    /// The running rules, in the order they are fed.
    pub fn rules(&self) -> Vec<&RuleInfo> {
        self.pipeline.rules()
    }

    /// Rules left out at load.
    pub fn failed_at_load(&self) -> &[LoadFailure] {
        &self.failed_at_load
    }

    /// Events, late events, alerts per rule, failures.
    pub fn stats(&self) -> &PipelineStats {
        self.pipeline.stats()
    }

    /// Per suppressed rule, the alerts that lacked one of its `group_by`
    /// fields (a misspelt field name groups everything together).
    pub fn suppression_missing_fields(&self) -> &BTreeMap<String, u64> {
        self.pipeline.suppression_missing_fields()
    }

    /// Events dropped as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The newest event time seen.
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.pipeline.newest_event_ms()
    }
}
