//! The raw-record paths a rule declared: checked against the contract's
//! limits, and found among the values each event carries.

use std::borrow::Cow;

use trailguard_ingest::{NormalizedEvent, RecordPaths};
use trailguard_rule_sdk::{OwnedValue, Value};

use crate::HostError;
use crate::info::is_unprintable;

/// Most paths a rule may declare.
pub const MAX_PATHS: usize = 64;
/// Longest path, in bytes.
pub const MAX_PATH_BYTES: usize = 256;

/// A rule's declared paths, and where they are among the paths an event's
/// values belong to (cached for the list most events share).
#[derive(Clone, Debug, Default)]
pub(crate) struct RecordMap {
    declared: Vec<String>,
    seen: RecordPaths,
    index: Vec<Option<usize>>,
}

impl RecordMap {
    /// `paths` as declared by rule `rule`, refused if over the limits or
    /// not a path (empty, an empty segment, control characters).
    pub(crate) fn checked(rule: &str, paths: Vec<String>) -> Result<RecordMap, HostError> {
        let refuse = |message: String| HostError::Rule {
            rule: rule.to_owned(),
            call: "fields",
            message,
        };
        if paths.len() > MAX_PATHS {
            return Err(refuse(format!(
                "declared {} record paths, over the limit of {MAX_PATHS}",
                paths.len()
            )));
        }
        for (k, path) in paths.iter().enumerate() {
            if path.len() > MAX_PATH_BYTES {
                return Err(refuse(format!(
                    "record path {k} is {} bytes long, over the limit of {MAX_PATH_BYTES}",
                    path.len()
                )));
            }
            if path.split('.').any(str::is_empty) || path.chars().any(is_unprintable) {
                return Err(refuse(format!(
                    "record path {k} ({:?}) is not a dotted path of keys",
                    crate::info::printable(path, 64)
                )));
            }
            if paths[..k].contains(path) {
                return Err(refuse(format!(
                    "record path {k} ({path}) is declared twice"
                )));
            }
        }
        Ok(RecordMap {
            declared: paths,
            ..RecordMap::default()
        })
    }

    /// The declared paths, in order.
    pub(crate) fn declared(&self) -> &[String] {
        &self.declared
    }

    /// Caches where the declared paths are in `paths` (the list most of the
    /// coming events carry).
    pub(crate) fn refresh(&mut self, paths: &RecordPaths) {
        if self.declared.is_empty() || self.seen.same(paths) {
            return;
        }
        self.index = Self::locate(&self.declared, paths);
        self.seen = paths.clone();
    }

    fn locate(declared: &[String], paths: &RecordPaths) -> Vec<Option<usize>> {
        declared
            .iter()
            .map(|d| paths.paths().iter().position(|p| p == d))
            .collect()
    }

    /// Where each declared path is among `event`'s values.
    pub(crate) fn index_for(&self, event: &NormalizedEvent) -> Cow<'_, [Option<usize>]> {
        let paths = event.record.paths();
        if self.seen.same(paths) {
            Cow::Borrowed(&self.index)
        } else {
            Cow::Owned(Self::locate(&self.declared, paths))
        }
    }

    /// The value of declared path `k` in `event`.
    pub(crate) fn value<'e>(&self, event: &'e NormalizedEvent, k: usize) -> Option<Value<'e>> {
        let i = (*self.index_for(event).get(k)?)?;
        event.record.at(i)?.view()
    }

    /// The values of every declared path in `event`, in order.
    pub(crate) fn values<'s, 'e: 's>(
        &'s self,
        event: &'e NormalizedEvent,
    ) -> impl Iterator<Item = Option<&'e OwnedValue>> + 's {
        let index = self.index_for(event);
        (0..self.declared.len()).map(move |k| {
            let i = (*index.get(k)?)?;
            event.record.at(i)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(paths: &RecordPaths, record: &str) -> NormalizedEvent {
        NormalizedEvent {
            record: paths.extract(record),
            ..NormalizedEvent::at(0)
        }
    }

    #[test]
    fn declared_paths_are_found_whatever_list_the_event_carries() {
        let mut map = RecordMap::checked("r", vec!["b".into(), "a".into()]).expect("ok");
        let one = RecordPaths::new(["a".to_owned(), "x".to_owned(), "b".to_owned()]);
        let other = RecordPaths::new(["b".to_owned()]);
        map.refresh(&one);
        let e1 = event(&one, r#"{"a":1,"b":"two"}"#);
        let e2 = event(&other, r#"{"a":1,"b":"three"}"#);
        assert_eq!(map.value(&e1, 0), Some(Value::String("two")));
        assert_eq!(map.value(&e1, 1), Some(Value::Number("1")));
        assert_eq!(
            map.value(&e2, 0),
            Some(Value::String("three")),
            "another list"
        );
        assert_eq!(map.value(&e2, 1), None, "not extracted for that event");
        assert_eq!(map.values(&e1).count(), 2);
    }

    #[test]
    fn paths_over_the_limits_or_malformed_are_refused_naming_the_rule() {
        let many = (0..=MAX_PATHS).map(|i| format!("p{i}")).collect();
        let e = RecordMap::checked("greedy", many).expect_err("too many");
        assert!(
            e.to_string().contains("greedy") && e.to_string().contains("limit of 64"),
            "{e}"
        );
        assert!(RecordMap::checked("r", vec!["a".repeat(MAX_PATH_BYTES + 1)]).is_err());
        for bad in ["", "a..b", ".a", "a.", "a\u{1b}[2J"] {
            assert!(
                RecordMap::checked("r", vec![bad.into()]).is_err(),
                "{bad:?}"
            );
        }
        assert!(RecordMap::checked("r", vec!["a".into(), "a".into()]).is_err());
        assert!(RecordMap::checked("r", vec!["requestParameters.x-amz-acl".into()]).is_ok());
    }
}
