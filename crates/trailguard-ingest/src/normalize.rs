//! One raw CloudTrail record → one [`NormalizedEvent`] with ECS fields and
//! its source AS, exactly as `cloudtrail-mapping.md` (Elastic's CloudTrail
//! integration) says.

use std::borrow::Cow;
use std::net::IpAddr;

use compact_str::{CompactString, ToCompactString};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use trailguard_asn::{AsInfo, AsnDb};
use trailguard_rule_sdk::{Event, Field, Outcome, RecordFields};

use crate::record::{RecordPaths, RecordValues};

use crate::{NoAsnReason, RejectReason};

/// A CloudTrail record as delivered, borrowing from the input. Keys are
/// CloudTrail's camelCase; the all-lower-case spelling that Athena / Glue
/// exports use is accepted too.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RawRecord<'a> {
    #[serde(rename = "eventTime", alias = "eventtime", borrow)]
    event_time: Option<Cow<'a, str>>,
    /// Logstash-shipped records carry `@timestamp` instead of `eventTime`.
    #[serde(rename = "@timestamp", borrow)]
    at_timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", alias = "eventname", borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventSource", alias = "eventsource", borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", alias = "eventid", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(rename = "awsRegion", alias = "awsregion", borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(rename = "recipientAccountId", alias = "recipientaccountid", borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(rename = "userIdentity", alias = "useridentity", borrow)]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(rename = "sourceIPAddress", alias = "sourceipaddress", borrow)]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(rename = "userAgent", alias = "useragent", borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(rename = "errorCode", alias = "errorcode", borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "errorMessage", alias = "errormessage", borrow)]
    error_message: Option<Cow<'a, str>>,
    #[serde(rename = "requestParameters", alias = "requestparameters", borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(rename = "responseElements", alias = "responseelements", borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(rename = "additionalEventData", alias = "additionaleventdata", borrow)]
    additional_event_data: Option<&'a RawValue>,
    /// Log forwarders (Datadog's) move `sourceIPAddress` and `userAgent`.
    #[serde(borrow)]
    network: Option<RawNetwork<'a>>,
    #[serde(borrow)]
    http: Option<RawHttp<'a>>,
    /// An S3 delivery object: the records are inside.
    #[serde(rename = "Records", borrow)]
    pub(crate) records: Option<crate::decode::Records<'a>>,
    /// An EventBridge / CloudTrail Lake envelope: the record is inside.
    #[serde(borrow)]
    pub(crate) detail: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawNetwork<'a> {
    #[serde(borrow)]
    client: Option<RawClient<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawClient<'a> {
    #[serde(borrow)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawHttp<'a> {
    #[serde(borrow)]
    useragent: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawIdentity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "userName", alias = "username", borrow)]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(rename = "accountId", alias = "accountid", borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(rename = "sessionContext", alias = "sessioncontext", borrow)]
    session_context: Option<RawSessionContext<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSessionContext<'a> {
    #[serde(rename = "sessionIssuer", alias = "sessionissuer", borrow)]
    session_issuer: Option<RawSessionIssuer<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSessionIssuer<'a> {
    #[serde(rename = "userName", alias = "username", borrow)]
    user_name: Option<Cow<'a, str>>,
}

/// The one field the mapping needs from a free-form object
/// (`requestParameters`, `responseElements`, `additionalEventData`).
#[derive(Deserialize)]
struct NewUserName {
    #[serde(rename = "newUserName")]
    value: Option<String>,
}

#[derive(Deserialize)]
struct ConsoleLogin {
    #[serde(rename = "ConsoleLogin")]
    value: Option<String>,
}

#[derive(Deserialize)]
struct UserName {
    #[serde(rename = "UserName")]
    value: Option<String>,
}

/// Reads a free-form object that some exporters deliver as a JSON object and
/// others as a string holding one. Anything else (null, a number, a string
/// that is not JSON) reads as absent: the record stays, without the field.
fn nested<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Option<T> {
    let text = raw?.get();
    if text.starts_with('{') {
        return serde_json::from_str(text).ok();
    }
    let inner: String = serde_json::from_str(text).ok()?;
    serde_json::from_str(&inner).ok()
}

