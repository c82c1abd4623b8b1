//! Testing a rule natively, the way the host runs it.
//!
//! [`TestEvent`] is an owned event with a builder; [`Harness`] feeds events
//! to a [`Rule`] in batches, announces the watermark after each batch (newest
//! event time minus the allowed lateness, as the host does) and collects the
//! alerts, parsed. The same events can be run through the built component
//! with `trailguard_host` to prove both agree.

use crate::{
    Alert, Event, EventFilter, Outcome, OwnedValue, RecordFields, Rule, Value, declared_paths,
};

macro_rules! define_test_event {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        /// An event that owns its strings; [`TestEvent::view`] lends it to a
        /// rule (with the record fields a rule declared: [`Harness`] does).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct TestEvent {
            /// `@timestamp`, ms since the epoch.
            pub timestamp_ms: i64,
            $(#[doc = $doc] pub $name: Option<String>,)*
            /// `source.as.number`.
            pub source_as_number: Option<u32>,
            /// `event.outcome`.
            pub outcome: Outcome,
            /// Raw record fields by path (set with [`TestEvent::field`]).
            pub record: Vec<(String, OwnedValue)>,
        }

        impl TestEvent {
            /// An event at `timestamp_ms` with every other field absent.
            pub fn at(timestamp_ms: i64) -> Self {
                TestEvent {
                    timestamp_ms,
                    $($name: None,)*
                    source_as_number: None,
                    outcome: Outcome::Unknown,
                    record: Vec::new(),
                }
            }

            /// The borrowed view of the normalized fields, with `record`.
            pub fn view_with<'a>(&'a self, record: RecordFields<'a>) -> Event<'a> {
                Event {
                    timestamp_ms: self.timestamp_ms,
                    $($name: self.$name.as_deref(),)*
                    source_as_number: self.source_as_number,
                    outcome: self.outcome,
                    record,
                }
            }
        }
    };
}
crate::for_each_string_field!(define_test_event);

impl TestEvent {
    /// A successful call of `action` at `timestamp_ms` by `user` (an
    /// `AssumedRole` in account `123456789012`), with no source yet.
    pub fn new(timestamp_ms: i64, user: &str, action: &str) -> Self {
        TestEvent {
            event_id: Some(format!("{timestamp_ms}-{user}-{action}")),
            event_action: Some(action.into()),
            cloud_account_id: Some("123456789012".into()),
            user_name: Some(user.into()),
            identity_type: Some("AssumedRole".into()),
            user_agent: Some("aws-cli/2.15.30".into()),
            outcome: Outcome::Success,
            ..TestEvent::at(timestamp_ms)
        }
    }

    /// Sets the source: address, AS number and organization.
    pub fn from_network(mut self, ip: &str, as_number: u32, organization: &str) -> Self {
        self.source_address = Some(ip.into());
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

    /// Sets the raw record's value at `path` (as the host would extract
    /// it: `json!("x")`, `json!({"a": 1})`, `json!(null)`, ...).
    pub fn field(mut self, path: &str, value: serde_json::Value) -> Self {
        self.record.retain(|(p, _)| p != path);
        self.record
            .push((path.to_owned(), OwnedValue::from_json(&value)));
        self
    }

    /// The borrowed view of the normalized fields (no record fields).
    pub fn view(&self) -> Event<'_> {
        self.view_with(RecordFields::default())
    }

    /// The values of `paths` in this event's record, in that order.
    pub fn values(&self, paths: &[String]) -> Vec<Option<Value<'_>>> {
        paths
            .iter()
            .map(|p| {
                self.record
                    .iter()
                    .find(|(q, _)| q == p)
                    .and_then(|(_, v)| v.view())
            })
            .collect()
    }
}

/// An alert with its document parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct TestAlert {
    /// Which of the rule's [`Rule::rules`] raised it.
    pub rule: u32,
    /// `@timestamp`, ms since the epoch.
    pub timestamp_ms: i64,
    /// The rule's fields.
    pub document: serde_json::Value,
}

impl TestAlert {
    fn parse(alert: Alert) -> TestAlert {
        TestAlert {
            rule: alert.rule,
            timestamp_ms: alert.timestamp_ms,
            document: serde_json::from_str(&alert.document).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Runs a rule natively with the host's batching and watermark.
pub struct Harness<R> {
    rule: R,
    paths: Vec<String>,
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
        let filters = rule.filters();
        Ok(Harness {
            paths: declared_paths(rule.fields(), &filters),
            filters,
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
            let values: Vec<Vec<Option<Value<'_>>>> =
                chunk.iter().map(|e| e.values(&self.paths)).collect();
            let views: Vec<Event<'_>> = chunk
                .iter()
                .zip(&values)
                .map(|(e, v)| e.view_with(RecordFields::new(&self.paths, v)))
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
