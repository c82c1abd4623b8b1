//! Building an alert's document.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Alert;

/// Builds an [`Alert`] field by field, with ECS / Elastic names as keys
/// (`user.name`, `source.ip`, `Esql.total_events_all_asns`, ...). The host
/// adds the rule's metadata (`rule.*`, `severity`, `risk_score`).
#[derive(Clone, Debug)]
pub struct AlertBuilder {
    timestamp_ms: i64,
    fields: Map<String, Value>,
}

impl AlertBuilder {
    /// An alert at `timestamp_ms` (the alert's `@timestamp`).
    pub fn new(timestamp_ms: i64) -> Self {
        AlertBuilder {
            timestamp_ms,
            fields: Map::new(),
        }
    }

    /// Sets a field; `None` values are written as JSON `null`. A value that
    /// cannot be represented as JSON (a map with non-string keys) is written
    /// as `null` too.
    pub fn field(mut self, name: &str, value: impl Serialize) -> Self {
        self.fields.insert(
            name.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// The finished alert.
    pub fn build(self) -> Alert {
        Alert {
            timestamp_ms: self.timestamp_ms,
            document: Value::Object(self.fields).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_a_json_object() {
        let alert = AlertBuilder::new(5)
            .field("user.name", "ci")
            .field("count", 3)
            .field("missing", None::<&str>)
            .field("list", ["a", "b"])
            .build();
        assert_eq!(alert.timestamp_ms, 5);
        let doc: Value = serde_json::from_str(&alert.document).expect("JSON");
        assert_eq!(
            doc,
            serde_json::json!({"user.name": "ci", "count": 3, "missing": null, "list": ["a", "b"]})
        );
    }
}
