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
use trailguard_format::{field, parse_time_ms};
use trailguard_ingest::{
    Deduplicator, IngestStats, NormalizedEvent, Normalizer, RecordPaths, decode_bytes,
};

use crate::{
    AlertDocument, CompiledRule, Detector, HostError, Pipeline, PipelineState, PipelineStats,
    RecoveryPolicy, Refused, RuleInfo, Runtime, Suppression, Suppressor, TimeGuard,
    TimeGuardOptions, TimeGuardState,
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
    /// Events per batch handed to the rules (all shards together). Default
    /// 1024.
    pub batch_size: usize,
    /// Drop an event whose eventID was seen within this much event time;
    /// 0 keeps duplicates. Default 60 minutes.
    pub dedup_window_ms: i64,
    /// Run the rules on this many shards in parallel, each with its own
    /// instance of every rule and the events of its identities (by
    /// [`NormalizedEvent::group_key`]); every shard follows the one,
    /// engine-wide watermark, so the alerts are those of one shard. Default 1.
    pub shards: usize,
    /// Accept a rule older than the one it replaces, or than the one that
    /// saved the state being loaded. Default `false`.
    pub allow_downgrade: bool,
    /// How event times are checked before events reach the rules (an
    /// event dated past the wall clock, or far ahead of the stream, is
    /// refused). Default [`TimeGuardOptions::default`].
    pub time_guard: TimeGuardOptions,
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
            shards: 1,
            allow_downgrade: false,
            time_guard: TimeGuardOptions::default(),
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
    /// Per shard: every rule's snapshot, the watermark, counters.
    pub shards: Vec<PipelineState>,
    /// The open suppression groups.
    pub suppression: Suppressor,
    /// Alerts written per rule (after suppression).
    pub alerts: BTreeMap<String, u64>,
    /// Alerts merged into others by suppression, per rule.
    pub suppressed: BTreeMap<String, u64>,
    /// The eventIDs seen within the deduplication window.
    pub dedup: Option<Deduplicator>,
    /// Events dropped as duplicates so far.
    pub duplicates: u64,
    /// The event-time guard: the newest time, the events it holds.
    pub time_guard: TimeGuardState,
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
    guard: TimeGuard,
    shards: Vec<Pipeline>,
    batches: Vec<Vec<NormalizedEvent>>,
    batched: usize,
    suppressor: Suppressor,
    alerts: BTreeMap<String, u64>,
    suppressed: BTreeMap<String, u64>,
    dedup: Option<Deduplicator>,
    duplicates: u64,
    batch_size: usize,
    asn: Option<Arc<AsnDb>>,
    rule_configs: BTreeMap<String, String>,
    failed_at_load: Vec<LoadFailure>,
    paths: RecordPaths,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shards", &self.shards.len())
            .field("batched", &self.batched)
            .finish()
    }
}

/// Why `new`'s rules cannot load beside `loaded`: one of them has the id of
/// a loaded detector or of one of its rules.
fn id_clash(new: &dyn Detector, loaded: &[&dyn Detector]) -> Option<String> {
    new.rules().iter().find_map(|r| {
        loaded
            .iter()
            .find(|d| d.info().id == r.id || d.rules().iter().any(|o| o.id == r.id))
            .map(|d| {
                format!(
                    "its rule {} has the id of a rule of the loaded {}; load each rule once",
                    r.id,
                    d.info().id
                )
            })
    })
}

