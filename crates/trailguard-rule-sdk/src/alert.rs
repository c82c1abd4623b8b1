//! Building an alert's document.

use std::borrow::Cow;
use std::ops::Range;

use serde::Serialize;

use crate::{Alert, Event, Field};

/// Builds an [`Alert`] field by field, with ECS / Elastic names as keys
/// (`user.name`, `source.ip`, `Esql.total_events_all_asns`, ...). The host
/// adds the rule's metadata (`rule.*`, `severity`, `risk_score`).
///
/// Each value is serialized once, when it is set, and the document is put
/// together from those texts: a rule raising an alert for most events (a
/// Sigma rule matching every call by an assumed role) spends its time on
/// this, and a map of JSON values built and then serialized cost about twice
/// as much (docs/performance.md).
#[derive(Clone, Debug)]
pub struct AlertBuilder {
    rule: u32,
    timestamp_ms: i64,
    /// Each field's name and where its JSON text is in `values`, in the
    /// order they were set.
    fields: Vec<(Cow<'static, str>, Range<usize>)>,
    /// The JSON text of every value set, one after the other.
    values: Vec<u8>,
}

impl AlertBuilder {
    /// An alert at `timestamp_ms` (the alert's `@timestamp`).
    pub fn new(timestamp_ms: i64) -> Self {
        AlertBuilder {
            rule: 0,
            timestamp_ms,
            fields: Vec::new(),
            values: Vec::new(),
        }
    }

    /// An alert about `event`, at its time, carrying its normalized fields
    /// under their ECS names (absent ones left out): `event.id`,
    /// `event.action`, `user.name`, `source.ip`, `source.as.number`,
    /// `event.outcome`, ... Add the rule's own fields with
    /// [`AlertBuilder::field`].
    pub fn from_event(event: &Event<'_>) -> Self {
        let mut builder = AlertBuilder::new(event.timestamp_ms);
        builder.fields.reserve(Field::ALL.len() + 4);
        builder.values.reserve(512);
        for field in Field::ALL {
            if let Some(value) = field.of(event) {
                builder.put(Cow::Borrowed(field.ecs_name()), value);
            }
        }
        if let Some(number) = event.source_as_number {
            builder.put(Cow::Borrowed("source.as.number"), number);
        }
        builder.put(Cow::Borrowed("event.outcome"), event.outcome.as_str());
        builder
    }

    /// Sets a field (setting it again replaces the value); `None` values
    /// are written as JSON `null`. A value that cannot be represented as
    /// JSON (a map with non-string keys) is written as `null` too.
    pub fn field(mut self, name: &str, value: impl Serialize) -> Self {
        self.put(Cow::Owned(name.to_owned()), value);
        self
    }

    fn put(&mut self, name: Cow<'static, str>, value: impl Serialize) {
        let start = self.values.len();
        if serde_json::to_writer(&mut self.values, &value).is_err() {
            self.values.truncate(start);
            self.values.extend_from_slice(b"null");
        }
        self.fields.push((name, start..self.values.len()));
    }

    /// Raised by the rule at `index` of [`Rule::rules`](crate::Rule::rules)
    /// (a pack's; a plain rule's alerts are its own, index 0).
    pub fn rule(mut self, index: u32) -> Self {
        self.rule = index;
        self
    }

    /// The finished alert: a JSON object whose members are sorted by name
    /// (the same fields give the same text, hence the same alert id), a name
    /// set twice holding its last value.
    pub fn build(mut self) -> Alert {
        // Stable: of equal names, the last set stays last.
        self.fields.sort_by(|a, b| a.0.cmp(&b.0));
        let names: usize = self.fields.iter().map(|(name, _)| name.len() + 4).sum();
        let mut out = Vec::with_capacity(self.values.len() + names + 2);
        out.push(b'{');
        for (i, (name, span)) in self.fields.iter().enumerate() {
            if self.fields.get(i + 1).is_some_and(|next| next.0 == *name) {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            // A string always serializes.
            let _ = serde_json::to_writer(&mut out, name.as_ref());
            out.push(b':');
            out.extend_from_slice(&self.values[span.clone()]);
        }
        out.push(b'}');
        Alert {
            rule: self.rule,
            timestamp_ms: self.timestamp_ms,
            // serde_json writes UTF-8 only, so the fallback is never taken.
            document: String::from_utf8(out).unwrap_or_else(|_| "{}".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
    fn a_field_set_again_keeps_its_last_value_and_members_are_sorted() {
        let alert = AlertBuilder::new(1)
            .field("b", 1)
            .field("a\"quoted", "x")
            .field("b", 2)
            .field("c", serde_json::json!({"z": 1, "y": [true, null]}))
            .field("b", 3)
            .build();
        assert_eq!(
            alert.document,
            r#"{"a\"quoted":"x","b":3,"c":{"y":[true,null],"z":1}}"#
        );
        assert_eq!(AlertBuilder::new(1).build().document, "{}");
    }

    #[test]
    fn a_value_json_cannot_represent_is_null() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 2);
        let alert = AlertBuilder::new(1)
            .field("bad", bad)
            .field("ok", 1)
            .build();
        assert_eq!(alert.document, r#"{"bad":null,"ok":1}"#);
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