impl RawRecord<'_> {
    /// A document with `@timestamp` but no CloudTrail `eventTime` or
    /// `eventName`: possibly ECS (as Elastic stores CloudTrail).
    pub(crate) fn maybe_ecs(&self) -> bool {
        self.event_time.is_none() && self.event_name.is_none() && self.at_timestamp.is_some()
    }
}

macro_rules! define_normalized_event {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        /// A normalized, enriched event that owns its strings. Field names
        /// follow ECS; see [`Event`] for their meaning. Strings of up to 24
        /// bytes (most fields) are stored inline: an event makes three or
        /// four allocations, not fourteen.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct NormalizedEvent {
            /// `@timestamp`, ms since the epoch.
            pub timestamp_ms: i64,
            $(#[doc = $doc] pub $name: Option<CompactString>,)*
            /// `source.as.number`.
            pub source_as_number: Option<u32>,
            /// `event.outcome`.
            pub outcome: Outcome,
            /// The values of the record paths the loaded rules declared
            /// ([`Normalizer::with_paths`]).
            pub record: RecordValues,
            /// The record itself as compact JSON, when asked for
            /// ([`Normalizer::keep_original`]: what `trailguard publish`
            /// sends on, so workers can extract any path).
            pub original: Option<Box<str>>,
        }

        impl NormalizedEvent {
            /// An event at `timestamp_ms` with every other field absent
            /// (outcome unknown); a starting point for tests and generators.
            pub fn at(timestamp_ms: i64) -> Self {
                NormalizedEvent {
                    timestamp_ms,
                    $($name: None,)*
                    source_as_number: None,
                    outcome: Outcome::Unknown,
                    record: RecordValues::default(),
                    original: None,
                }
            }

            /// The value of one string field.
            pub fn field(&self, field: Field) -> Option<&str> {
                match field {
                    $(Field::$variant => self.$name.as_deref(),)*
                }
            }

            /// Sets one string field.
            pub fn set(&mut self, field: Field, value: Option<CompactString>) {
                match field {
                    $(Field::$variant => self.$name = value,)*
                }
            }
        }
    };
}
trailguard_rule_sdk::for_each_string_field!(define_normalized_event);

impl NormalizedEvent {
    /// The identity rules group by: `user.name`, a unit separator, and the
    /// identity type. Every shipped rule's groups (rule A: name and type;
    /// rule B: account, name and type; deduplication: one event) are whole
    /// under this key, so events can be sharded or partitioned by it.
    pub fn group_key(&self) -> String {
        format!(
            "{}\u{1f}{}",
            self.user_name.as_deref().unwrap_or_default(),
            self.identity_type.as_deref().unwrap_or_default()
        )
    }

    /// A stable hash of [`NormalizedEvent::group_key`] (FNV-1a), to pick a
    /// shard.
    pub fn group_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let name = self.user_name.as_deref().unwrap_or_default();
        let kind = self.identity_type.as_deref().unwrap_or_default();
        for byte in name.bytes().chain([0x1f]).chain(kind.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }

    /// Bytes of raw-record text the event carries: its record fields' values
    /// and its kept record.
    pub fn record_bytes(&self) -> usize {
        self.record.text_bytes() + self.original.as_ref().map_or(0, |o| o.len())
    }

    /// The borrowed view rules read, with the given record fields.
    pub fn view_with<'a>(&'a self, record: RecordFields<'a>) -> Event<'a> {
        Event::from_fields(
            self.timestamp_ms,
            |f| self.field(f),
            self.source_as_number,
            self.outcome,
            record,
        )
    }

    /// The borrowed view of the normalized fields (no record fields).
    pub fn view(&self) -> Event<'_> {
        self.view_with(RecordFields::default())
    }
}

/// Where "now" comes from, for the check that no event is dated in the
/// future.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallClock {
    /// The system clock, read for every record.
    System,
    /// A fixed time, in milliseconds since the Unix epoch (tests, replays).
    Fixed(i64),
}

impl WallClock {
    /// The time now, in milliseconds since the Unix epoch.
    pub fn now_ms(self) -> i64 {
        match self {
            WallClock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            WallClock::Fixed(ms) => ms,
        }
    }
}