impl Engine {
    /// A detector of every rule (per shard), fresh. A rule whose
    /// constructor fails is left out and listed in
    /// [`Engine::failed_at_load`]; a rule refusing its configuration, two
    /// rules with one id, or a configuration or suppression for an id no
    /// rule has are errors.
    pub fn new(
        runtime: &Runtime,
        rules: &[CompiledRule],
        options: EngineOptions,
    ) -> Result<Engine, HostError> {
        let shard_count = options.shards.max(1);
        let mut failed_at_load = Vec::new();
        let mut usable = Vec::new();
        let mut per_shard: Vec<Vec<Box<dyn Detector>>> =
            (0..shard_count).map(|_| Vec::new()).collect();
        let config_of = |info: &RuleInfo| {
            options
                .rule_configs
                .get(&info.id)
                .cloned()
                .unwrap_or_default()
        };
        for rule in rules {
            // The first instance tells whether the rule loads at all.
            let first = match runtime.instantiate(rule, config_of) {
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
            if let Some(loaded) = per_shard[0].iter().find(|d| d.info().id == first.info().id) {
                return Err(HostError::Load {
                    path: rule.path().to_owned(),
                    message: format!(
                        "a second rule with id {} (a rule of that id is already loaded: {}); load each rule once",
                        first.info().id,
                        loaded.info().name
                    ),
                });
            }
            // A detector's id and its rules' ids (a pack's) are one
            // namespace: alerts, statistics and settings name rules by id.
            // A pack claiming a loaded rule's id is left out (a Sigma file
            // cannot take over another rule's alerts).
            let loaded: Vec<&dyn Detector> = per_shard[0].iter().map(|d| d.as_ref()).collect();
            if let Some(message) = id_clash(&first, &loaded) {
                failed_at_load.push(LoadFailure {
                    rule: first.info().id.clone(),
                    file: rule.path().to_owned(),
                    message: format!("rules: {message}"),
                });
                continue;
            }
            per_shard[0].push(Box::new(first));
            usable.push(rule);
        }
        for shard in per_shard.iter_mut().skip(1) {
            for rule in &usable {
                shard.push(Box::new(runtime.instantiate(rule, config_of)?));
            }
        }
        let known = |id: &str| {
            per_shard[0]
                .iter()
                .any(|d| d.info().id == id || d.rules().iter().any(|r| r.id == id))
                || failed_at_load.iter().any(|f| f.rule == id)
        };
        let loaded = || {
            per_shard[0]
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
        let mut suppressor = Suppressor::default();
        for (id, suppression) in options.suppression {
            suppressor.set(&id, suppression);
        }
        let alerts = per_shard[0]
            .iter()
            .flat_map(|d| d.rules())
            .map(|r| (r.id.clone(), 0))
            .collect();
        let shards: Vec<Pipeline> = per_shard
            .into_iter()
            .map(|detectors| {
                Pipeline::new(detectors, options.allowed_lateness_ms)
                    .with_policy(options.recovery)
                    .allowing_downgrade(options.allow_downgrade)
            })
            .collect();
        let paths = shards
            .first()
            .map(Pipeline::record_paths)
            .unwrap_or_default();
        Ok(Engine {
            paths,
            guard: TimeGuard::new(options.time_guard),
            batches: (0..shards.len()).map(|_| Vec::new()).collect(),
            shards,
            batched: 0,
            suppressor,
            alerts,
            suppressed: BTreeMap::new(),
            dedup: (options.dedup_window_ms > 0)
                .then(|| Deduplicator::new(options.dedup_window_ms)),
            duplicates: 0,
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
    /// batch). Its time is checked first ([`TimeGuard`]): it may be held,
    /// or refused (see [`Engine::take_refused`]). A duplicate (same eventID
    /// within the window) is dropped and counted.
    pub fn push(&mut self, event: NormalizedEvent) -> Vec<AlertDocument> {
        self.push_from(event, &String::new)
    }

    /// [`Engine::push`], naming where the event came from (an input file)
    /// should it be refused; `origin` is called only then.
    pub fn push_from(
        &mut self,
        event: NormalizedEvent,
        origin: &dyn Fn() -> String,
    ) -> Vec<AlertDocument> {
        let mut alerts = match self.guard.offer(event, origin) {
            Some(event) => self.take(event),
            None => Vec::new(),
        };
        for event in self.guard.take_released() {
            alerts.extend(self.take(event));
        }
        alerts
    }

    /// Events the time guard refused since last asked, with where they came
    /// from and why (at most 1,000 between two calls; all are counted in
    /// [`Engine::stats`]).
    pub fn take_refused(&mut self) -> Vec<Refused> {
        self.guard.take_refused()
    }

    /// An event the guard let through: deduplicated, batched.
    fn take(&mut self, event: NormalizedEvent) -> Vec<AlertDocument> {
        if self.dedup.as_mut().is_some_and(|d| d.is_duplicate(&event)) {
            self.duplicates += 1;
            return Vec::new();
        }
        let shard = if self.shards.len() == 1 {
            0
        } else {
            (event.group_hash() % self.shards.len() as u64) as usize
        };
        self.batches[shard].push(event);
        self.batched += 1;
        // Batches end where they would with one shard, so the watermark is
        // announced at the same events and sharding changes no result.
        if self.batched >= self.batch_size {
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
        let normalizer = Normalizer::new(self.asn.as_deref()).with_paths(self.paths.clone());
        let mut events = Vec::new();
        decode_bytes(name, bytes, &normalizer, stats, &mut |e| events.push(e));
        let mut alerts = Vec::new();
        for event in events {
            alerts.extend(self.push_from(event, &|| name.to_owned()));
        }
        alerts
    }

    /// Hands the events batched so far to the rules: each shard's batch on
    /// its own thread, then every shard is told the engine-wide event time.
    pub fn flush(&mut self) -> Vec<AlertDocument> {
        if self.batched == 0 {
            return Vec::new();
        }
        self.batched = 0;
        let batches: Vec<Vec<NormalizedEvent>> =
            self.batches.iter_mut().map(std::mem::take).collect();
        let mut raw: Vec<Vec<AlertDocument>> = if self.shards.len() == 1 {
            let batch = batches.into_iter().next().unwrap_or_default();
            vec![self.shards[0].push(batch)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .shards
                    .iter_mut()
                    .zip(batches)
                    .map(|(shard, batch)| {
                        scope.spawn(move || {
                            if batch.is_empty() {
                                Vec::new()
                            } else {
                                shard.push(batch)
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        if self.shards.len() > 1
            && let Some(newest) = self
                .shards
                .iter()
                .filter_map(Pipeline::newest_event_ms)
                .max()
        {
            for (shard, out) in self.shards.iter_mut().zip(raw.iter_mut()) {
                out.extend(shard.note_progress(newest));
            }
        }
        let watermark = self.shards.iter().filter_map(Pipeline::watermark_ms).max();
        self.suppress(raw.into_iter().flatten().collect(), watermark)
    }

    /// Runs suppression over alerts the rules returned, then closes the
    /// groups event time has passed; counts what is written.
    fn suppress(
        &mut self,
        raw: Vec<AlertDocument>,
        watermark_ms: Option<i64>,
    ) -> Vec<AlertDocument> {
        let mut out = Vec::with_capacity(raw.len());
        if !self.suppressor.is_active() {
            out = raw;
        } else {
            for doc in raw {
                let rule = doc
                    .get(field::RULE_ID)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let time = doc
                    .get(field::TIMESTAMP)
                    .and_then(|v| v.as_str())
                    .and_then(parse_time_ms)
                    .unwrap_or(i64::MIN);
                self.suppressor.offer(&rule, time, doc, &mut out);
            }
            if let Some(w) = watermark_ms {
                self.suppressor.close_until(w, &mut out);
            }
        }
        for doc in &out {
            let Some(rule) = doc.get(field::RULE_ID).and_then(|v| v.as_str()) else {
                continue;
            };
            // A suppression group's update repeats its alert with the final
            // count: count the merged alerts, not the alert again.
            let (counts, n) = match doc.get(field::SUPPRESSED_COUNT).and_then(|v| v.as_u64()) {
                Some(n) if n > 0 => (&mut self.suppressed, n),
                _ => (&mut self.alerts, 1),
            };
            // Looked up before inserting: no allocation per alert.
            match counts.get_mut(rule) {
                Some(count) => *count += n,
                None => {
                    counts.insert(rule.to_owned(), n);
                }
            }
        }
        out
    }

    /// Event time has reached `timestamp_ms` elsewhere (see
    /// [`crate::Watermark::note_progress`]): flushes, then announces the
    /// watermark if it moved.
    pub fn note_progress(&mut self, timestamp_ms: i64) -> Vec<AlertDocument> {
        self.guard.note_progress(timestamp_ms);
        let mut alerts = Vec::new();
        for event in self.guard.take_released() {
            alerts.extend(self.take(event));
        }
        alerts.extend(self.flush());
        let raw: Vec<AlertDocument> = self
            .shards
            .iter_mut()
            .flat_map(|s| s.note_progress(timestamp_ms))
            .collect();
        let watermark = self.shards.iter().filter_map(Pipeline::watermark_ms).max();
        alerts.extend(self.suppress(raw, watermark));
        alerts
    }

    /// The input has ended: the time guard decides on the events it
    /// holds, then every remaining evaluation runs.
    pub fn finish(&mut self) -> Vec<AlertDocument> {
        self.guard.finish();
        let mut alerts = Vec::new();
        for event in self.guard.take_released() {
            alerts.extend(self.take(event));
        }
        alerts.extend(self.flush());
        let raw: Vec<AlertDocument> = self.shards.iter_mut().flat_map(Pipeline::finish).collect();
        alerts.extend(self.suppress(raw, Some(i64::MAX)));
        alerts
    }

    /// Flushes (the alerts are returned) and captures the state. A rule
    /// whose snapshot fails is quarantined and saved as such.
    pub fn checkpoint(&mut self) -> (Vec<AlertDocument>, EngineState) {
        let alerts = self.flush();
        let state = EngineState {
            shards: self.shards.iter_mut().map(Pipeline::save_state).collect(),
            suppression: self.suppressor.clone(),
            alerts: self.alerts.clone(),
            suppressed: self.suppressed.clone(),
            dedup: self.dedup.clone(),
            duplicates: self.duplicates,
            time_guard: self.guard.save(),
        };
        (alerts, state)
    }

    /// The number of shards a saved state was taken with (an engine must
    /// have as many to load it).
    pub fn shards_of(state: &EngineState) -> usize {
        state.shards.len()
    }

    /// Resumes from a state saved by [`Engine::checkpoint`] (of an engine
    /// with the same rules and shards; a rule the state does not know
    /// starts fresh). Returns warnings; a rule refusing its snapshot, or
    /// another shard count, is an error.
    pub fn load_state(&mut self, state: EngineState) -> Result<Vec<String>, HostError> {
        if state.shards.len() != self.shards.len() {
            return Err(HostError::State(format!(
                "it has {} shard(s) but this engine runs {}: resume with the same number",
                state.shards.len(),
                self.shards.len()
            )));
        }
        for batch in &mut self.batches {
            batch.clear();
        }
        self.batched = 0;
        let mut warnings = Vec::new();
        for (shard, saved) in self.shards.iter_mut().zip(state.shards) {
            for w in shard.load_state(saved)? {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
        }
        self.suppressor.restore_groups(state.suppression);
        for (rule, n) in state.alerts {
            self.alerts.insert(rule, n);
        }
        self.suppressed = state.suppressed;
        if state.dedup.is_some() || self.dedup.is_none() {
            self.dedup = state.dedup;
        }
        self.duplicates = state.duplicates;
        self.guard
            .load(state.time_guard, &self.paths)
            .map_err(|message| HostError::State(format!("its time guard: {message}")))?;
        Ok(warnings)
    }

    /// Replaces the running rule `id` with a new build of it in every
    /// shard, carrying its state over (between two batches: no event is
    /// lost). The new build must declare the same id (a file cannot take
    /// over another rule's slot and state) and, unless allowed, a version no
    /// older than the running one. If the new one refuses the state, the
    /// old one keeps running and the error says why.
    pub fn reload(
        &mut self,
        runtime: &Runtime,
        id: &str,
        rule: &CompiledRule,
    ) -> Result<(), HostError> {
        if rule.info().id != id {
            return Err(HostError::Refused {
                path: rule.path().to_owned(),
                reason: format!(
                    "it now declares rule id {}, but it was loaded as {id}; a rule's id cannot change while running (restart to load it as a new rule)",
                    rule.info().id
                ),
            });
        }
        // Every shard prepared (instantiated, state restored) before any is
        // swapped: a failure in one leaves all on the running version.
        let configs = &self.rule_configs;
        let mut prepared = Vec::with_capacity(self.shards.len());
        for shard in &mut self.shards {
            let detector = runtime.instantiate(rule, |info| {
                configs.get(&info.id).cloned().unwrap_or_default()
            })?;
            let others: Vec<&dyn Detector> =
                shard.detectors().filter(|d| d.info().id != id).collect();
            if let Some(reason) = id_clash(&detector, &others) {
                return Err(HostError::Refused {
                    path: rule.path().to_owned(),
                    reason,
                });
            }
            prepared.push(shard.prepare_replacement(Box::new(detector))?);
        }
        for (shard, replacement) in self.shards.iter_mut().zip(prepared) {
            shard.commit_replacement(replacement);
        }
        self.paths = self
            .shards
            .first()
            .map(Pipeline::record_paths)
            .unwrap_or_default();
        Ok(())
    }

    /// Replaces the running rule of `rule`'s id with a new instance made
    /// from `config`, its state carried over as in [`Engine::reload`]: a
    /// pack whose rule files changed (the Sigma pack). On failure the
    /// running instance and its configuration go on.
    pub fn reconfigure(
        &mut self,
        runtime: &Runtime,
        rule: &CompiledRule,
        config: String,
    ) -> Result<(), HostError> {
        let id = rule.info().id.clone();
        let previous = self.rule_configs.insert(id.clone(), config);
        let result = self.reload(runtime, &id, rule);
        if result.is_err() {
            match previous {
                Some(config) => self.rule_configs.insert(id, config),
                None => self.rule_configs.remove(&id),
            };
        }
        result
    }

    /// Every raw-record path the running rules read: give it to the
    /// [`Normalizer`] that makes the events (`with_paths`), so each path is
    /// extracted once per event for all rules. It changes when a reload
    /// brings a rule that reads other paths; events made before carry the
    /// old list, and rules find their paths in it by name.
    pub fn record_paths(&self) -> &RecordPaths {
        &self.paths
    }

    /// The running rules, in the order they are fed.
    pub fn rules(&self) -> Vec<&RuleInfo> {
        self.shards.first().map(Pipeline::rules).unwrap_or_default()
    }

    /// What each detector's configuration had that it could not use
    /// (detector id, sentence): a Sigma rule that does not parse or is for
    /// another log source.
    pub fn warnings(&self) -> Vec<(&str, &str)> {
        self.shards
            .first()
            .map(|p| {
                p.detectors()
                    .flat_map(|d| {
                        d.warnings()
                            .iter()
                            .map(|w| (d.info().id.as_str(), w.as_str()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rules left out at load.
    pub fn failed_at_load(&self) -> &[LoadFailure] {
        &self.failed_at_load
    }

    /// Events, late events, alerts per rule (as written, after
    /// suppression), failures: all shards together.
    pub fn stats(&self) -> PipelineStats {
        let mut total = PipelineStats {
            alerts: self.alerts.clone(),
            suppressed: self.suppressed.clone(),
            time_guard: self.guard.counts(),
            ..PipelineStats::default()
        };
        for shard in &self.shards {
            let s = shard.stats();
            total.events += s.events;
            total.late_events += s.late_events;
            total.failures.extend(s.failures.iter().cloned());
            for (rule, n) in &s.host_fields_dropped {
                *total.host_fields_dropped.entry(rule.clone()).or_default() += n;
            }
        }
        total
    }

    /// Events handed to the rules so far (cheaper than [`Engine::stats`]).
    pub fn events(&self) -> u64 {
        self.shards.iter().map(|s| s.stats().events).sum()
    }

    /// Per suppressed rule, the alerts that lacked one of its `group_by`
    /// fields (a misspelt field name groups everything together).
    pub fn suppression_missing_fields(&self) -> &BTreeMap<String, u64> {
        self.suppressor.missing_fields()
    }

    /// Events dropped as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The newest event time seen.
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.shards
            .iter()
            .filter_map(Pipeline::newest_event_ms)
            .max()
    }
}
