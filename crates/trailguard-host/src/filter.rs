//! A rule's event filters, checked by the host before a batch crosses into
//! the rule (see `Rule::filters` in the SDK).
//!
//! Each filter's values become one anchored Aho-Corasick automaton, so an
//! event costs time proportional to its value's length, not to the number
//! or length of the listed values: a rule cannot make the host's per-event
//! check expensive by listing many long values.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};
use trailguard_ingest::{EventTest, NormalizedEvent};
use trailguard_rule_sdk::{Comparison, EventFilter, Field, Target};

use crate::HostError;
use crate::record::RecordMap;

/// Most filters a rule may declare.
const MAX_FILTERS: usize = 16;
/// Most values one filter may list.
const MAX_VALUES: usize = 1024;
/// Longest value, in bytes.
const MAX_VALUE_BYTES: usize = 1024;
/// Most bytes of values all of a rule's filters list together: what the
/// host compiles into automata and keeps per rule instance.
const MAX_TOTAL_BYTES: usize = 256 << 10;

/// Up to this many values, an exact, case-sensitive equality filter
/// compares them one by one (a few bytes each, cheaper than starting an
/// automaton: the usual filter is one identity type or a few actions).
const DIRECT_VALUES: usize = 8;

/// One filter, ready to check.
#[derive(Clone, Debug)]
struct Compiled {
    declared: EventFilter,
    /// The declared path's index, for a filter on a record field.
    path: Option<usize>,
    /// The listed values (lower-cased when ignoring case), anchored,
    /// longest match first; `None` when they are compared directly.
    automaton: Option<AhoCorasick>,
}

impl Compiled {
    fn accepts(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        let Some(automaton) = &self.automaton else {
            return self.declared.any_of.iter().any(|listed| listed == value);
        };
        let lower;
        // The automaton ignores ASCII case; other letters are lower-cased
        // first, as the listed values were.
        let value = if self.declared.ignore_case && !value.is_ascii() {
            lower = value.to_lowercase();
            lower.as_str()
        } else {
            value
        };
        let input = Input::new(value).anchored(Anchored::Yes);
        match automaton.find(input) {
            None => false,
            Some(m) => match self.declared.comparison {
                Comparison::Prefix => true,
                // The longest listed value that starts the value: equal
                // when it is all of it.
                Comparison::Equals => m.end() == value.len(),
            },
        }
    }
}

/// The filters of one detector, checked against the contract's limits.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filters(Vec<Compiled>);

impl Filters {
    /// `filters` as declared by rule `rule`, whose record paths are
    /// `record`; refused if over the limits (a rule must not make the host
    /// do unbounded work per event) or on a path it did not declare.
    pub(crate) fn checked(
        rule: &str,
        filters: Vec<EventFilter>,
        record: &RecordMap,
    ) -> Result<Filters, HostError> {
        let refuse = |message: String| HostError::Rule {
            rule: rule.to_owned(),
            call: "filters",
            message,
        };
        if filters.len() > MAX_FILTERS {
            return Err(refuse(format!(
                "declared {} filters, over the limit of {MAX_FILTERS}",
                filters.len()
            )));
        }
        let total: usize = filters
            .iter()
            .flat_map(|f| f.any_of.iter().map(String::len))
            .fold(0, usize::saturating_add);
        if total > MAX_TOTAL_BYTES {
            return Err(refuse(format!(
                "its filters list {total} bytes of values, over the limit of {MAX_TOTAL_BYTES}"
            )));
        }
        let mut compiled = Vec::with_capacity(filters.len());
        for f in filters {
            let on = match &f.target {
                Target::Field(field) => field.ecs_name().to_owned(),
                Target::Path(path) => crate::info::printable(path, 64),
            };
            if f.any_of.len() > MAX_VALUES {
                return Err(refuse(format!(
                    "a filter on {on} lists {} values, over the limit of {MAX_VALUES}",
                    f.any_of.len()
                )));
            }
            if let Some(long) = f.any_of.iter().find(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(refuse(format!(
                    "a filter on {on} has a value of {} bytes, over the limit of {MAX_VALUE_BYTES}",
                    long.len()
                )));
            }
            let path = match &f.target {
                Target::Field(_) => None,
                Target::Path(path) => Some(
                    record
                        .declared()
                        .iter()
                        .position(|p| p == path)
                        .ok_or_else(|| {
                            refuse(format!(
                                "a filter on {on} tests a record path the rule did not declare in `fields`"
                            ))
                        })?,
                ),
            };
            let direct = !f.ignore_case
                && f.comparison == Comparison::Equals
                && f.any_of.len() <= DIRECT_VALUES;
            let automaton = if direct {
                None
            } else {
                let values: Vec<String> = if f.ignore_case {
                    f.any_of.iter().map(|v| v.to_lowercase()).collect()
                } else {
                    f.any_of.clone()
                };
                let automaton = AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(StartKind::Anchored)
                    .ascii_case_insensitive(f.ignore_case)
                    .build(&values)
                    .map_err(|e| refuse(format!("the filter on {on} cannot be built: {e}")))?;
                Some(automaton)
            };
            compiled.push(Compiled {
                declared: f,
                path,
                automaton,
            });
        }
        Ok(Filters(compiled))
    }

