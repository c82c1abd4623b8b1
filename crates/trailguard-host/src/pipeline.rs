//! Feeding every detector, in event time, and collecting alerts, with each
//! rule supervised: a rule that fails is restarted from its last good
//! checkpoint and the failing call is retried once; a rule that keeps
//! failing is quarantined. Other rules never notice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use trailguard_ingest::{NormalizedEvent, RecordPaths};
use trailguard_rule_sdk::Alert;

use crate::alert::AlertMaker;
use crate::{AlertDocument, Detector, HostError, RuleInfo, Watermark, field};

/// How the pipeline recovers a failing rule.
///
/// Recovery restores the rule's last snapshot and replays the calls since,
/// so every rule is snapshotted now and then. A snapshot of a large state
/// costs milliseconds, so how often depends on what it costs: a rule is
/// snapshotted once the time spent in its calls since its last snapshot is
/// `100 / snapshot_budget_percent` times what that snapshot took (cheap
/// snapshots are taken often, for short replays), and at the latest when
/// the calls since hold `max_replay_events` events or number
/// `checkpoint_every` (which bounds replay and the memory it needs: the
/// batches since are kept). When checkpoints happen changes nothing in the
/// output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryPolicy {
    /// Snapshot each rule at the latest after this many calls. Default
    /// 1,024.
    pub checkpoint_every: usize,
    /// Snapshot each rule at the latest once the calls since carried this
    /// many events; their batches are kept in memory for the replay,
    /// shared by all rules. An event counts once more per 512 bytes of
    /// raw-record fields it carries. Default 65,536 (about 30 MiB of
    /// events, plus at most 32 MiB of record fields).
    pub max_replay_events: usize,
    /// Snapshots may cost about this share of a rule's time, in percent;
    /// 0 snapshots only at the bounds above. Default 5.
    pub snapshot_budget_percent: u32,
    /// Restarts allowed per rule before it is quarantined. Default 3.
    pub max_restarts: u32,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        RecoveryPolicy {
            checkpoint_every: 1024,
            max_replay_events: 65_536,
            snapshot_budget_percent: 5,
            max_restarts: 3,
        }
    }
}

impl RecoveryPolicy {
    /// Whether a rule whose calls since its last snapshot number `calls`,
    /// carried `events` and took `busy`, is due for another snapshot, the
    /// last having taken `last_snapshot`.
    fn snapshot_due(
        &self,
        calls: usize,
        events: usize,
        busy: Duration,
        last_snapshot: Duration,
    ) -> bool {
        calls >= self.checkpoint_every
            || events >= self.max_replay_events
            || (self.snapshot_budget_percent > 0
                && busy.as_nanos() * u128::from(self.snapshot_budget_percent)
                    >= last_snapshot.as_nanos() * 100)
    }
}

/// What the pipeline did about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Restarted from the last checkpoint; the retried call succeeded.
    Recovered,
    /// Stopped: no more events go to the rule.
    Quarantined,
}

/// A rule's failure and what was done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// Rule id.
    pub rule: String,
    /// Events fed to the pipeline before the failing call (the batch
    /// position).
    pub events_before: u64,
    /// The contract function that failed.
    pub call: &'static str,
    /// What happened.
    pub message: String,
    /// What the pipeline did.
    pub recovery: Recovery,
}

/// One rule's part of a [`PipelineState`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedRule {
    /// Rule id.
    pub id: String,
    /// The rule's version when saved.
    pub version: String,
    /// Its snapshot; `None` if it was quarantined.
    pub snapshot: Option<Vec<u8>>,
}

/// What a pipeline needs to resume exactly where it was: every rule's
/// snapshot, the watermark and the counters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineState {
    /// The event-time watermark.
    pub watermark: Watermark,
    /// Each rule, in pipeline order.
    pub rules: Vec<SavedRule>,
    /// Events fed so far.
    pub events: u64,
    /// Late events so far.
    pub late_events: u64,
    /// Alerts per rule so far.
    pub alerts: BTreeMap<String, u64>,
}

