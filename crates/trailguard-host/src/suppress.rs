//! Alert suppression, as Elastic's: the alerts of one rule that agree on the
//! `group_by` fields within `duration` of the first become one alert.
//!
//! The first alert of a group is written at once, with
//! `kibana.alert.suppression.docs_count` 0. When the group's window ends
//! (event time, the watermark, passes `first + duration`, or the input
//! ends) and alerts were merged into it, the same alert (same
//! `kibana.alert.uuid`) is written again with the final count and the time
//! of the last merged alert: an update, as Elastic updates the suppressed
//! alert in place (`elastic-bulk` writes it as an `index` action that
//! overwrites). Readers keep the last document of an id.
//!
//! The window is anchored at the first alert's time; an alert of the key
//! within `duration` of it, before or after (a late one), is merged. A
//! missing field groups like any value (Elastic's `suppress` strategy for
//! missing fields); alerts lacking a `group_by` field are counted so a
//! misspelt field name shows in the summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trailguard_format::{AlertDocument, field};
use trailguard_rule_sdk::format_timestamp_ms;

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
    anchor_ms: i64,
    earliest_ms: i64,
    latest_ms: i64,
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
    /// Rule id -> alerts that lacked a `group_by` field.
    #[serde(default)]
    missing: BTreeMap<String, u64>,
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
        self.missing = saved.missing;
    }

    /// Whether anything is suppressed or still open.
    pub fn is_active(&self) -> bool {
        !self.settings.is_empty() || !self.open.is_empty()
    }

    /// Per rule, the alerts that lacked one of its `group_by` fields.
    pub fn missing_fields(&self) -> &BTreeMap<String, u64> {
        &self.missing
    }

    /// Takes one alert of `rule` at `time_ms` and appends what to write now:
    /// the alert itself when the rule is not suppressed or the alert opens
    /// a group; nothing when it is merged into an open group (and the
    /// update of an expired group of the same key, if it merged any).
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
        let duration = settings.duration_ms;
        let values: Vec<Value> = settings
            .group_by
            .iter()
            .map(|f| doc.get(f).cloned().unwrap_or(Value::Null))
            .collect();
        if settings.group_by.iter().any(|f| !doc.contains_key(f)) {
            *self.missing.entry(rule.to_owned()).or_default() += 1;
        }
        let key = (rule.to_owned(), Value::from(values).to_string());
        if let Some(group) = self.open.get_mut(&key) {
            if time_ms.abs_diff(group.anchor_ms) < duration.unsigned_abs() {
                group.merged += 1;
                group.earliest_ms = group.earliest_ms.min(time_ms);
                group.latest_ms = group.latest_ms.max(time_ms);
                return;
            }
            if let Some(closed) = self.open.remove(&key) {
                out.extend(self.update(rule, closed));
            }
        }
        let group = Group {
            first: doc.to_json_string(),
            anchor_ms: time_ms,
            earliest_ms: time_ms,
            latest_ms: time_ms,
            merged: 0,
        };
        out.push(self.with_fields(rule, &group));
        self.open.insert(key, group);
    }

    /// Event time has reached `watermark_ms`: closes every group whose
    /// window has ended (all of them for `i64::MAX`), in rule and key order,
    /// writing the update of those that merged alerts.
    pub fn close_until(&mut self, watermark_ms: i64, out: &mut Vec<AlertDocument>) {
        let due: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|((rule, _), group)| {
                let duration = self.settings.get(rule).map_or(0, |s| s.duration_ms);
                watermark_ms == i64::MAX || group.anchor_ms.saturating_add(duration) <= watermark_ms
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some(group) = self.open.remove(&key) {
                out.extend(self.update(&key.0, group));
            }
        }
    }

    /// The group's final alert, if alerts were merged into it.
    fn update(&self, rule: &str, group: Group) -> Option<AlertDocument> {
        (group.merged > 0).then(|| self.with_fields(rule, &group))
    }

    /// The group's first alert with the suppression fields as they stand.
    fn with_fields(&self, rule: &str, group: &Group) -> AlertDocument {
        let mut doc = match serde_json::from_str::<Value>(&group.first) {
            Ok(Value::Object(doc)) => AlertDocument::from(doc),
            // Written by `offer` from an object: cannot happen.
            _ => AlertDocument::new(),
        };
        // As Elastic stores them: each value as a string (a list for a list).
        let terms: Vec<Value> = self
            .settings
            .get(rule)
            .map(|s| s.group_by.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|f| {
                let value = match doc.get(f) {
                    None | Some(Value::Null) => Value::Null,
                    Some(Value::String(s)) => json!([s]),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect(),
                    Some(other) => json!([other.to_string()]),
                };
                json!({"field": f, "value": value})
            })
            .collect();
        doc.insert(field::SUPPRESSED_COUNT.into(), group.merged.into());
        doc.insert(
            field::SUPPRESSION_START.into(),
            format_timestamp_ms(group.earliest_ms).into(),
        );
        doc.insert(
            field::SUPPRESSION_END.into(),
            format_timestamp_ms(group.latest_ms).into(),
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
        doc.into()
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
    fn the_first_alert_goes_out_at_once_and_the_count_when_the_window_ends() {
        let mut s = suppressor();
        let mut out = Vec::new();
        s.offer("r", 0, alert("a", 1), &mut out);
        assert_eq!(out.len(), 1, "written at once");
        assert_eq!(out[0]["n"], 1);
        assert_eq!(out[0][field::SUPPRESSED_COUNT], 0);
        s.offer("r", 10 * MIN, alert("a", 2), &mut out);
        s.offer("r", 20 * MIN, alert("b", 3), &mut out);
        s.offer("r", 59 * MIN, alert("a", 4), &mut out);
        assert_eq!(out.len(), 2, "b's first alert; a's are merged");
        assert_eq!(out[1]["n"], 3);
        s.close_until(59 * MIN, &mut out);
        assert_eq!(out.len(), 2);
        s.close_until(60 * MIN, &mut out);
        assert_eq!(out.len(), 3, "a's window ended: its update");
        assert_eq!(out[2]["n"], 1, "the first alert stands for the group");
        assert_eq!(out[2][field::SUPPRESSED_COUNT], 2);
        assert_eq!(out[2][field::SUPPRESSION_START], "1970-01-01T00:00:00Z");
        assert_eq!(out[2][field::SUPPRESSION_END], "1970-01-01T00:59:00Z");
        assert_eq!(
            out[2][field::SUPPRESSION_TERMS],
            json!([{"field": "user.name", "value": ["a"]}])
        );
        s.close_until(i64::MAX, &mut out);
        assert_eq!(out.len(), 3, "b merged nothing: no update");
    }

    #[test]
    fn the_window_is_anchored_at_the_first_alert() {
        let mut s = suppressor();
        let mut out = Vec::new();
        s.offer("r", 100 * MIN, alert("a", 1), &mut out);
        // A late alert within the window before the anchor merges, and does
        // not move the window.
        s.offer("r", 50 * MIN, alert("a", 2), &mut out);
        s.offer("r", 159 * MIN, alert("a", 3), &mut out);
        assert_eq!(out.len(), 1);
        // One far before opens its own group (after closing this one).
        s.offer("r", 10 * MIN, alert("a", 4), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1][field::SUPPRESSED_COUNT], 2);
        assert_eq!(out[1][field::SUPPRESSION_START], "1970-01-01T00:50:00Z");
        assert_eq!(out[1][field::SUPPRESSION_END], "1970-01-01T02:39:00Z");
        assert_eq!(out[2]["n"], 4);
    }

    #[test]
    fn other_rules_pass_through_state_survives_and_missing_fields_are_counted() {
        let mut s = suppressor();
        let mut out = Vec::new();
        s.offer("other", 0, alert("a", 1), &mut out);
        assert_eq!(out.len(), 1);
        s.offer("r", 0, alert("a", 2), &mut out);
        let Value::Object(no_user) = json!({"n": 9}) else {
            unreachable!()
        };
        s.offer("r", 0, no_user.into(), &mut out);
        let bytes = postcard::to_allocvec(&s).expect("serialize");
        let mut back = suppressor();
        back.restore_groups(postcard::from_bytes(&bytes).expect("deserialize"));
        back.offer("r", MIN, alert("a", 3), &mut out);
        back.close_until(i64::MAX, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[3][field::SUPPRESSED_COUNT], 1);
        assert_eq!(back.missing_fields()["r"], 1);
        // A restored group is closed even if its rule is no longer suppressed.
        let mut unset = Suppressor::default();
        unset.restore_groups(postcard::from_bytes(&bytes).expect("deserialize"));
        assert!(unset.is_active());
    }
}