/// The largest record [`Normalizer::keep_original`] keeps.
pub const MAX_ORIGINAL_BYTES: usize = 768 << 10;

/// Turns raw records into [`NormalizedEvent`]s, enriching them with the
/// source AS when a database is given.
#[derive(Clone, Debug)]
pub struct Normalizer<'a> {
    asn: Option<&'a AsnDb>,
    /// Refuse events dated more than this many milliseconds after the clock
    /// (and the limit as of when the normalizer was made: later than that,
    /// the clock is read again).
    max_future: Option<(i64, WallClock, i64)>,
    /// The record paths extracted into every event.
    paths: RecordPaths,
    /// Whether events keep their record's text.
    keep_original: bool,
}

fn owned(value: Option<Cow<'_, str>>) -> Option<CompactString> {
    value.map(CompactString::from)
}

/// Parses `eventTime`: RFC 3339 (`2014-09-26T11:30:00Z`, fractions and
/// offsets allowed) or the `2023-01-10 21:04:02[.000000000]` form of Athena
/// and Panther exports (UTC).
pub fn parse_event_time(text: &str) -> Option<i64> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        PrimitiveDateTime::parse(text, format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]][optional [Z]]"
        ))
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `source.ip`: the address when it is a literal IPv4 / IPv6 address, in
/// canonical form (an IPv4-mapped IPv6 address becomes IPv4). Leading zeros
/// (`075.050.255.67`) are ambiguous (octal?) and are not literal addresses.
pub fn literal_ip(address: &str) -> Option<IpAddr> {
    address.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

impl<'a> Normalizer<'a> {
    /// A normalizer that enriches with `asn` (or not at all with `None`).
    pub fn new(asn: Option<&'a AsnDb>) -> Self {
        Normalizer {
            asn,
            max_future: None,
            paths: RecordPaths::default(),
            keep_original: false,
        }
    }

    /// Extracts `paths` from every record into [`NormalizedEvent::record`]
    /// (once per event, however many rules read them).
    pub fn with_paths(mut self, paths: RecordPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The paths extracted from every record.
    pub fn paths(&self) -> &RecordPaths {
        &self.paths
    }

    /// Whether events keep their record's text.
    pub fn keeps_original(&self) -> bool {
        self.keep_original
    }

    /// Keeps each record's compact JSON text in
    /// [`NormalizedEvent::original`] (for sending events on whole).
    pub fn keep_original(mut self, keep: bool) -> Self {
        self.keep_original = keep;
        self
    }

    /// Adds to `event` what it keeps of its record `text`: the values of
    /// the paths of the rules that want it and, if asked, the text itself.
    /// `parsed`: serde_json has just parsed `text` (else it is checked).
    pub(crate) fn add_record(&self, event: &mut NormalizedEvent, text: &[u8], parsed: bool) {
        if self.paths.is_empty() && !self.keep_original {
            return;
        }
        // The text of a record that parsed is UTF-8 (checked all the same).
        let Ok(text) = std::str::from_utf8(text) else {
            return;
        };
        if !self.paths.is_empty() {
            event.record = if parsed {
                self.paths.extract_parsed_for(event, text)
            } else {
                self.paths.extract_for(event, text)
            };
        }
        if self.keep_original {
            // Within what one Kafka message takes (librdkafka's default
            // limit is 1 MB): a larger record goes on without it, and reaches
            // workers' rules without record fields (docs/event-fields.md).
            let original = trailguard_rule_sdk::compact_json(text);
            if original.len() <= MAX_ORIGINAL_BYTES {
                event.original = Some(original.into());
            }
        }
    }

    /// Rejects every record dated more than `max_future_ms` after `clock`
    /// ([`RejectReason::FutureEventTime`]): CloudTrail writes a record after
    /// the call it describes, so such a time is forged or broken, and would
    /// move the watermark past every real event.
    pub fn with_max_future(mut self, max_future_ms: i64, clock: WallClock) -> Self {
        let bound = clock.now_ms().saturating_add(max_future_ms);
        self.max_future = Some((max_future_ms, clock, bound));
        self
    }

    /// The event time of a record, checked against the clock.
    pub(crate) fn event_time(&self, text: &str) -> Result<i64, RejectReason> {
        let ms =
            parse_event_time(text).ok_or_else(|| RejectReason::BadEventTime(text.to_owned()))?;
        match self.max_future {
            // The clock only moves on: most times are within the first bound.
            Some((limit_ms, clock, bound))
                if ms > bound && ms > clock.now_ms().saturating_add(limit_ms) =>
            {
                Err(RejectReason::FutureEventTime {
                    time: text.to_owned(),
                    limit_ms,
                })
            }
            _ => Ok(ms),
        }
    }

    /// `source.ip` and the source AS of an address, or why there is none.
    pub(crate) fn enrich(
        &self,
        address: Option<&str>,
    ) -> (Option<IpAddr>, Option<AsInfo>, Option<NoAsnReason>) {
        let Some(address) = address else {
            return (None, None, Some(NoAsnReason::NoAddress));
        };
        let Some(ip) = literal_ip(address) else {
            return (None, None, Some(NoAsnReason::NotAnIp));
        };
        let Some(db) = self.asn else {
            return (Some(ip), None, Some(NoAsnReason::NoDatabase));
        };
        match db.lookup(ip) {
            Ok(Some(info)) => (Some(ip), Some(info), None),
            // A record the database cannot decode is the database's fault,
            // not the event's: the event stays, without AS.
            Ok(None) | Err(_) => (Some(ip), None, Some(NoAsnReason::NotInDatabase)),
        }
    }

    /// Normalizes one record. On success also returns why the event has no
    /// source AS, if it has none.
    pub(crate) fn normalize(
        &self,
        raw: RawRecord<'_>,
        text: &[u8],
    ) -> Result<(NormalizedEvent, Option<NoAsnReason>), RejectReason> {
        let time_text = raw
            .event_time
            .as_deref()
            .or(raw.at_timestamp.as_deref())
            .ok_or(RejectReason::MissingEventTime)?;
        let timestamp_ms = self.event_time(time_text)?;

        let identity = raw.user_identity.unwrap_or_default();
        let identity_type = owned(identity.kind);
        let user_name = match identity_type.as_deref() {
            Some("AssumedRole" | "FederatedUser") => identity
                .session_context
                .and_then(|c| c.session_issuer)
                .and_then(|i| i.user_name),
            _ => identity.user_name,
        };
        let event_name = raw.event_name.as_deref();
        let user_name = match (user_name, event_name) {
            (None, Some("ConsoleLogin" | "UserAuthentication")) => {
                nested::<UserName>(raw.additional_event_data)
                    .and_then(|d| d.value)
                    .map(Cow::Owned)
            }
            (name, _) => name,
        };

        let console_login = match event_name {
            Some("ConsoleLogin") => {
                nested::<ConsoleLogin>(raw.response_elements).and_then(|r| r.value)
            }
            _ => None,
        };
        let outcome = match console_login {
            Some(result) => match result.to_ascii_lowercase().as_str() {
                "success" => Outcome::Success,
                "failure" => Outcome::Failure,
                _ => Outcome::Unknown,
            },
            None if raw.error_code.is_some() || raw.error_message.is_some() => Outcome::Failure,
            None => Outcome::Success,
        };

        let source_address = owned(
            raw.source_ip_address
                .or_else(|| raw.network.and_then(|n| n.client).and_then(|c| c.ip)),
        );
        let (ip, as_info, no_asn) = self.enrich(source_address.as_deref());
        let mut event = NormalizedEvent {
            timestamp_ms,
            event_id: owned(raw.event_id),
            event_action: owned(raw.event_name),
            event_provider: owned(raw.event_source),
            cloud_region: owned(raw.aws_region),
            cloud_account_id: owned(raw.recipient_account_id.or(identity.account_id)),
            user_name: owned(user_name),
            identity_type,
            identity_arn: owned(identity.arn),
            source_address,
            source_ip: ip.map(|ip| ip.to_compact_string()),
            source_as_number: as_info.as_ref().map(|a| a.number),
            source_as_organization: as_info
                .and_then(|a| a.organization)
                .map(CompactString::from),
            user_agent: owned(
                raw.user_agent
                    .or_else(|| raw.http.and_then(|h| h.useragent)),
            ),
            error_code: owned(raw.error_code),
            // Most requests do not rename a user: look for the key before
            // parsing the whole object (a backslash may escape it: parse then).
            user_changes_name: raw
                .request_parameters
                .filter(|p| p.get().contains("newUserName") || p.get().contains('\\'))
                .and_then(|p| nested::<NewUserName>(Some(p)))
                .and_then(|p| p.value)
                .map(CompactString::from),
            outcome,
            record: RecordValues::default(),
            original: None,
        };
        self.add_record(&mut event, text, true);
        Ok((event, no_asn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(json: &str) -> Result<NormalizedEvent, RejectReason> {
        let raw: RawRecord<'_> = serde_json::from_str(json).expect("valid JSON");
        Normalizer::new(None)
            .normalize(raw, json.as_bytes())
            .map(|(e, _)| e)
    }

    #[test]
    fn assumed_role_sessions_share_the_role_name() {
        let e = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","eventName":"ListBuckets",
            "userIdentity":{"type":"AssumedRole","userName":"session-user",
            "sessionContext":{"sessionIssuer":{"type":"Role","userName":"ci-deploy"}}}}"#,
        )
        .expect("accepted");
        assert_eq!(e.user_name.as_deref(), Some("ci-deploy"));
        assert_eq!(e.identity_type.as_deref(), Some("AssumedRole"));
        assert_eq!(e.timestamp_ms, 1_776_850_200_000);
    }

    #[test]
    fn user_name_per_identity_type() {
        let iam = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","userIdentity":{"type":"IAMUser","userName":"alice"}}"#,
        );
        assert_eq!(iam.expect("ok").user_name.as_deref(), Some("alice"));
        let root =
            normalize(r#"{"eventTime":"2026-04-22T09:30:00Z","userIdentity":{"type":"Root"}}"#);
        assert_eq!(root.expect("ok").user_name, None);
        let console = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","eventName":"ConsoleLogin","userIdentity":{"type":"IAMUser"},
            "additionalEventData":{"UserName":"bob"},"responseElements":{"ConsoleLogin":"Failure"}}"#,
        )
        .expect("ok");
        assert_eq!(console.user_name.as_deref(), Some("bob"));
        assert_eq!(console.outcome, Outcome::Failure);
        let service = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","userIdentity":{"type":"AWSService","invokedBy":"x"}}"#,
        );
        assert_eq!(service.expect("ok").user_name, None);
    }

    #[test]
    fn outcome_from_errors_and_console_login() {
        let ok = normalize(r#"{"eventTime":"2026-04-22T09:30:00Z"}"#).expect("ok");
        assert_eq!(ok.outcome, Outcome::Success);
        let denied =
            normalize(r#"{"eventTime":"2026-04-22T09:30:00Z","errorCode":"AccessDenied"}"#)
                .expect("ok");
        assert_eq!(denied.outcome, Outcome::Failure);
        let msg =
            normalize(r#"{"eventTime":"2026-04-22T09:30:00Z","errorMessage":"nope"}"#).expect("ok");
        assert_eq!(msg.outcome, Outcome::Failure);
        let login = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","eventName":"ConsoleLogin","responseElements":{"ConsoleLogin":"Success"}}"#,
        )
        .expect("ok");
        assert_eq!(login.outcome, Outcome::Success);
    }

    #[test]
    fn source_ip_only_for_literal_addresses() {
        assert_eq!(
            literal_ip("203.0.113.9"),
            Some("203.0.113.9".parse().expect("ip"))
        );
        assert_eq!(
            literal_ip("2001:DB8::1")
                .map(|ip| ip.to_string())
                .as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            literal_ip("075.050.255.67"),
            None,
            "leading zeros are not literal"
        );
        assert_eq!(
            literal_ip("::ffff:3.80.1.2"),
            Some("3.80.1.2".parse().expect("ip"))
        );
        assert_eq!(literal_ip("ec2.amazonaws.com"), None);
        assert_eq!(literal_ip("AWS Internal"), None);
        let e =
            normalize(r#"{"eventTime":"2026-04-22T09:30:00Z","sourceIPAddress":"075.050.255.67"}"#)
                .expect("ok");
        assert_eq!(e.source_address.as_deref(), Some("075.050.255.67"));
        assert_eq!(e.source_ip, None);
    }

    #[test]
    fn event_time_forms() {
        assert_eq!(parse_event_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_event_time("1970-01-01T00:00:01.250Z"), Some(1250));
        assert_eq!(parse_event_time("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_event_time("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(
            parse_event_time("1970-01-01 00:00:01.500000000"),
            Some(1500)
        );
        assert_eq!(parse_event_time("1970-01-01 00:00:01Z"), Some(1000));
        assert_eq!(parse_event_time("yesterday"), None);
        assert!(matches!(
            normalize(r#"{"eventName":"x"}"#),
            Err(RejectReason::MissingEventTime)
        ));
        assert!(matches!(
            normalize(r#"{"eventTime":"soon"}"#),
            Err(RejectReason::BadEventTime(_))
        ));
        let logstash = normalize(r#"{"@timestamp":"2020-09-14T01:19:40.000Z"}"#).expect("ok");
        assert_eq!(logstash.timestamp_ms, 1_600_046_380_000);
    }

    #[test]
    fn a_record_dated_past_the_clock_is_rejected() {
        let now = parse_event_time("2026-12-01T12:00:00Z").expect("time");
        let normalizer = Normalizer::new(None).with_max_future(15 * 60_000, WallClock::Fixed(now));
        let at = |time: &str| {
            let json = format!(r#"{{"eventTime":"{time}"}}"#);
            let raw: RawRecord<'_> = serde_json::from_str(&json).expect("valid JSON");
            normalizer
                .normalize(raw, json.as_bytes())
                .map(|(e, _)| e.timestamp_ms)
        };
        assert_eq!(
            at("2026-12-01T12:15:00Z"),
            Ok(now + 15 * 60_000),
            "at the limit"
        );
        assert_eq!(
            at("2026-04-22T09:30:00Z"),
            Ok(1_776_850_200_000),
            "the past"
        );
        let ahead = at("2026-12-01T12:15:00.001Z").expect_err("past the limit");
        assert_eq!(ahead.kind(), "future-event-time");
        let far = at("2099-01-01T00:00:00Z").expect_err("far past the limit");
        assert_eq!(
            far.to_string(),
            "eventTime `2099-01-01T00:00:00Z` is more than 15 minute(s) ahead of the clock, so it cannot be real (set [input] max_future_minutes; 0 turns the check off)"
        );
        let ecs = serde_json::json!({"@timestamp": "2099-01-01T00:00:00Z", "event.action": "x"});
        assert!(matches!(
            normalizer.normalize_ecs(&ecs),
            Err(RejectReason::FutureEventTime { .. })
        ));
        assert!(
            Normalizer::new(None).normalize_ecs(&ecs).is_ok(),
            "no check unless asked"
        );
    }

    #[test]
    fn lower_case_keys_are_read() {
        let e = normalize(
            r#"{"eventtime":"2023-01-10 21:04:02","eventname":"GetRecords","eventid":"5d4b","useridentity":{"arn":"arn:aws:test_arn"}}"#,
        )
        .expect("ok");
        assert_eq!(e.event_action.as_deref(), Some("GetRecords"));
        assert_eq!(e.event_id.as_deref(), Some("5d4b"));
        assert_eq!(e.identity_arn.as_deref(), Some("arn:aws:test_arn"));
    }

    #[test]
    fn account_and_new_user_name() {
        let e = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","userIdentity":{"accountId":"111"},"requestParameters":{"newUserName":"eve"}}"#,
        )
        .expect("ok");
        assert_eq!(e.cloud_account_id.as_deref(), Some("111"));
        assert_eq!(e.user_changes_name.as_deref(), Some("eve"));
    }

    #[test]
    fn free_form_objects_may_arrive_as_json_strings() {
        let e = normalize(
            r#"{"eventTime":"2026-04-22T09:30:00Z","requestParameters":"{\"newUserName\":\"eve\"}","responseElements":"not json"}"#,
        )
        .expect("a stringified object does not reject the record");
        assert_eq!(e.user_changes_name.as_deref(), Some("eve"));
        let e = normalize(r#"{"eventTime":"2026-04-22T09:30:00Z","requestParameters":[1,2]}"#)
            .expect("ok");
        assert_eq!(e.user_changes_name, None);
    }
}
