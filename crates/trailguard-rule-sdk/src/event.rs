//! The view of one normalized, enriched CloudTrail event that rules read.

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

/// One event, borrowing its strings from the batch it arrived in.
///
/// Field names follow ECS; `None` means the field is absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// `@timestamp`, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    /// `event.id` (CloudTrail `eventID`).
    pub event_id: Option<&'a str>,
    /// `event.action` (CloudTrail `eventName`).
    pub event_action: Option<&'a str>,
    /// `event.provider` (CloudTrail `eventSource`).
    pub event_provider: Option<&'a str>,
    /// `cloud.region`.
    pub cloud_region: Option<&'a str>,
    /// `cloud.account.id`.
    pub cloud_account_id: Option<&'a str>,
    /// `user.name`, derived per identity type (all sessions of a role share it).
    pub user_name: Option<&'a str>,
    /// `aws.cloudtrail.user_identity.type`.
    pub identity_type: Option<&'a str>,
    /// `aws.cloudtrail.user_identity.arn`.
    pub identity_arn: Option<&'a str>,
    /// `source.address`, as delivered.
    pub source_address: Option<&'a str>,
    /// `source.ip`: present only when the address is a literal IP.
    pub source_ip: Option<&'a str>,
    /// `source.as.number`.
    pub source_as_number: Option<u32>,
    /// `source.as.organization.name`.
    pub source_as_organization: Option<&'a str>,
    /// `user_agent.original`.
    pub user_agent: Option<&'a str>,
    /// `aws.cloudtrail.error_code`.
    pub error_code: Option<&'a str>,
    /// `user.changes.name` (`requestParameters.newUserName`).
    pub user_changes_name: Option<&'a str>,
    /// `event.outcome`.
    pub outcome: Outcome,
}

impl<'a> Event<'a> {
    /// An event at `timestamp_ms` with every other field absent; a starting
    /// point for tests and generators.
    pub fn at(timestamp_ms: i64) -> Self {
        Event {
            timestamp_ms,
            event_id: None,
            event_action: None,
            event_provider: None,
            cloud_region: None,
            cloud_account_id: None,
            user_name: None,
            identity_type: None,
            identity_arn: None,
            source_address: None,
            source_ip: None,
            source_as_number: None,
            source_as_organization: None,
            user_agent: None,
            error_code: None,
            user_changes_name: None,
            outcome: Outcome::Unknown,
        }
    }
}