    /// Whether `event` passes every filter (`record`: the rule's paths,
    /// refreshed for this batch).
    pub(crate) fn pass(&self, event: &NormalizedEvent, record: &RecordMap) -> bool {
        self.0.iter().all(|f| {
            let value = match (&f.declared.target, f.path) {
                (Target::Field(field), _) => event.field(*field),
                (Target::Path(_), Some(k)) => record.value(event, k).and_then(|v| v.comparable()),
                (Target::Path(_), None) => None,
            };
            f.accepts(value)
        })
    }

    /// The filters on normalized fields as one test (`None`: no such
    /// filter): an event failing it never reaches the rule, so its record
    /// paths need not be extracted from it.
    pub(crate) fn standard_test(&self) -> Option<EventTest> {
        let standard: Vec<(Field, Compiled)> = self
            .0
            .iter()
            .filter_map(|f| match f.declared.target {
                Target::Field(field) => Some((field, f.clone())),
                Target::Path(_) => None,
            })
            .collect();
        if standard.is_empty() {
            return None;
        }
        Some(Arc::new(move |event: &NormalizedEvent| {
            standard
                .iter()
                .all(|(field, f)| f.accepts(event.field(*field)))
        }))
    }

    /// Whether there are no filters (every event passes).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The filters, as declared.
    pub(crate) fn list(&self) -> Vec<EventFilter> {
        self.0.iter().map(|f| f.declared.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use trailguard_ingest::RecordPaths;
    use trailguard_rule_sdk::{Event, RecordFields};

    use super::*;

    fn checked(filters: Vec<EventFilter>) -> Filters {
        Filters::checked("r", filters, &RecordMap::default()).expect("within limits")
    }

    #[test]
    fn events_pass_every_filter_or_none() {
        let filters = checked(vec![
            EventFilter::new(Field::IdentityType, ["Root"]),
            EventFilter::new(Field::EventAction, ["ConsoleLogin", "CreateUser"]),
        ]);
        let none = RecordMap::default();
        let mut event = NormalizedEvent::at(0);
        event.identity_type = Some("Root".into());
        assert!(!filters.pass(&event, &none), "one filter fails");
        event.event_action = Some("CreateUser".into());
        assert!(filters.pass(&event, &none));
        event.event_action = Some("CreateUserX".into());
        assert!(!filters.pass(&event, &none), "equals is the whole value");
        event.event_action = Some("Create".into());
        assert!(!filters.pass(&event, &none));
        assert!(Filters::default().pass(&NormalizedEvent::at(0), &none));
    }

    /// The automaton agrees with the SDK's plain definition
    /// (`EventFilter::accepts_value`) on values built to catch it out.
    #[test]
    fn the_automaton_agrees_with_the_plain_definition() {
        let listed = [
            "Get",
            "GetObject",
            "GETOBJECTACL",
            "éve",
            "ÉVA",
            "",
            "a\u{130}b",
        ];
        let values = [
            "Get",
            "get",
            "GetObject",
            "getobject",
            "GetObjectAcl",
            "getobjectacl",
            "GetObjectAclX",
            "Ge",
            "",
            "ÉVE",
            "éve",
            "Éva",
            "éva!",
            "Put",
            "A\u{130}B",
            "ai\u{307}b",
        ];
        for comparison in [Comparison::Equals, Comparison::Prefix] {
            for ignore_case in [false, true] {
                for n in 0..=listed.len() {
                    let declared = EventFilter {
                        target: Target::Field(Field::EventAction),
                        comparison,
                        ignore_case,
                        any_of: listed[..n].iter().map(|s| (*s).to_owned()).collect(),
                    };
                    let f = checked(vec![declared.clone()]);
                    let direct = comparison == Comparison::Equals && !ignore_case && n <= 8;
                    assert_eq!(f.0[0].automaton.is_none(), direct);
                    for v in values {
                        assert_eq!(
                            f.0[0].accepts(Some(v)),
                            declared.accepts_value(Some(v)),
                            "{comparison:?} ignore_case={ignore_case} listed={:?} value={v:?}",
                            &listed[..n]
                        );
                    }
                    assert!(!f.0[0].accepts(None), "absent never passes");
                }
            }
        }
    }

    #[test]
    fn filters_on_record_paths_use_the_values_text() {
        let record = RecordMap::checked("r", vec!["requestParameters.enable".into(), "o".into()])
            .expect("ok");
        let filters = Filters::checked(
            "r",
            vec![EventFilter::path("requestParameters.enable", ["false"])],
            &record,
        )
        .expect("ok");
        let paths = RecordPaths::new(["requestParameters.enable".to_owned(), "o".to_owned()]);
        let with = |json: &str| NormalizedEvent {
            record: paths.extract(json),
            ..NormalizedEvent::at(0)
        };
        let mut record = record;
        record.refresh(&paths);
        assert!(filters.pass(&with(r#"{"requestParameters":{"enable":false}}"#), &record));
        assert!(!filters.pass(&with(r#"{"requestParameters":{"enable":true}}"#), &record));
        assert!(filters.pass(
            &with(r#"{"requestParameters":{"enable":"false"}}"#),
            &record
        ));
        assert!(!filters.pass(&with(r#"{"requestParameters":{}}"#), &record));
        // The SDK's test harness gives the same answers.
        let paths_v = ["requestParameters.enable".to_owned()];
        let values = [Some(trailguard_rule_sdk::Value::Bool(false))];
        let view = Event {
            record: RecordFields::new(&paths_v, &values),
            ..Event::at(0)
        };
        assert!(EventFilter::path("requestParameters.enable", ["false"]).accepts(&view));
    }

    #[test]
    fn filters_over_the_limits_or_on_undeclared_paths_are_refused_naming_the_rule() {
        let none = RecordMap::default();
        let many = vec![EventFilter::new(Field::UserName, ["a"]); MAX_FILTERS + 1];
        let e = Filters::checked("greedy", many, &none).expect_err("too many");
        assert!(e.to_string().contains("greedy"), "{e}");
        assert!(e.to_string().contains("limit of 16"), "{e}");
        let values = vec![EventFilter::new(
            Field::UserName,
            (0..=MAX_VALUES).map(|i| i.to_string()),
        )];
        assert!(Filters::checked("r", values, &none).is_err());
        let long = vec![EventFilter::new(
            Field::UserName,
            ["x".repeat(MAX_VALUE_BYTES + 1)],
        )];
        assert!(Filters::checked("r", long, &none).is_err());
        // Each filter within its limits, all of them together over theirs.
        let heavy = vec![
            EventFilter::new(
                Field::UserName,
                (0..MAX_VALUES).map(|i| format!("{i:01000}"))
            );
            MAX_FILTERS
        ];
        let e = Filters::checked("r", heavy, &none).expect_err("too many bytes");
        assert!(e.to_string().contains("bytes of values"), "{e}");
        let undeclared = vec![EventFilter::path("requestParameters.x", ["1"])];
        let e = Filters::checked("r", undeclared, &none).expect_err("undeclared");
        assert!(e.to_string().contains("did not declare"), "{e}");
    }
}
