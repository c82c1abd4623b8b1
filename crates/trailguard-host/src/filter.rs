//! A rule's event filters, checked by the host before a batch crosses into
//! the rule (see `Rule::filters` in the SDK).

use trailguard_ingest::NormalizedEvent;
use trailguard_rule_sdk::EventFilter;

use crate::HostError;

/// Most filters a rule may declare.
const MAX_FILTERS: usize = 16;
/// Most values one filter may list.
const MAX_VALUES: usize = 1024;
/// Longest value, in bytes.
const MAX_VALUE_BYTES: usize = 1024;

/// The filters of one detector, checked against the contract's limits.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filters(Vec<EventFilter>);

impl Filters {
    /// `filters` as declared by rule `rule`, refused if over the limits (a
    /// rule must not make the host do unbounded work per event).
    pub(crate) fn checked(rule: &str, filters: Vec<EventFilter>) -> Result<Filters, HostError> {
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
        for f in &filters {
            if f.any_of.len() > MAX_VALUES {
                return Err(refuse(format!(
                    "a filter on {:?} lists {} values, over the limit of {MAX_VALUES}",
                    f.field,
                    f.any_of.len()
                )));
            }
            if let Some(long) = f.any_of.iter().find(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(refuse(format!(
                    "a filter on {:?} has a value of {} bytes, over the limit of {MAX_VALUE_BYTES}",
                    f.field,
                    long.len()
                )));
            }
        }
        Ok(Filters(filters))
    }

    /// Whether `event` passes every filter.
    pub(crate) fn pass(&self, event: &NormalizedEvent) -> bool {
        self.0.iter().all(|f| f.accepts_value(event.field(f.field)))
    }

    /// Whether there are no filters (every event passes).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The filters, as declared.
    pub(crate) fn list(&self) -> &[EventFilter] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use trailguard_rule_sdk::Field;

    use super::*;

    #[test]
    fn events_pass_every_filter_or_none() {
        let filters = Filters::checked(
            "r",
            vec![
                EventFilter::new(Field::IdentityType, ["Root"]),
                EventFilter::new(Field::EventAction, ["ConsoleLogin", "CreateUser"]),
            ],
        )
        .expect("within limits");
        let mut event = NormalizedEvent::at(0);
        event.identity_type = Some("Root".into());
        assert!(!filters.pass(&event), "one filter fails");
        event.event_action = Some("CreateUser".into());
        assert!(filters.pass(&event));
        assert!(Filters::default().pass(&NormalizedEvent::at(0)));
    }

    #[test]
    fn filters_over_the_limits_are_refused_naming_the_rule() {
        let many = vec![EventFilter::new(Field::UserName, ["a"]); MAX_FILTERS + 1];
        let e = Filters::checked("greedy", many).expect_err("too many");
        assert!(e.to_string().contains("greedy"), "{e}");
        assert!(e.to_string().contains("limit of 16"), "{e}");
        let values = vec![EventFilter::new(
            Field::UserName,
            (0..=MAX_VALUES).map(|i| i.to_string()),
        )];
        assert!(Filters::checked("r", values).is_err());
        let long = vec![EventFilter::new(
            Field::UserName,
            ["x".repeat(MAX_VALUE_BYTES + 1)],
        )];
        assert!(Filters::checked("r", long).is_err());
    }
}