/// What the pipeline counted.
#[derive(Clone, Debug, Default)]
pub struct PipelineStats {
    /// Events fed.
    pub events: u64,
    /// Events older than the watermark already announced when they arrived.
    pub late_events: u64,
    /// Alerts written, per rule id (every loaded rule has an entry).
    pub alerts: BTreeMap<String, u64>,
    /// Alerts merged into others by suppression, per rule id (only rules
    /// that suppressed something have an entry).
    pub suppressed: BTreeMap<String, u64>,
    /// Every failure, in order.
    pub failures: Vec<RuleFailure>,
    /// Host-owned fields (`kibana.*`, `threat.*`, `@timestamp`, ...) that a
    /// rule wrote into its alerts and the host dropped, per rule id.
    pub host_fields_dropped: BTreeMap<String, u64>,
    /// What the engine's time guard refused, held and confirmed (an
    /// [`crate::Engine`]'s; a pipeline alone has none).
    pub time_guard: crate::TimeGuardCounts,
}

impl PipelineStats {
    /// Ids of the rules that were quarantined.
    pub fn quarantined(&self) -> Vec<&str> {
        self.failures
            .iter()
            .filter(|f| f.recovery == Recovery::Quarantined)
            .map(|f| f.rule.as_str())
            .collect()
    }
}

