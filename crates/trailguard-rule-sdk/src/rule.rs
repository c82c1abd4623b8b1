//! The [`Rule`] trait and the values a rule hands back.

use crate::{Event, EventFilter};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Likely compromise.
    High,
    /// Act now.
    Critical,
}

impl Severity {
    /// The lower-case name used in alerts (`"high"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a rule is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable identifier, e.g. `aws-sensitive-untrusted-asn`.
    pub id: String,
    /// Human-readable title.
    pub name: String,
    /// The rule's own semantic version.
    pub version: String,
    /// Severity of its alerts.
    pub severity: Severity,
    /// 0..=100.
    pub risk_score: u8,
    /// MITRE ATT&CK technique ids.
    pub mitre_techniques: Vec<String>,
    /// What it detects and why.
    pub description: String,
    /// The default configuration as JSON.
    pub default_config: String,
    /// Free-form tags (Sigma's `attack.initial-access`); ATT&CK tactic tags
    /// become `threat.tactic.*` in alerts.
    pub tags: Vec<String>,
    /// URLs of write-ups and documentation.
    pub references: Vec<String>,
    /// Who wrote the rule (empty: not said).
    pub author: String,
}

/// A finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Which of the detector's [`Rule::rules`] raised it (0: the first, the
    /// rule itself for a rule that is not a pack).
    pub rule: u32,
    /// `@timestamp` of the alert, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The rule's own fields, as a JSON object with ECS / Elastic names.
    pub document: String,
}

/// A detection rule: deterministic, and blind to everything but the events
/// it is given.
///
/// The host calls [`Rule::process`] with batches in arrival order (which is
/// not event-time order) and [`Rule::advance`] when event time has moved on.
///
/// A stateless rule writes [`Rule::info`], [`Rule::create`], usually
/// [`Rule::filters`], and [`Rule::check`] (one event in, maybe one alert
/// out); the rest has defaults. A stateful rule overrides
/// [`Rule::process`], [`Rule::advance`], [`Rule::snapshot`] and
/// [`Rule::restore`].
pub trait Rule: Sized {
    /// The rule's identity and defaults.
    fn info() -> RuleInfo;

    /// Builds a detector from a JSON configuration; `""` means the defaults.
    /// The error names the offending key.
    fn create(config: &str) -> Result<Self, String>;

    /// The rules this detector evaluates, each its own rule to the user;
    /// an [`Alert`] names one by its index here. By default the rule
    /// itself ([`Rule::info`]); a pack (the Sigma component) lists one per
    /// rule its configuration holds. Asked once after [`Rule::create`].
    fn rules(&self) -> Vec<RuleInfo> {
        vec![Self::info()]
    }

    /// What the configuration had that the rule could not use but did not
    /// refuse it for, one sentence each naming the file, line and rule
    /// (none by default). Asked once after [`Rule::create`].
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// The paths into the raw CloudTrail record this rule reads besides
    /// the normalized fields (`requestParameters.bucketName`, or a whole
    /// object such as `requestParameters`), read with
    /// [`Event::get`](crate::Event::get). Paths of filters are declared
    /// with them by the SDK. Asked once after [`Rule::create`]. At most 64
    /// paths; see `wit/detector.wit` for how a path is looked up.
    fn fields(&self) -> Vec<String> {
        Vec::new()
    }

    /// The events this rule wants: an event reaches [`Rule::process`] only
    /// if it passes every filter (none, the default: every event). Asked
    /// once after [`Rule::create`]; it may depend on the configuration but
    /// not on the state. The host checks filters natively, so a rule that
    /// looks at few events does not pay for receiving the rest.
    fn filters(&self) -> Vec<EventFilter> {
        Vec::new()
    }

    /// One event in, at most one alert out: the whole logic of a stateless
    /// rule (used by the default [`Rule::process`]; none by default).
    fn check(&self, event: &Event<'_>) -> Option<Alert> {
        let _ = event;
        None
    }

    /// Consumes a batch of events (only those passing [`Rule::filters`]; a
    /// batch none of whose events pass is not delivered). By default,
    /// [`Rule::check`] on each event.
    fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
        events.iter().filter_map(|e| self.check(e)).collect()
    }

    /// No event older than `watermark_ms` is expected any more; `i64::MAX`
    /// means the input has ended. By default nothing is scheduled.
    fn advance(&mut self, watermark_ms: i64) -> Vec<Alert> {
        let _ = watermark_ms;
        Vec::new()
    }

    /// Serializes the whole state (by default there is none: empty).
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Replaces the state with one from [`Rule::snapshot`] (by default
    /// there is none, and any snapshot, even one from an older stateful
    /// version, restores to nothing).
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

/// The record paths a rule declares: its [`Rule::fields`], then the paths
/// of its `filters` not already there, each once.
pub fn declared_paths(fields: Vec<String>, filters: &[EventFilter]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    let from_filters = filters.iter().filter_map(|f| match &f.target {
        crate::Target::Path(p) => Some(p.clone()),
        crate::Target::Field(_) => None,
    });
    for path in fields.into_iter().chain(from_filters) {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}
