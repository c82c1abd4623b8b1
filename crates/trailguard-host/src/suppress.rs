//! Alert suppression, as Elastic's: the alerts of one rule that agree on the
//! `group_by` fields within `duration` of the first become one alert (the
//! first), whose `kibana.alert.suppression.docs_count` says how many more
//! there were.
//!
//! A group is open from its first alert's time `t0` until `t0 + duration`.
//! It is written when event time (the watermark) passes its end, when an
//! alert of the same key comes after its end, or when the input ends; so a
//! suppressed rule's alerts come out up to `duration` later than they would
//! without suppression. A missing field groups like any value (Elastic's
//! `suppress` strategy for missing fields).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use trailguard_rule_sdk::format_timestamp_ms;

use trailguard_format::{AlertDocument, field};

/// How one rule's alerts are suppressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// Alert fields whose values make the group (`user.name`, ...).
    pub group_by: Vec<String>,
    /// How long a group stays open after its first alert, in milliseconds.
    pub duration_ms: i64,
}

/// An open group: the first alert (as JSON text, so the state serializes
/// with any serde format) and what was merged into it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Group {
    first: String,
    start_ms: i64,
    end_ms: i64,
    merged: u64,
}

/// The suppression state of a pipeline: per rule, its settings and open
/// groups.
///
/// Only the open groups are serialized (for checkpoints); the settings come
/// from the configuration of the run that loads them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Suppressor {
    #[serde(skip)]
    settings: BTreeMap<String, Suppression>,
    /// (rule id, group key as JSON) -> group.
    open: BTreeMap<(String, String), Group>,
}

impl Suppressor {
    /// Suppresses `rule`'s alerts as `settings` says.
    pub fn set(&mut self, rule: &str, settings: Suppression) {
        self.settings.insert(rule.to_owned(), settings);
    }

    /// Takes over the open groups of a saved suppressor (from a
    /// checkpoint), keeping this one's settings.
    pub fn restore_groups(&mut self, saved: Suppressor) {
        self.open = saved.open;
    }

    /// Whether any rule is suppressed.
    pub fn is_active(&self) -> bool {
        !self.settings.is_empty()
    }

    /// Takes one alert of `rule` at `time_ms`: returns what to write now (the
    /// alert itself when the rule is not suppressed; a closed group when
    /// this alert opens the next one of its key).
    pub fn offer(
        &mut self,
        rule: &str,
        time_ms: i64,
        doc: AlertDocument,
        out: &mut Vec<AlertDocument>,
    ) {
        let Some(settings) = self.settings.get(rule) else {
            out.push(doc);
            return;
        };
        let key: Vec<&Value> = settings
            .group_by
            .iter()
            .map(|f| doc.get(f).unwrap_or(&Value::Null))
            .collect();
        let key = (
            rule.to_owned(),
            Value::from_iter(key.into_iter().cloned()).to_string(),
        );
        if let Some(group) = self.open.get_mut(&key) {
            if time_ms < group.start_ms.saturating_add(settings.duration_ms) {
                group.merged += 1;
                group.start_ms = group.start_ms.min(time_ms);
                group.end_ms = group.end_ms.max(time_ms);
                return;
            }
            if let Some(closed) = self.open.remove(&key) {
                out.push(self.written(rule, closed));
            }
        }
        self.open.insert(
            key,
            Group {
                first: Value::Object(doc).to_string(),
                start_ms: time_ms,
                end_ms: time_ms,
                merged: 0,
            },
        );
    }

    /// Event time has reached `watermark_ms`: writes every group whose
    /// window has ended (all of them for `i64::MAX`), in rule and key order.
    pub fn close_until(&mut self, watermark_ms: i64, out: &mut Vec<AlertDocument>) {
        let due: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|((rule, _), group)| {
                let duration = self.settings.get(rule).map_or(0, |s| s.duration_ms);
                watermark_ms == i64::MAX || group.start_ms.saturating_add(duration) <= watermark_ms
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some(group) = self.open.remove(&key) {
                out.push(self.written(&key.0, group));
            }
        }
    }