/// The part of an error worth repeating after the rule's id and call.
fn reason(e: &HostError) -> String {
    match e {
        HostError::Rule { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// How many events `events` count as against
/// [`RecoveryPolicy::max_replay_events`]: each once, plus once per 512 bytes
/// of raw-record text it carries, so the batches kept for a replay stay
/// bounded in bytes too (about 32 MiB of record text at the default) when
/// rules read large record fields.
fn replay_weight(events: &[NormalizedEvent]) -> usize {
    events
        .iter()
        .map(|e| 1 + e.record_bytes() / 512)
        .fold(0, usize::saturating_add)
}

/// One call into a rule, kept for replay until the next checkpoint.
#[derive(Clone)]
enum Op {
    Process(Arc<Vec<NormalizedEvent>>),
    Advance(i64),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Process(_) => "process",
            Op::Advance(_) => "advance",
        }
    }
}

/// A supervised rule.
struct Slot {
    detector: Box<dyn Detector>,
    /// Builds the alert documents of each of its rules (`Detector::rules`).
    makers: Vec<AlertMaker>,
    /// Host-owned fields its alerts tried to write.
    host_fields_dropped: u64,
    /// Calls since the checkpoint.
    log: Vec<Op>,
    /// The last good snapshot; `None`: the rule's initial state.
    checkpoint: Option<Vec<u8>>,
    /// Time spent in the calls since the checkpoint.
    busy: Duration,
    /// Events in the calls since the checkpoint.
    log_events: usize,
    /// What taking the last checkpoint took.
    snapshot_took: Duration,
    restarts: u32,
    quarantined: bool,
}

impl Slot {
    fn apply(&mut self, op: &Op) -> Result<Vec<AlertDocument>, HostError> {
        let alerts: Vec<Alert> = match op {
            Op::Process(events) => self.detector.process(events)?,
            Op::Advance(w) => self.detector.advance(*w)?,
        };
        let mut documents = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let failed = |message| HostError::Rule {
                rule: self.detector.info().id.clone(),
                call: op.name(),
                message,
            };
            let maker = self.makers.get(alert.rule as usize).ok_or_else(|| {
                failed(format!(
                    "returned an alert of rule #{}, but its `rules` lists {}",
                    alert.rule,
                    self.makers.len()
                ))
            })?;
            let (document, dropped) = maker.document(alert).map_err(failed)?;
            self.host_fields_dropped += dropped as u64;
            documents.push(document);
        }
        Ok(documents)
    }

    fn new(detector: Box<dyn Detector>) -> Slot {
        Slot {
            makers: makers(detector.as_ref()),
            detector,
            host_fields_dropped: 0,
            log: Vec::new(),
            checkpoint: None,
            busy: Duration::ZERO,
            log_events: 0,
            snapshot_took: Duration::ZERO,
            restarts: 0,
            quarantined: false,
        }
    }

    /// A fresh instance, the checkpoint, and the calls since, replayed
    /// (their alerts were emitted the first time).
    fn recover(&mut self) -> Result<(), HostError> {
        self.detector.restart()?;
        if let Some(state) = &self.checkpoint {
            self.detector.restore(state)?;
        }
        for op in self.log.clone() {
            self.apply(&op)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), HostError> {
        let started = Instant::now();
        self.checkpoint = Some(self.detector.snapshot()?);
        self.snapshot_took = started.elapsed();
        self.busy = Duration::ZERO;
        self.log_events = 0;
        self.log.clear();
        Ok(())
    }

    /// Forgets the calls before a state set from outside (a restore or a
    /// reload), which becomes the checkpoint.
    fn reset_log(&mut self, checkpoint: Option<Vec<u8>>) {
        self.checkpoint = checkpoint;
        self.busy = Duration::ZERO;
        self.log_events = 0;
        self.log.clear();
    }
}

/// The alert makers of every rule of `detector`.
fn makers(detector: &dyn Detector) -> Vec<AlertMaker> {
    let provenance = detector.provenance();
    detector
        .rules()
        .iter()
        .map(|info| AlertMaker::new(info, &provenance))
        .collect()
}

/// A new build of a rule with the running one's state restored into it,
/// ready to take its slot.
pub(crate) struct Replacement {
    slot: usize,
    detector: Box<dyn Detector>,
    state: Option<Vec<u8>>,
}

/// Every loaded detector, the watermark, and the counters.
pub struct Pipeline {
    slots: Vec<Slot>,
    watermark: Watermark,
    policy: RecoveryPolicy,
    allow_downgrade: bool,
    stats: PipelineStats,
}

/// Whether going from version `from` to `to` goes back (both SemVer; other
/// spellings are not compared).
fn is_downgrade(from: &str, to: &str) -> bool {
    match (semver::Version::parse(from), semver::Version::parse(to)) {
        (Ok(from), Ok(to)) => to < from,
        _ => false,
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline over `detectors` (fed in this order) with the given
    /// allowed lateness of events and the default [`RecoveryPolicy`].
    pub fn new(detectors: Vec<Box<dyn Detector>>, allowed_lateness_ms: i64) -> Pipeline {
        let stats = PipelineStats {
            alerts: detectors
                .iter()
                .flat_map(|d| d.rules())
                .map(|r| (r.id.clone(), 0))
                .collect(),
            ..PipelineStats::default()
        };
        Pipeline {
            slots: detectors.into_iter().map(Slot::new).collect(),
            watermark: Watermark::new(allowed_lateness_ms),
            policy: RecoveryPolicy::default(),
            allow_downgrade: false,
            stats,
        }
    }

    /// Sets how failing rules are recovered.
    pub fn with_policy(mut self, policy: RecoveryPolicy) -> Pipeline {
        self.policy = policy;
        self
    }

    /// Accepts rules older than the version they replace (in a reload) or
    /// than the one that saved the state being loaded. Refused by default:
    /// rolling a rule back to an older build, even a signed one, is a
    /// decision for the operator.
    pub fn allowing_downgrade(mut self, allow: bool) -> Pipeline {
        self.allow_downgrade = allow;
        self
    }

    /// Feeds one batch to every rule, then announces the watermark if it
    /// moved. Alerts come back in a deterministic order: by rule, then as
    /// the rule returned them. The batch may be shared (`Arc`): the
    /// pipeline keeps it until no rule can need it for a replay.
    pub fn push(&mut self, events: impl Into<Arc<Vec<NormalizedEvent>>>) -> Vec<AlertDocument> {
        let events = events.into();
        for e in events.iter() {
            if self.watermark.observe(e.timestamp_ms) {
                self.stats.late_events += 1;
            }
        }
        let count = events.len() as u64;
        let mut out = self.call_all(&Op::Process(events));
        self.stats.events += count;
        if let Some(w) = self.watermark.advance() {
            out.extend(self.call_all(&Op::Advance(w)));
        }
        out
    }

    /// Event time has reached `timestamp_ms` without events here (see
    /// [`Watermark::note_progress`]): announces the watermark if it moved.
    pub fn note_progress(&mut self, timestamp_ms: i64) -> Vec<AlertDocument> {
        self.watermark.note_progress(timestamp_ms);
        let mut out = Vec::new();
        if let Some(w) = self.watermark.advance() {
            out.extend(self.call_all(&Op::Advance(w)));
        }
        out
    }

    /// The input has ended: every remaining evaluation runs.
    pub fn finish(&mut self) -> Vec<AlertDocument> {
        self.call_all(&Op::Advance(i64::MAX))
    }

    /// The rules as the user sees them, in the order they are fed: each
    /// detector's [`Detector::rules`] (a plain rule itself, a pack its
    /// rules).
    pub fn rules(&self) -> Vec<&RuleInfo> {
        self.slots.iter().flat_map(|s| s.detector.rules()).collect()
    }

    /// The detectors (rule components and native rules), in the order
    /// they are fed.
    pub fn detectors(&self) -> impl Iterator<Item = &dyn Detector> {
        self.slots.iter().map(|s| s.detector.as_ref())
    }

    /// Every raw-record path some rule reads, each once, and the events
    /// each rule wants: what events must carry
    /// ([`trailguard_ingest::Normalizer::with_paths`]).
    pub fn record_paths(&self) -> RecordPaths {
        RecordPaths::from_requests(
            self.slots
                .iter()
                .map(|s| (s.detector.record_paths().to_vec(), s.detector.event_test())),
        )
    }

    /// The counters so far.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The newest event time seen.
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.watermark.newest_ms()
    }

    /// The watermark last announced to the rules.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark.announced_ms()
    }

    /// Replaces the running rule with the same id by `new` (a new build of
    /// it), carrying its state over through snapshot and restore, between
    /// two calls: no event is lost. If the old rule's snapshot or the new
    /// one's restore fails, the old rule keeps running and the error says
    /// why.
    pub fn replace_rule(&mut self, new: Box<dyn Detector>) -> Result<(), HostError> {
        let prepared = self.prepare_replacement(new)?;
        self.commit_replacement(prepared);
        Ok(())
    }

    /// The checks and the state hand-over of [`Pipeline::replace_rule`],
    /// without the swap: nothing changes in the pipeline, so several
    /// pipelines (shards) can all be prepared before any is committed.
    pub(crate) fn prepare_replacement(
        &mut self,
        mut new: Box<dyn Detector>,
    ) -> Result<Replacement, HostError> {
        let id = new.info().id.clone();
        let Some(slot) = self
            .slots
            .iter_mut()
            .position(|s| s.detector.info().id == id)
        else {
            return Err(HostError::Rule {
                rule: id,
                call: "reload",
                message: "no loaded rule has this id".into(),
            });
        };
        let running = &mut self.slots[slot];
        let (from, to) = (&running.detector.info().version, &new.info().version);
        if !self.allow_downgrade && is_downgrade(from, to) {
            return Err(HostError::Rule {
                rule: id.clone(),
                call: "reload",
                message: format!(
                    "version {to} is older than the running {from}; a rollback needs --allow-downgrade"
                ),
            });
        }
        let state = if running.quarantined {
            None
        } else {
            Some(running.detector.snapshot()?)
        };
        if let Some(bytes) = &state {
            new.restore(bytes)?;
        }
        Ok(Replacement {
            slot,
            detector: new,
            state,
        })
    }

    /// Swaps in a prepared replacement.
    pub(crate) fn commit_replacement(&mut self, prepared: Replacement) {
        let slot = &mut self.slots[prepared.slot];
        slot.makers = makers(prepared.detector.as_ref());
        slot.detector = prepared.detector;
        slot.reset_log(prepared.state);
        slot.restarts = 0;
        slot.quarantined = false;
    }

    /// Snapshots every rule. A rule whose snapshot fails is quarantined
    /// (and reported) and saved as such.
    pub fn save_state(&mut self) -> PipelineState {
        let mut rules = Vec::new();
        for slot in &mut self.slots {
            let info = slot.detector.info().clone();
            let snapshot = if slot.quarantined {
                None
            } else {
                match slot.detector.snapshot() {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        slot.quarantined = true;
                        self.stats.failures.push(RuleFailure {
                            rule: info.id.clone(),
                            events_before: self.stats.events,
                            call: "snapshot",
                            message: reason(&e),
                            recovery: Recovery::Quarantined,
                        });
                        None
                    }
                }
            };
            rules.push(SavedRule {
                id: info.id,
                version: info.version,
                snapshot,
            });
        }
        PipelineState {
            watermark: self.watermark.clone(),
            rules,
            events: self.stats.events,
            late_events: self.stats.late_events,
            alerts: self.stats.alerts.clone(),
        }
    }

    /// Restores a saved state: each rule by id (a rule the state does not
    /// know starts fresh; one saved as quarantined stays so). Returns
    /// warnings; a rule that refuses its snapshot is an error naming it.
    pub fn load_state(&mut self, state: PipelineState) -> Result<Vec<String>, HostError> {
        let mut warnings = Vec::new();
        for slot in &mut self.slots {
            let id = slot.detector.info().id.clone();
            match state.rules.iter().find(|r| r.id == id) {
                None => warnings.push(format!(
                    "rule {id} is new since the checkpoint: it starts with no history"
                )),
                Some(SavedRule { snapshot: None, .. }) => {
                    slot.quarantined = true;
                    warnings.push(format!(
                        "rule {id} was quarantined before the checkpoint and stays so"
                    ));
                }
                Some(SavedRule { version, .. })
                    if !self.allow_downgrade
                        && is_downgrade(version, &slot.detector.info().version) =>
                {
                    return Err(HostError::Rule {
                        rule: id.clone(),
                        call: "restore",
                        message: format!(
                            "the checkpoint was saved by version {version}, newer than the loaded {}; load that version or newer, or allow the rollback with --allow-downgrade",
                            slot.detector.info().version
                        ),
                    });
                }
                Some(SavedRule {
                    snapshot: Some(bytes),
                    version,
                    ..
                }) => {
                    slot.detector.restore(bytes).map_err(|e| HostError::Rule {
                        rule: id.clone(),
                        call: "restore",
                        message: format!(
                            "cannot resume from the checkpoint (saved by version {version}): {}",
                            reason(&e)
                        ),
                    })?;
                    slot.reset_log(Some(bytes.clone()));
                }
            }
        }
        for saved in &state.rules {
            if !self.slots.iter().any(|s| s.detector.info().id == saved.id) {
                warnings.push(format!(
                    "rule {} is in the checkpoint but not loaded: its state is dropped",
                    saved.id
                ));
            }
        }
        self.watermark = state.watermark;
        self.stats.events = state.events;
        self.stats.late_events = state.late_events;
        for (rule, n) in state.alerts {
            if let Some(count) = self.stats.alerts.get_mut(&rule) {
                *count = n;
            }
        }

        Ok(warnings)
    }

    fn call_all(&mut self, op: &Op) -> Vec<AlertDocument> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            if let Some(docs) = self.call(i, op) {
                let slot = &self.slots[i];
                if slot.host_fields_dropped > 0 {
                    self.stats
                        .host_fields_dropped
                        .insert(slot.detector.info().id.clone(), slot.host_fields_dropped);
                }
                for doc in &docs {
                    if let Some(id) = doc.get(field::RULE_ID).and_then(|v| v.as_str()) {
                        // Every rule has its entry from the start: no
                        // allocation per alert.
                        match self.stats.alerts.get_mut(id) {
                            Some(count) => *count += 1,
                            None => {
                                self.stats.alerts.insert(id.to_owned(), 1);
                            }
                        }
                    }
                }
                out.extend(docs);
            }
        }
        out
    }

    /// One supervised call: on failure, restart from the checkpoint, replay,
    /// retry once; quarantine if that fails or restarts are used up.
    fn call(&mut self, i: usize, op: &Op) -> Option<Vec<AlertDocument>> {
        let policy = self.policy;
        let slot = &mut self.slots[i];
        if slot.quarantined {
            return None;
        }
        let started = Instant::now();
        let applied = slot.apply(op);
        slot.busy += started.elapsed();
        let docs = match applied {
            Ok(docs) => docs,
            Err(first) => {
                let (recovery, docs, message) = if slot.restarts < policy.max_restarts {
                    slot.restarts += 1;
                    match slot.recover().and_then(|()| slot.apply(op)) {
                        Ok(docs) => (Recovery::Recovered, Some(docs), reason(&first)),
                        Err(second) => (
                            Recovery::Quarantined,
                            None,
                            format!(
                                "{}; again after a restart from the last checkpoint: {}",
                                reason(&first),
                                reason(&second)
                            ),
                        ),
                    }
                } else {
                    let message = format!(
                        "{}; restarts used up ({})",
                        reason(&first),
                        policy.max_restarts
                    );
                    (Recovery::Quarantined, None, message)
                };
                self.stats.failures.push(RuleFailure {
                    rule: slot.detector.info().id.clone(),
                    events_before: self.stats.events,
                    call: op.name(),
                    message,
                    recovery,
                });
                match docs {
                    Some(docs) => docs,
                    None => {
                        slot.quarantined = true;
                        return None;
                    }
                }
            }
        };
        if let Op::Process(events) = op {
            slot.log_events += replay_weight(events);
        }
        slot.log.push(op.clone());
        if policy.snapshot_due(
            slot.log.len(),
            slot.log_events,
            slot.busy,
            slot.snapshot_took,
        ) && let Err(e) = slot.checkpoint()
        {
            slot.quarantined = true;
            let rule = slot.detector.info().id.clone();
            self.stats.failures.push(RuleFailure {
                rule,
                events_before: self.stats.events,
                call: "snapshot",
                message: reason(&e),
                recovery: Recovery::Quarantined,
            });
            // The call itself succeeded: its alerts stand.
        }
        Some(docs)
    }
}

