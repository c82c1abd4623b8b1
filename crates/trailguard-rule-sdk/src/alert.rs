//! Building an alert's document.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Alert, Event, Field};

/// Builds an [`Alert`] field by field, with ECS / Elastic names as keys
/// (`user.name`, `source.ip`, `Esql.total_events_all_asns`, ...). The host
/// adds the rule's metadata (`rule.*`, `severity`, `risk_score`).
#[derive(Clone, Debug)]
pub struct AlertBuilder {
    rule: u32,
    timestamp_ms: i64,
    fields: Map<String, Value>,
}

impl AlertBuilder {
    /// An alert at `timestamp_ms` (the alert's `@timestamp`).
    pub fn new(timestamp_ms: i64) -> Self {
        AlertBuilder {
            rule: 0,
            timestamp_ms,
            fields: Map::new(),
        }
    }

    /// An alert about `event`, at its time, carrying its normalized fields
    /// under their ECS names (absent ones left out): `event.id`,
    /// `event.action`, `user.name`, `source.ip`, `source.as.number`,
    /// `event.outcome`, ... Add the rule's own fields with
    /// [`AlertBuilder::field`].
    pub fn from_event(event: &Event<'_>) -> Self {
        let mut builder = AlertBuilder::new(event.timestamp_ms);
        for field in Field::ALL {
            if let Some(value) = field.of(event) {
                builder = builder.field(field.ecs_name(), value);
            }
        }
        if let Some(number) = event.source_as_number {
            builder = builder.field("source.as.number", number);
        }
        builder.field("event.outcome", event.outcome.as_str())
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

    /// Raised by the rule at `index` of [`Rule::rules`](crate::Rule::rules)
    /// (a pack's; a plain rule's alerts are its own, index 0).
    pub fn rule(mut self, index: u32) -> Self {
        self.rule = index;
        self
    }

    /// The finished alert.
    pub fn build(self) -> Alert {
        Alert {
            rule: self.rule,
            timestamp_ms: self.timestamp_ms,
            // Straight into the string (the same text): `Value`'s
            // `Display` goes through the formatting machinery, which the
            // profile of a rule raising many alerts showed.
            document: serde_json::to_string(&self.fields).unwrap_or_else(|_| "{}".to_owned()),
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

    #[test]
    fn an_alert_can_start_from_an_events_fields() {
        let event = Event {
            user_name: Some("ci"),
            source_as_number: Some(16509),
            outcome: crate::Outcome::Failure,
            ..Event::at(9)
        };
        let alert = AlertBuilder::from_event(&event).field("x", 1).build();
        assert_eq!(alert.timestamp_ms, 9);
        let doc: Value = serde_json::from_str(&alert.document).expect("JSON");
        assert_eq!(
            doc,
            serde_json::json!({"user.name": "ci", "source.as.number": 16509, "event.outcome": "failure", "x": 1})
        );
    }
}
