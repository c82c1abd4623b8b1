//! Documents already in ECS form (as Elastic stores CloudTrail): fields are
//! taken as they are, nested (`{"source": {"ip": ...}}`), dotted
//! (`{"source.ip": ...}`) or a mix; an existing `source.as.*` is kept rather
//! than looked up again.

use compact_str::{CompactString, ToCompactString};
use serde_json::Value;
use trailguard_rule_sdk::Outcome;

use crate::normalize::{NormalizedEvent, Normalizer, literal_ip, parse_event_time};
use crate::{NoAsnReason, RejectReason};

/// The value at an ECS path, whichever way the document spells it.
pub(crate) fn get<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    let object = doc.as_object()?;
    if let Some(v) = object.get(path) {
        return Some(v);
    }
    path.match_indices('.')
        .find_map(|(i, _)| get(object.get(&path[..i])?, &path[i + 1..]))
}

fn text(doc: &Value, path: &str) -> Option<CompactString> {
    match get(doc, path)? {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

/// Whether a document is ECS: it has an `event.*` or `aws.cloudtrail.*` field.
pub(crate) fn is_ecs(doc: &Value) -> bool {
    [
        "event.action",
        "event.provider",
        "event.id",
        "aws.cloudtrail.user_identity.type",
    ]
    .iter()
    .any(|p| get(doc, p).is_some())
}

impl Normalizer<'_> {
    /// Normalizes an ECS document.
    pub(crate) fn normalize_ecs(
        &self,
        doc: &Value,
    ) -> Result<(NormalizedEvent, Option<NoAsnReason>), RejectReason> {
        let time = text(doc, "@timestamp").ok_or(RejectReason::MissingEventTime)?;
        let timestamp_ms = self.event_time(&time)?;
        let source_address = text(doc, "source.address").or_else(|| text(doc, "source.ip"));
        // Already enriched upstream (a number, as JSON number or string,
        // and/or an organization): keep it, do not look it up again.
        let given_number = text(doc, "source.as.number").and_then(|n| n.parse::<u32>().ok());
        let given_organization = text(doc, "source.as.organization.name");
        let (ip, number, organization, no_asn) =
            if given_number.is_some() || given_organization.is_some() {
                let ip = text(doc, "source.ip")
                    .or(source_address.clone())
                    .as_deref()
                    .and_then(literal_ip);
                (ip, given_number, given_organization, None)
            } else {
                let (ip, info, no_asn) =
                    self.enrich(text(doc, "source.ip").or(source_address.clone()).as_deref());
                let (number, organization) = info.map_or((None, None), |i| {
                    (Some(i.number), i.organization.map(CompactString::from))
                });
                (ip, number, organization, no_asn)
            };
        let outcome = match text(doc, "event.outcome")
            .map(|o| o.to_ascii_lowercase())
            .as_deref()
        {
            Some("success") => Outcome::Success,
            Some("failure") => Outcome::Failure,
            _ => Outcome::Unknown,
        };
        let event = NormalizedEvent {
            timestamp_ms,
            event_id: text(doc, "event.id"),
            event_action: text(doc, "event.action"),
            event_provider: text(doc, "event.provider"),
            cloud_region: text(doc, "cloud.region"),
            cloud_account_id: text(doc, "cloud.account.id"),
            user_name: text(doc, "user.name"),
            identity_type: text(doc, "aws.cloudtrail.user_identity.type"),
            identity_arn: text(doc, "aws.cloudtrail.user_identity.arn"),
            source_address,
            source_ip: ip.map(|ip| ip.to_compact_string()),
            source_as_number: number,
            source_as_organization: organization,
            user_agent: text(doc, "user_agent.original"),
            error_code: text(doc, "aws.cloudtrail.error_code"),
            user_changes_name: text(doc, "user.changes.name"),
            outcome,
        };
        Ok((event, no_asn))
    }
}

impl NormalizedEvent {
    /// The event as a flat ECS document (dotted names, absent fields left
    /// out), which [`crate::decode_bytes`] reads back into the same event
    /// without looking the source AS up again: the form `trailguard
    /// publish` sends over Kafka.
    pub fn to_ecs(&self) -> Value {
        let mut doc = serde_json::Map::new();
        doc.insert(
            "@timestamp".into(),
            trailguard_rule_sdk::format_timestamp_ms(self.timestamp_ms).into(),
        );
        let outcome = match self.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        };
        doc.insert("event.outcome".into(), outcome.into());
        for (key, value) in [
            ("event.id", &self.event_id),
            ("event.action", &self.event_action),
            ("event.provider", &self.event_provider),
            ("cloud.region", &self.cloud_region),
            ("cloud.account.id", &self.cloud_account_id),
            ("user.name", &self.user_name),
            ("aws.cloudtrail.user_identity.type", &self.identity_type),
            ("aws.cloudtrail.user_identity.arn", &self.identity_arn),
            ("source.address", &self.source_address),
            ("source.ip", &self.source_ip),
            ("source.as.organization.name", &self.source_as_organization),
            ("user_agent.original", &self.user_agent),
            ("aws.cloudtrail.error_code", &self.error_code),
            ("user.changes.name", &self.user_changes_name),
        ] {
            if let Some(v) = value {
                doc.insert(key.into(), v.as_str().into());
            }
        }
        if let Some(n) = self.source_as_number {
            doc.insert("source.as.number".into(), n.into());
        }
        Value::Object(doc)
    }

    /// Reads back a document written by [`NormalizedEvent::to_ecs`] (or any
    /// flat or nested ECS document), keeping its source AS as given.
    pub fn from_ecs(doc: &Value) -> Result<NormalizedEvent, RejectReason> {
        Normalizer::new(None).normalize_ecs(doc).map(|(e, _)| e)
    }

    /// [`NormalizedEvent::from_ecs`] for the exact text
    /// [`NormalizedEvent::to_ecs`] writes (flat dotted names), parsed in one
    /// typed pass: the Kafka worker's hot path.
    pub fn from_ecs_json(text: &[u8]) -> Result<NormalizedEvent, RejectReason> {
        let flat: FlatEcs<'_> =
            serde_json::from_slice(text).map_err(|e| RejectReason::InvalidJson(e.to_string()))?;
        let timestamp_ms = parse_event_time(&flat.timestamp)
            .ok_or_else(|| RejectReason::BadEventTime(flat.timestamp.to_string()))?;
        let own = |s: Option<std::borrow::Cow<'_, str>>| s.map(CompactString::from);
        Ok(NormalizedEvent {
            timestamp_ms,
            event_id: own(flat.event_id),
            event_action: own(flat.event_action),
            event_provider: own(flat.event_provider),
            cloud_region: own(flat.cloud_region),
            cloud_account_id: own(flat.cloud_account_id),
            user_name: own(flat.user_name),
            identity_type: own(flat.identity_type),
            identity_arn: own(flat.identity_arn),
            source_address: own(flat.source_address),
            source_ip: own(flat.source_ip),
            source_as_number: flat.source_as_number,
            source_as_organization: own(flat.source_as_organization),
            user_agent: own(flat.user_agent),
            error_code: own(flat.error_code),
            user_changes_name: own(flat.user_changes_name),
            outcome: match flat.outcome.as_deref() {
                Some("success") => Outcome::Success,
                Some("failure") => Outcome::Failure,
                _ => Outcome::Unknown,
            },
        })
    }
}