    /// The group's first alert with the suppression fields.
    fn written(&self, rule: &str, group: Group) -> AlertDocument {
        let mut doc = match serde_json::from_str::<Value>(&group.first) {
            Ok(Value::Object(doc)) => doc,
            // Written by `offer` from an object: cannot happen.
            _ => Map::new(),
        };
        let terms: Vec<Value> = self
            .settings
            .get(rule)
            .map(|s| s.group_by.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|f| json!({"field": f, "value": doc.get(f).cloned().unwrap_or(Value::Null)}))
            .collect();
        doc.insert(field::SUPPRESSED_COUNT.into(), group.merged.into());
        doc.insert(
            field::SUPPRESSION_START.into(),
            format_timestamp_ms(group.start_ms).into(),
        );
        doc.insert(
            field::SUPPRESSION_END.into(),
            format_timestamp_ms(group.end_ms).into(),
        );
        doc.insert(field::SUPPRESSION_TERMS.into(), terms.into());
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn alert(user: &str, n: u32) -> AlertDocument {
        let Value::Object(doc) = json!({"user.name": user, "n": n}) else {
            unreachable!()
        };
        doc
    }

    fn suppressor() -> Suppressor {
        let mut s = Suppressor::default();
        s.set(
            "r",
            Suppression {
                group_by: vec!["user.name".into()],
                duration_ms: 60 * MIN,
            },
        );
        s
    }

    #[test]
    fn same_key_within_the_window_is_one_alert_with_a_count() {
        let mut s = suppressor();
        let mut out = Vec::new();
        s.offer("r", 0, alert("a", 1), &mut out);
        s.offer("r", 10 * MIN, alert("a", 2), &mut out);
        s.offer("r", 20 * MIN, alert("b", 3), &mut out);
        s.offer("r", 59 * MIN, alert("a", 4), &mut out);
        assert!(out.is_empty(), "held until the window ends");
        s.close_until(59 * MIN, &mut out);
        assert!(out.is_empty());
        s.close_until(60 * MIN, &mut out);
        assert_eq!(out.len(), 1, "a's window ended, b's not");
        assert_eq!(out[0]["n"], 1, "the first alert represents the group");
        assert_eq!(out[0][field::SUPPRESSED_COUNT], 2);
        assert_eq!(out[0][field::SUPPRESSION_START], "1970-01-01T00:00:00Z");
        assert_eq!(out[0][field::SUPPRESSION_END], "1970-01-01T00:59:00Z");
        assert_eq!(
            out[0][field::SUPPRESSION_TERMS],
            json!([{"field": "user.name", "value": "a"}])
        );
        s.close_until(i64::MAX, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["n"], 3);
        assert_eq!(out[1][field::SUPPRESSED_COUNT], 0);
    }

    #[test]
    fn an_alert_after_the_window_opens_a_new_group() {
        let mut s = suppressor();
        let mut out = Vec::new();
        s.offer("r", 0, alert("a", 1), &mut out);
        s.offer("r", 60 * MIN, alert("a", 2), &mut out);
        assert_eq!(out.len(), 1, "the first group is written");
        assert_eq!(out[0]["n"], 1);
        s.close_until(i64::MAX, &mut out);
        assert_eq!(out[1]["n"], 2);
    }

    #[test]
    fn other_rules_pass_through_and_state_survives_serialization() {
        let mut s = suppressor();
        let mut out = Vec::new();
        s.offer("other", 0, alert("a", 1), &mut out);
        assert_eq!(out.len(), 1);
        s.offer("r", 0, alert("a", 2), &mut out);
        let bytes = postcard::to_allocvec(&s).expect("serialize");
        let mut back = suppressor();
        back.restore_groups(postcard::from_bytes(&bytes).expect("deserialize"));
        back.offer("r", MIN, alert("a", 3), &mut out);
        back.close_until(i64::MAX, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1][field::SUPPRESSED_COUNT], 1);
    }
}
