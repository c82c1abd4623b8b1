//! The view of one normalized, enriched CloudTrail event that rules read,
//! and the one list of its normalized fields.

use crate::Value;

/// Calls `$callback!` with every normalized string field of an event, in
/// the order of the contract's `string-field` enum, as
/// `name Variant "ecs.name" "doc";` entries.
///
/// This list is the event schema: [`Event`], [`Field`](crate::Field), the
/// test events, the host's `NormalizedEvent`, its encoder, the guest's
/// decoder and the ECS reader and writer are all generated from it or loop
/// over [`Field::ALL`](crate::Field::ALL). Adding a field here (and to
/// `wit/detector.wit`, which the host checks against it) is the whole job.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_string_field {
    ($callback:ident) => {
        $callback! {
            event_id EventId "event.id" "`event.id` (CloudTrail `eventID`).";
            event_action EventAction "event.action" "`event.action` (CloudTrail `eventName`).";
            event_provider EventProvider "event.provider" "`event.provider` (CloudTrail `eventSource`).";
            cloud_region CloudRegion "cloud.region" "`cloud.region` (CloudTrail `awsRegion`).";
            cloud_account_id CloudAccountId "cloud.account.id" "`cloud.account.id` (`recipientAccountId`, else the identity's account).";
            user_name UserName "user.name" "`user.name`, derived per identity type (all sessions of a role share it).";
            identity_type IdentityType "aws.cloudtrail.user_identity.type" "`aws.cloudtrail.user_identity.type`.";
            identity_arn IdentityArn "aws.cloudtrail.user_identity.arn" "`aws.cloudtrail.user_identity.arn`.";
            source_address SourceAddress "source.address" "`source.address`, as delivered (may be a host name).";
            source_ip SourceIp "source.ip" "`source.ip`: present only when the address is a literal IP.";
            source_as_organization SourceAsOrganization "source.as.organization.name" "`source.as.organization.name`.";
            user_agent UserAgent "user_agent.original" "`user_agent.original`.";
            error_code ErrorCode "aws.cloudtrail.error_code" "`aws.cloudtrail.error_code`.";
            user_changes_name UserChangesName "user.changes.name" "`user.changes.name` (`requestParameters.newUserName`).";
        }
    };
}

/// `event.outcome`, derived as Elastic's CloudTrail integration does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// No `errorCode` / `errorMessage` (for ConsoleLogin: `Success`).
    Success,
    /// An error was recorded.
    Failure,
    /// The record does not say.
    Unknown,
}

impl Outcome {
    /// The ECS spelling: `success`, `failure` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record fields a rule declared (see [`Rule::fields`](crate::Rule::fields))
/// and their values in one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordFields<'a> {
    paths: &'a [String],
    values: &'a [Option<Value<'a>>],
}

impl<'a> RecordFields<'a> {
    /// The values of `paths` (the declared paths, in order) in one event;
    /// `values[k]` belongs to `paths[k]`.
    pub fn new(paths: &'a [String], values: &'a [Option<Value<'a>>]) -> Self {
        RecordFields { paths, values }
    }

    /// The value at a declared path (`None`: absent from the record, or not
    /// declared).
    pub fn get(&self, path: &str) -> Option<Value<'a>> {
        let k = self.paths.iter().position(|p| p == path)?;
        self.at(k)
    }

    /// The value of the `k`-th declared path.
    pub fn at(&self, k: usize) -> Option<Value<'a>> {
        self.values.get(k).copied().flatten()
    }
}

macro_rules! define_event {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        /// One event, borrowing its strings from the batch it arrived in.
        ///
        /// Field names follow ECS; `None` means the field is absent. Fields
        /// of the raw CloudTrail record that the rule declared are read with
        /// [`Event::get`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Event<'a> {
            /// `@timestamp`, milliseconds since the Unix epoch (UTC).
            pub timestamp_ms: i64,
            $(#[doc = $doc] pub $name: Option<&'a str>,)*
            /// `source.as.number`.
            pub source_as_number: Option<u32>,
            /// `event.outcome`.
            pub outcome: Outcome,
            /// The declared record fields.
            pub record: RecordFields<'a>,
        }

        impl<'a> Event<'a> {
            /// An event at `timestamp_ms` with every other field absent; a
            /// starting point for tests and generators.
            pub fn at(timestamp_ms: i64) -> Self {
                Event {
                    timestamp_ms,
                    $($name: None,)*
                    source_as_number: None,
                    outcome: Outcome::Unknown,
                    record: RecordFields::default(),
                }
            }

            /// An event whose string fields are `string(field)`.
            pub fn from_fields(
                timestamp_ms: i64,
                mut string: impl FnMut(crate::Field) -> Option<&'a str>,
                source_as_number: Option<u32>,
                outcome: Outcome,
                record: RecordFields<'a>,
            ) -> Self {
                Event {
                    timestamp_ms,
                    $($name: string(crate::Field::$variant),)*
                    source_as_number,
                    outcome,
                    record,
                }
            }
        }
    };
}
for_each_string_field!(define_event);

impl<'a> Event<'a> {
    /// The value at `path` in the raw CloudTrail record, when the rule
    /// declared that path in [`Rule::fields`](crate::Rule::fields) (or a
    /// filter on it): `None` when the record has no value there.
    ///
    /// ```
    /// # use trailguard_rule_sdk::{Event, RecordFields, Value};
    /// let paths = ["requestParameters.bucketName".to_owned()];
    /// let values = [Some(Value::String("logs"))];
    /// let event = Event { record: RecordFields::new(&paths, &values), ..Event::at(0) };
    /// assert_eq!(event.get("requestParameters.bucketName").and_then(|v| v.as_str()), Some("logs"));
    /// assert_eq!(event.get("requestParameters.acl"), None);
    /// ```
    pub fn get(&self, path: &str) -> Option<Value<'a>> {
        self.record.get(path)
    }
}
