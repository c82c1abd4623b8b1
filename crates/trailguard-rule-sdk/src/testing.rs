//! Testing a rule natively, the way the host runs it.
//!
//! [`TestEvent`] is an owned event with a builder; [`Harness`] feeds events
//! to a [`Rule`] in batches, announces the watermark after each batch (newest
//! event time minus the allowed lateness, as the host does) and collects the
//! alerts, parsed. The same events can be run through the built component
//! with `trailguard_host` to prove both agree.

use serde_json::Value;

use crate::{Alert, Event, EventFilter, Outcome, Rule};

/// An event that owns its strings; [`TestEvent::view`] lends it to a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TestEvent {
    pub timestamp_ms: i64,
    pub event_id: Option<String>,
    pub event_action: Option<String>,
    pub cloud_account_id: Option<String>,
    pub user_name: Option<String>,
    pub identity_type: Option<String>,
    pub source_ip: Option<String>,
    pub source_as_number: Option<u32>,
    pub source_as_organization: Option<String>,
    pub user_agent: Option<String>,
    pub user_changes_name: Option<String>,
    pub outcome: Outcome,
}

impl TestEvent {
    /// A successful call of `action` at `timestamp_ms` by `user` (an
    /// `AssumedRole` in account `123456789012`), with no source yet.
    pub fn new(timestamp_ms: i64, user: &str, action: &str) -> Self {
        TestEvent {
            timestamp_ms,
            event_id: Some(format!("{timestamp_ms}-{user}-{action}")),
            event_action: Some(action.into()),
            cloud_account_id: Some("123456789012".into()),
            user_name: Some(user.into()),
            identity_type: Some("AssumedRole".into()),
            source_ip: None,
            source_as_number: None,
            source_as_organization: None,
            user_agent: Some("aws-cli/2.15.30".into()),
            user_changes_name: None,
            outcome: Outcome::Success,
        }
    }

    /// Sets the source: address, AS number and organization.
    pub fn from_network(mut self, ip: &str, as_number: u32, organization: &str) -> Self {
        self.source_ip = Some(ip.into());
        self.source_as_number = Some(as_number);
        self.source_as_organization = Some(organization.into());
        self
    }

    /// Sets the identity type (`None`: absent).
    pub fn identity_type(mut self, kind: Option<&str>) -> Self {
        self.identity_type = kind.map(String::from);
        self
    }

    /// Sets `event.outcome`.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The borrowed view a rule reads.
    pub fn view(&self) -> Event<'_> {
        Event {
            event_id: self.event_id.as_deref(),
            event_action: self.event_action.as_deref(),
            cloud_account_id: self.cloud_account_id.as_deref(),
            user_name: self.user_name.as_deref(),
            identity_type: self.identity_type.as_deref(),
            source_address: self.source_ip.as_deref(),
            source_ip: self.source_ip.as_deref(),
            source_as_number: self.source_as_number,
            source_as_organization: self.source_as_organization.as_deref(),
            user_agent: self.user_agent.as_deref(),
            user_changes_name: self.user_changes_name.as_deref(),
            outcome: self.outcome,
            ..Event::at(self.timestamp_ms)
        }
    }
}

/// An alert with its document parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct TestAlert {
    /// `@timestamp`, ms since the epoch.
    pub timestamp_ms: i64,
    /// The rule's fields.
    pub document: Value,
}

impl TestAlert {
    fn parse(alert: Alert) -> TestAlert {
        TestAlert {
            timestamp_ms: alert.timestamp_ms,
            document: serde_json::from_str(&alert.document).unwrap_or(Value::Null),
        }
    }
}

/// Runs a rule natively with the host's batching and watermark.
pub struct Harness<R> {
    rule: R,
    filters: Vec<EventFilter>,
    lateness_ms: i64,
    batch: usize,
    newest: Option<i64>,
}

impl<R: Rule> Harness<R> {
    /// A harness for a rule created from `config` (`""`: defaults), with the
    /// host's defaults: batches of 1024, 15 minutes of allowed lateness.
    pub fn new(config: &str) -> Result<Self, String> {
        let rule = R::create(config)?;
        Ok(Harness {
            filters: rule.filters(),
            rule,
            lateness_ms: 15 * 60_000,
            batch: 1024,
            newest: None,
        })
    }

    /// Sets the allowed lateness.
    pub fn lateness_ms(mut self, ms: i64) -> Self {
        self.lateness_ms = ms;
        self
    }

    /// Sets the batch size.
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// Feeds `events` in arrival order and returns the alerts emitted so far.
    pub fn push(&mut self, events: &[TestEvent]) -> Vec<TestAlert> {
        let mut alerts = Vec::new();
        for chunk in events.chunks(self.batch) {
            // As the host does: only events passing the rule's filters, and
            // no call when none does.
            let views: Vec<Event<'_>> = chunk
                .iter()
                .map(TestEvent::view)
                .filter(|e| self.filters.iter().all(|f| f.accepts(e)))
                .collect();
            if !views.is_empty() {
                alerts.extend(self.rule.process(&views));
            }
            let newest = chunk.iter().map(|e| e.timestamp_ms).max();
            self.newest = self.newest.max(newest);
            if let Some(n) = self.newest {
                alerts.extend(self.rule.advance(n.saturating_sub(self.lateness_ms)));
            }
        }
        alerts.into_iter().map(TestAlert::parse).collect()
    }

    /// Ends the input: every remaining evaluation runs.
    pub fn finish(&mut self) -> Vec<TestAlert> {
        self.rule
            .advance(i64::MAX)
            .into_iter()
            .map(TestAlert::parse)
            .collect()
    }

    /// Feeds `events` and ends the input: all alerts.
    pub fn run(mut self, events: &[TestEvent]) -> Vec<TestAlert> {
        let mut alerts = self.push(events);
        alerts.extend(self.finish());
        alerts
    }

    /// The rule, for snapshots or inspection.
    pub fn rule(&mut self) -> &mut R {
        &mut self.rule
    }
}
