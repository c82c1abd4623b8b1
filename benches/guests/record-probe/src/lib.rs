//! Rule `record-probe`: reads the raw-record paths it is configured with.
//!
//! Not a detection. With `alert = true` it reports, for every event it
//! receives, the kind and text of each configured path (the end-to-end
//! tests compare them with an independent reading of the input); otherwise
//! it only reads them (`trailguard bench` measures what reading record
//! fields costs, natively and as a component).

use serde::{Deserialize, Serialize};
use trailguard_rule_sdk::{
    Alert, AlertBuilder, Event, EventFilter, Rule, RuleInfo, Severity, ValueKind, config,
    export_rule, serde_json,
};

/// The rule's id.
pub const RULE_ID: &str = "record-probe";

/// A filter on a record path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathFilter {
    /// The path.
    pub path: String,
    /// The values that pass.
    pub any_of: Vec<String>,
    /// Compare ignoring case.
    pub ignore_case: bool,
    /// Pass values starting with one of `any_of`.
    pub prefix: bool,
}

/// The configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The paths read.
    pub fields: Vec<String>,
    /// Filters on record paths.
    pub filters: Vec<PathFilter>,
    /// Report every event's values as an alert.
    pub alert: bool,
}

/// The probe: its configuration and how many bytes of values it has read.
pub struct RecordProbe {
    config: Config,
    bytes_read: u64,
}

fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Absent => "absent",
        ValueKind::Null => "null",
        ValueKind::False => "false",
        ValueKind::True => "true",
        ValueKind::Number => "number",
        ValueKind::String => "string",
        ValueKind::Object => "object",
        ValueKind::Array => "array",
        ValueKind::Oversized => "oversized",
    }
}

impl Rule for RecordProbe {
    fn info() -> RuleInfo {
        RuleInfo {
            id: RULE_ID.into(),
            name: "Record field probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            severity: Severity::Low,
            risk_score: 1,
            mitre_techniques: Vec::new(),
            description: "Reads the configured raw-record paths; for tests and benchmarks.".into(),
            default_config: serde_json::to_string(&Config::default()).unwrap_or_default(),
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn create(text: &str) -> Result<Self, String> {
        Ok(RecordProbe {
            config: config::parse(text, Config::default())?,
            bytes_read: 0,
        })
    }

    fn fields(&self) -> Vec<String> {
        self.config.fields.clone()
    }

    fn filters(&self) -> Vec<EventFilter> {
        self.config
            .filters
            .iter()
            .map(|f| {
                let mut filter = EventFilter::path(&f.path, f.any_of.clone());
                if f.ignore_case {
                    filter = filter.ignore_case();
                }
                if f.prefix {
                    filter = filter.prefix();
                }
                filter
            })
            .collect()
    }

    fn process(&mut self, events: &[Event<'_>]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for event in events {
            let values = self.config.fields.iter().map(|path| event.get(path));
            if self.config.alert {
                let values: Vec<serde_json::Value> = values
                    .map(|v| {
                        let kind = v.map_or(ValueKind::Absent, |v| v.kind());
                        serde_json::json!([kind_name(kind), v.map(|v| v.text())])
                    })
                    .collect();
                alerts.push(
                    AlertBuilder::new(event.timestamp_ms)
                        .field("event.id", event.event_id)
                        .field("probe.values", values)
                        .build(),
                );
            } else {
                self.bytes_read += values
                    .flatten()
                    .map(|v| v.text().len() as u64 + 1)
                    .sum::<u64>();
            }
        }
        alerts
    }

    fn snapshot(&self) -> Vec<u8> {
        self.bytes_read.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().unwrap_or_default();
        self.bytes_read = u64::from_le_bytes(bytes);
        Ok(())
    }
}

export_rule!(RecordProbe);
