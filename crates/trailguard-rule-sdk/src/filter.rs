//! Event filters: which events a rule wants, declared so the host can drop
//! the others before they cross into the sandbox.

use crate::Event;

/// A string field of an [`Event`], in the order of the contract's
/// `string-field` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `event.id`.
    EventId,
    /// `event.action`.
    EventAction,
    /// `event.provider`.
    EventProvider,
    /// `cloud.region`.
    CloudRegion,
    /// `cloud.account.id`.
    CloudAccountId,
    /// `user.name`.
    UserName,
    /// `aws.cloudtrail.user_identity.type`.
    IdentityType,
    /// `aws.cloudtrail.user_identity.arn`.
    IdentityArn,
    /// `source.address`.
    SourceAddress,
    /// `source.ip`.
    SourceIp,
    /// `source.as.organization.name`.
    SourceAsOrganization,
    /// `user_agent.original`.
    UserAgent,
    /// `aws.cloudtrail.error_code`.
    ErrorCode,
    /// `user.changes.name`.
    UserChangesName,
}

impl Field {
    /// Every field, in contract order.
    pub const ALL: [Field; 14] = [
        Field::EventId,
        Field::EventAction,
        Field::EventProvider,
        Field::CloudRegion,
        Field::CloudAccountId,
        Field::UserName,
        Field::IdentityType,
        Field::IdentityArn,
        Field::SourceAddress,
        Field::SourceIp,
        Field::SourceAsOrganization,
        Field::UserAgent,
        Field::ErrorCode,
        Field::UserChangesName,
    ];

    /// The field's value in `event`.
    pub fn of<'a>(self, event: &Event<'a>) -> Option<&'a str> {
        match self {
            Field::EventId => event.event_id,
            Field::EventAction => event.event_action,
            Field::EventProvider => event.event_provider,
            Field::CloudRegion => event.cloud_region,
            Field::CloudAccountId => event.cloud_account_id,
            Field::UserName => event.user_name,
            Field::IdentityType => event.identity_type,
            Field::IdentityArn => event.identity_arn,
            Field::SourceAddress => event.source_address,
            Field::SourceIp => event.source_ip,
            Field::SourceAsOrganization => event.source_as_organization,
            Field::UserAgent => event.user_agent,
            Field::ErrorCode => event.error_code,
            Field::UserChangesName => event.user_changes_name,
        }
    }
}

/// An event passes when `field` is present and equal to one of `any_of`.
///
/// A rule returns its filters from [`Rule::filters`](crate::Rule::filters);
/// an event reaches the rule only if it passes all of them. The host checks
/// them natively, before encoding a batch, so a rule that looks at few
/// events does not pay for receiving the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    /// The field tested.
    pub field: Field,
    /// The values that pass.
    pub any_of: Vec<String>,
}

impl EventFilter {
    /// A filter passing events whose `field` is one of `values`.
    pub fn new<S: Into<String>>(field: Field, values: impl IntoIterator<Item = S>) -> Self {
        EventFilter {
            field,
            any_of: values.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `value` (a field's value, `None` when absent) passes.
    pub fn accepts_value(&self, value: Option<&str>) -> bool {
        value.is_some_and(|v| self.any_of.iter().any(|a| a == v))
    }

    /// Whether `event` passes.
    pub fn accepts(&self, event: &Event<'_>) -> bool {
        self.accepts_value(self.field.of(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_passes_when_the_field_is_one_of_the_values() {
        let root = EventFilter::new(Field::IdentityType, ["Root"]);
        let mut event = Event::at(0);
        assert!(!root.accepts(&event), "an absent field never passes");
        event.identity_type = Some("IAMUser");
        assert!(!root.accepts(&event));
        event.identity_type = Some("Root");
        assert!(root.accepts(&event));
        let none = EventFilter::new(Field::IdentityType, Vec::<String>::new());
        assert!(!none.accepts(&event), "no values: nothing passes");
    }

    #[test]
    fn every_field_reads_its_own_value() {
        let mut event = Event::at(0);
        event.event_id = Some("0");
        event.event_action = Some("1");
        event.event_provider = Some("2");
        event.cloud_region = Some("3");
        event.cloud_account_id = Some("4");
        event.user_name = Some("5");
        event.identity_type = Some("6");
        event.identity_arn = Some("7");
        event.source_address = Some("8");
        event.source_ip = Some("9");
        event.source_as_organization = Some("10");
        event.user_agent = Some("11");
        event.error_code = Some("12");
        event.user_changes_name = Some("13");
        for (i, field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.of(&event), Some(i.to_string().as_str()), "{field:?}");
        }
    }
}