#[cfg(test)]
mod tests {
    use trailguard_rule_sdk::{Event, Rule, Severity};

    use super::*;
    use crate::NativeRule;

    /// A rule that counts its events; its version comes from `V`.
    struct Counter<const V: u8>(u64);

    impl<const V: u8> Rule for Counter<V> {
        fn info() -> RuleInfo {
            RuleInfo {
                id: "counter".into(),
                name: "Counter".into(),
                version: format!("1.{V}.0"),
                severity: Severity::Low,
                risk_score: 1,
                mitre_techniques: Vec::new(),
                description: String::new(),
                default_config: String::new(),
                tags: Vec::new(),
                references: Vec::new(),
                author: String::new(),
            }
        }
        fn create(_: &str) -> Result<Self, String> {
            Ok(Counter(0))
        }
        fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
            self.0 += events.len() as u64;
            Vec::new()
        }
        fn advance(&mut self, _: i64) -> Vec<Alert> {
            Vec::new()
        }
        fn snapshot(&self) -> Vec<u8> {
            self.0.to_le_bytes().to_vec()
        }
        fn restore(&mut self, state: &[u8]) -> Result<(), String> {
            let bytes: [u8; 8] = state.try_into().map_err(|_| "bad state".to_owned())?;
            self.0 = u64::from_le_bytes(bytes);
            Ok(())
        }
    }

    fn rule<const V: u8>() -> Box<dyn Detector> {
        Box::new(NativeRule::<Counter<V>>::new("").expect("rule"))
    }

    fn running_version(pipeline: &Pipeline) -> String {
        pipeline.rules()[0].version.clone()
    }

    #[test]
    fn a_rollback_is_refused_unless_allowed_in_reloads_and_resumes() {
        let mut pipeline = Pipeline::new(vec![rule::<2>()], 0);
        let e = pipeline.replace_rule(rule::<1>()).expect_err("a downgrade");
        assert!(
            e.to_string()
                .contains("version 1.1.0 is older than the running 1.2.0"),
            "{e}"
        );
        assert_eq!(running_version(&pipeline), "1.2.0");
        pipeline.replace_rule(rule::<3>()).expect("an upgrade");
        assert_eq!(running_version(&pipeline), "1.3.0");
        let saved = pipeline.save_state();

        // A checkpoint saved by 1.3.0 is not resumed by 1.2.0.
        let mut older = Pipeline::new(vec![rule::<2>()], 0);
        let e = older.load_state(saved.clone()).expect_err("a downgrade");
        assert!(
            e.to_string()
                .contains("saved by version 1.3.0, newer than the loaded 1.2.0"),
            "{e}"
        );

        // Allowed: both go through.
        let mut older = Pipeline::new(vec![rule::<2>()], 0).allowing_downgrade(true);
        older.load_state(saved).expect("allowed");
        let mut pipeline = pipeline.allowing_downgrade(true);
        pipeline.replace_rule(rule::<1>()).expect("allowed");
        assert_eq!(running_version(&pipeline), "1.1.0");
    }
}