/// The flat document [`NormalizedEvent::to_ecs`] writes.
#[derive(serde::Deserialize)]
struct FlatEcs<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(rename = "event.outcome", borrow)]
    outcome: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "event.id", borrow)]
    event_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "event.action", borrow)]
    event_action: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "event.provider", borrow)]
    event_provider: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "cloud.region", borrow)]
    cloud_region: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "cloud.account.id", borrow)]
    cloud_account_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "user.name", borrow)]
    user_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "aws.cloudtrail.user_identity.type", borrow)]
    identity_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "aws.cloudtrail.user_identity.arn", borrow)]
    identity_arn: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "source.address", borrow)]
    source_address: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "source.ip", borrow)]
    source_ip: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "source.as.number")]
    source_as_number: Option<u32>,
    #[serde(rename = "source.as.organization.name", borrow)]
    source_as_organization: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "user_agent.original", borrow)]
    user_agent: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "aws.cloudtrail.error_code", borrow)]
    error_code: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "user.changes.name", borrow)]
    user_changes_name: Option<std::borrow::Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_the_trip_through_ecs() {
        let mut e = NormalizedEvent::at(1_776_850_200_123);
        e.event_id = Some("e1".into());
        e.event_action = Some("GetCallerIdentity".into());
        e.user_name = Some("ci".into());
        e.identity_type = Some("AssumedRole".into());
        e.source_address = Some("73.162.41.17".into());
        e.source_ip = Some("73.162.41.17".into());
        e.source_as_number = Some(7922);
        e.source_as_organization = Some("Comcast".into());
        e.error_code = Some("AccessDenied".into());
        e.outcome = Outcome::Failure;
        let mut junk = NormalizedEvent::at(0);
        junk.event_action = Some("RunInstances".into());
        junk.source_address = Some("ec2.amazonaws.com".into());
        for event in [e, junk, NormalizedEvent::at(5)] {
            let doc = event.to_ecs();
            assert_eq!(NormalizedEvent::from_ecs(&doc), Ok(event.clone()), "{doc}");
            assert_eq!(
                NormalizedEvent::from_ecs_json(doc.to_string().as_bytes()),
                Ok(event.clone()),
                "{doc}"
            );
            // The decoder takes it as ECS too.
            let text = doc.to_string();
            let mut stats = crate::IngestStats::default();
            let mut back = Vec::new();
            crate::decode_bytes(
                "t",
                text.as_bytes(),
                &Normalizer::new(None),
                &mut stats,
                &mut |e| {
                    back.push(e);
                },
            );
            if event.event_action.is_some() {
                assert_eq!(back, vec![event], "{text}");
            }
        }
    }

    #[test]
    fn nested_dotted_and_mixed_paths() {
        let doc: Value = serde_json::from_str(
            r#"{"source": {"as.number": 7922, "ip": "73.1.2.3"}, "event.action": "ListBuckets", "aws": {"cloudtrail.user_identity": {"type": "IAMUser"}}}"#,
        )
        .expect("JSON");
        assert_eq!(get(&doc, "source.as.number"), Some(&Value::from(7922)));
        assert_eq!(text(&doc, "source.ip").as_deref(), Some("73.1.2.3"));
        assert_eq!(text(&doc, "event.action").as_deref(), Some("ListBuckets"));
        assert_eq!(
            text(&doc, "aws.cloudtrail.user_identity.type").as_deref(),
            Some("IAMUser")
        );
        assert_eq!(get(&doc, "source.as.organization.name"), None);
        assert!(is_ecs(&doc));
    }

    #[test]
    fn keeps_given_source_as_and_reads_ecs_fields() {
        let doc: Value = serde_json::from_str(
            r#"{"@timestamp": "2026-04-22T09:30:00.000Z", "event": {"action": "GetCallerIdentity", "outcome": "success", "id": "e1"},
                "user": {"name": "ci-deploy"}, "cloud.account.id": "123456789012",
                "aws.cloudtrail.user_identity.type": "AssumedRole",
                "source": {"address": "73.162.41.17", "ip": "73.162.41.17", "as": {"number": 7922, "organization": {"name": "Comcast"}}}}"#,
        )
        .expect("JSON");
        let (e, no_asn) = Normalizer::new(None).normalize_ecs(&doc).expect("ok");
        assert_eq!(no_asn, None, "no look-up needed");
        assert_eq!(e.source_as_number, Some(7922));
        assert_eq!(e.source_as_organization.as_deref(), Some("Comcast"));
        assert_eq!(e.user_name.as_deref(), Some("ci-deploy"));
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.event_id.as_deref(), Some("e1"));
        assert_eq!(e.timestamp_ms, 1_776_850_200_000);
    }

    #[test]
    fn a_given_organization_or_string_number_is_kept() {
        let doc: Value = serde_json::from_str(
            r#"{"@timestamp":"2026-04-22T09:30:00Z","event":{"action":"GetObject","outcome":"success"},"user":{"name":"ci"},
                "source":{"ip":"52.1.2.3","as":{"number":"16509","organization":{"name":"Amazon.com, Inc."}}}}"#,
        )
        .expect("JSON");
        let (e, no_asn) = Normalizer::new(None).normalize_ecs(&doc).expect("ok");
        assert_eq!(
            (e.source_as_number, e.source_as_organization.as_deref()),
            (Some(16509), Some("Amazon.com, Inc."))
        );
        assert_eq!(no_asn, None);
        let only_org: Value = serde_json::from_str(
            r#"{"@timestamp":"2026-04-22T09:30:00Z","event.action":"GetObject","source.ip":"52.1.2.3","source.as.organization.name":"Amazon.com, Inc."}"#,
        )
        .expect("JSON");
        let (e, _) = Normalizer::new(None).normalize_ecs(&only_org).expect("ok");
        assert_eq!(
            (e.source_as_number, e.source_as_organization.as_deref()),
            (None, Some("Amazon.com, Inc."))
        );
        assert_eq!(e.source_ip.as_deref(), Some("52.1.2.3"));
    }

    #[test]
    fn without_source_as_it_is_looked_up() {
        let doc: Value = serde_json::from_str(
            r#"{"@timestamp": "2026-04-22T09:30:00Z", "event.action": "ListBuckets", "source.ip": "075.050.255.67"}"#,
        )
        .expect("JSON");
        let (e, no_asn) = Normalizer::new(None).normalize_ecs(&doc).expect("ok");
        assert_eq!(no_asn, Some(NoAsnReason::NotAnIp));
        assert_eq!(e.source_ip, None);
        assert_eq!(e.outcome, Outcome::Unknown);
    }
}
