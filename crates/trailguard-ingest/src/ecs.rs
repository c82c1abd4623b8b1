//! Documents already in ECS form (as Elastic stores CloudTrail): fields are
//! taken as they are, nested (`{"source": {"ip": ...}}`), dotted
//! (`{"source.ip": ...}`) or a mix; an existing `source.as.*` is kept rather
//! than looked up again.

use std::borrow::Cow;

use compact_str::{CompactString, ToCompactString};
use serde_json::Value;
use trailguard_rule_sdk::{Field, Outcome};

use crate::normalize::{NormalizedEvent, Normalizer, literal_ip, parse_event_time};
use crate::record::RecordPaths;
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

/// Where the CloudTrail record's fields land in a document of Elastic's AWS
/// integration (`aws.cloudtrail` data stream), for documents without
/// `event.original`: CloudTrail path, ECS field. What such a document
/// cannot give back is listed in `docs/event-fields.md`.
const CLOUDTRAIL_FROM_ECS: &[(&str, &str)] = &[
    ("eventVersion", "aws.cloudtrail.event_version"),
    ("eventTime", "@timestamp"),
    ("eventSource", "event.provider"),
    ("eventName", "event.action"),
    ("eventID", "event.id"),
    ("awsRegion", "cloud.region"),
    ("sourceIPAddress", "source.address"),
    ("userAgent", "user_agent.original"),
    ("errorCode", "aws.cloudtrail.error_code"),
    ("errorMessage", "aws.cloudtrail.error_message"),
    ("requestID", "aws.cloudtrail.request_id"),
    ("eventType", "aws.cloudtrail.event_type"),
    ("apiVersion", "aws.cloudtrail.api_version"),
    ("managementEvent", "aws.cloudtrail.management_event"),
    ("readOnly", "aws.cloudtrail.read_only"),
    ("eventCategory", "aws.cloudtrail.event_category"),
    ("recipientAccountId", "aws.cloudtrail.recipient_account_id"),
    ("sharedEventID", "aws.cloudtrail.shared_event_id"),
    ("vpcEndpointId", "aws.cloudtrail.vpc_endpoint_id"),
    (
        "sessionCredentialFromConsole",
        "aws.cloudtrail.session_credential_from_console",
    ),
    (
        "requestParameters",
        "aws.cloudtrail.flattened.request_parameters",
    ),
    (
        "responseElements",
        "aws.cloudtrail.flattened.response_elements",
    ),
    (
        "additionalEventData",
        "aws.cloudtrail.flattened.additional_eventdata",
    ),
    (
        "serviceEventDetails",
        "aws.cloudtrail.flattened.service_event_details",
    ),
    ("insightDetails", "aws.cloudtrail.flattened.insight_details"),
    ("tlsDetails.cipherSuite", "tls.cipher"),
    (
        "tlsDetails.clientProvidedHostHeader",
        "tls.client.server_name",
    ),
    ("userIdentity.type", "aws.cloudtrail.user_identity.type"),
    ("userIdentity.arn", "aws.cloudtrail.user_identity.arn"),
    ("userIdentity.principalId", "user.id"),
    ("userIdentity.accountId", "cloud.account.id"),
    (
        "userIdentity.accessKeyId",
        "aws.cloudtrail.user_identity.access_key_id",
    ),
    (
        "userIdentity.invokedBy",
        "aws.cloudtrail.user_identity.invoked_by",
    ),
    (
        "userIdentity.sessionContext.attributes.mfaAuthenticated",
        "aws.cloudtrail.user_identity.session_context.mfa_authenticated",
    ),
    (
        "userIdentity.sessionContext.attributes.creationDate",
        "aws.cloudtrail.user_identity.session_context.creation_date",
    ),
    (
        "userIdentity.sessionContext.sessionIssuer.type",
        "aws.cloudtrail.user_identity.session_context.session_issuer.type",
    ),
    (
        "userIdentity.sessionContext.sessionIssuer.principalId",
        "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id",
    ),
    (
        "userIdentity.sessionContext.sessionIssuer.arn",
        "aws.cloudtrail.user_identity.session_context.session_issuer.arn",
    ),
    (
        "userIdentity.sessionContext.sessionIssuer.accountId",
        "aws.cloudtrail.user_identity.session_context.session_issuer.account_id",
    ),
];

/// Sets `value` at the dotted CloudTrail `path` of `record`, making the
/// objects on the way.
fn set_path(record: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            record.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = record
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Value::Object(child) = child {
                set_path(child, rest, value);
            }
        }
    }
}

/// The CloudTrail record an ECS document of Elastic's integration stands
/// for, as far as it can be rebuilt (see [`CLOUDTRAIL_FROM_ECS`]).
fn cloudtrail_record(doc: &Value) -> Value {
    let mut record = serde_json::Map::new();
    for (path, ecs) in CLOUDTRAIL_FROM_ECS {
        if let Some(v) = get(doc, ecs) {
            set_path(&mut record, path, v.clone());
        }
    }
    // `user.name` is the session issuer's name for roles, else the user's.
    if let Some(name) = get(doc, "user.name") {
        let path = match text(doc, "aws.cloudtrail.user_identity.type").as_deref() {
            Some("AssumedRole" | "FederatedUser") => {
                "userIdentity.sessionContext.sessionIssuer.userName"
            }
            _ => "userIdentity.userName",
        };
        set_path(&mut record, path, name.clone());
    }
    // `TLSv1.3` was split into `tls` (lower-cased) and `1.3`.
    if let Some(version) = text(doc, "tls.version") {
        let protocol = text(doc, "tls.version_protocol");
        let whole = match protocol.as_deref() {
            Some(p) if p.eq_ignore_ascii_case("tls") => format!("TLSv{version}"),
            _ => version.to_string(),
        };
        set_path(&mut record, "tlsDetails.tlsVersion", whole.into());
    }
    // Resources: `arn` / `account_id` were renamed from `ARN` / `accountId`.
    if let Some(Value::Array(resources)) = get(doc, "aws.cloudtrail.resources") {
        let back = resources
            .iter()
            .map(|r| match r {
                Value::Object(o) => Value::Object(
                    o.iter()
                        .map(|(k, v)| {
                            let key = match k.as_str() {
                                "arn" => "ARN",
                                "account_id" => "accountId",
                                other => other,
                            };
                            (key.to_owned(), v.clone())
                        })
                        .collect(),
                ),
                other => other.clone(),
            })
            .collect();
        record.insert("resources".into(), Value::Array(back));
    }
    Value::Object(record)
}

impl Normalizer<'_> {
    /// Normalizes an ECS document.
    pub(crate) fn normalize_ecs(
        &self,
        doc: &Value,
    ) -> Result<(NormalizedEvent, Option<NoAsnReason>), RejectReason> {
        let time = text(doc, "@timestamp").ok_or(RejectReason::MissingEventTime)?;
        let mut event = NormalizedEvent::at(self.event_time(&time)?);
        for field in Field::ALL {
            event.set(field, text(doc, field.ecs_name()));
        }
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
        event.source_address = source_address;
        event.source_ip = ip.map(|ip| ip.to_compact_string());
        event.source_as_number = number;
        event.source_as_organization = organization;
        event.outcome = match text(doc, "event.outcome")
            .map(|o| o.to_ascii_lowercase())
            .as_deref()
        {
            Some("success") => Outcome::Success,
            Some("failure") => Outcome::Failure,
            _ => Outcome::Unknown,
        };
        if !self.paths().is_empty() || self.keeps_original() {
            // The record itself when the document kept it, else what the
            // integration's fields give back of it.
            match get(doc, "event.original") {
                Some(Value::String(original)) => {
                    self.add_record(&mut event, original.as_bytes(), false);
                }
                _ => {
                    let rebuilt = cloudtrail_record(doc).to_string();
                    self.add_record(&mut event, rebuilt.as_bytes(), true);
                }
            }
        }
        Ok((event, no_asn))
    }
}

impl NormalizedEvent {
    /// The event as a flat ECS document (dotted names, absent fields left
    /// out), which [`crate::decode_bytes`] reads back into the same event
    /// without looking the source AS up again: the form `trailguard
    /// publish` sends over Kafka. `event.original` holds the record when
    /// the event kept it, else the extracted record fields as one flat
    /// object (enough to extract the same paths again).
    pub fn to_ecs(&self) -> Value {
        let mut doc = serde_json::Map::new();
        doc.insert(
            "@timestamp".into(),
            trailguard_rule_sdk::format_timestamp_ms(self.timestamp_ms).into(),
        );
        doc.insert("event.outcome".into(), self.outcome.as_str().into());
        for field in Field::ALL {
            if let Some(v) = self.field(field) {
                doc.insert(field.ecs_name().into(), v.into());
            }
        }
        if let Some(n) = self.source_as_number {
            doc.insert("source.as.number".into(), n.into());
        }
        if let Some(original) = &self.original {
            doc.insert("event.original".into(), original.as_ref().into());
        } else if !self.record.is_empty() {
            doc.insert("event.original".into(), self.record.to_flat_json().into());
        }
        Value::Object(doc)
    }

    /// Reads back a document written by [`NormalizedEvent::to_ecs`] (or any
    /// flat or nested ECS document), keeping its source AS as given and
    /// extracting `paths` from its record.
    pub fn from_ecs(doc: &Value, paths: &RecordPaths) -> Result<NormalizedEvent, RejectReason> {
        Normalizer::new(None)
            .with_paths(paths.clone())
            .normalize_ecs(doc)
            .map(|(e, _)| e)
    }

    /// [`NormalizedEvent::from_ecs`] for the exact text
    /// [`NormalizedEvent::to_ecs`] writes (flat dotted names), parsed in one
    /// typed pass: the Kafka worker's hot path.
    pub fn from_ecs_json(
        text: &[u8],
        paths: &RecordPaths,
    ) -> Result<NormalizedEvent, RejectReason> {
        let flat: FlatEcs<'_> =
            serde_json::from_slice(text).map_err(|e| RejectReason::InvalidJson(e.to_string()))?;
        let timestamp_ms = parse_event_time(&flat.timestamp)
            .ok_or_else(|| RejectReason::BadEventTime(flat.timestamp.to_string()))?;
        let mut event = NormalizedEvent::at(timestamp_ms);
        for field in Field::ALL {
            event.set(field, flat.string(field).map(CompactString::from));
        }
        event.source_as_number = flat.source_as_number;
        event.outcome = match flat.outcome.as_deref() {
            Some("success") => Outcome::Success,
            Some("failure") => Outcome::Failure,
            _ => Outcome::Unknown,
        };
        if let Some(original) = &flat.original {
            event.record = paths.extract_for(&event, original);
        }
        Ok(event)
    }
}

macro_rules! define_flat_ecs {
    ($($name:ident $variant:ident $ecs:literal $doc:literal;)*) => {
        /// The flat document [`NormalizedEvent::to_ecs`] writes.
        #[derive(serde::Deserialize)]
        struct FlatEcs<'a> {
            #[serde(rename = "@timestamp", borrow)]
            timestamp: Cow<'a, str>,
            #[serde(rename = "event.outcome", borrow)]
            outcome: Option<Cow<'a, str>>,
            #[serde(rename = "source.as.number")]
            source_as_number: Option<u32>,
            #[serde(rename = "event.original", borrow)]
            original: Option<Cow<'a, str>>,
            $(#[serde(rename = $ecs, borrow)] $name: Option<Cow<'a, str>>,)*
        }

        impl FlatEcs<'_> {
            fn string(&self, field: Field) -> Option<&str> {
                match field {
                    $(Field::$variant => self.$name.as_deref(),)*
                }
            }
        }
    };
}
trailguard_rule_sdk::for_each_string_field!(define_flat_ecs);

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
            let none = RecordPaths::default();
            assert_eq!(
                NormalizedEvent::from_ecs(&doc, &none),
                Ok(event.clone()),
                "{doc}"
            );
            assert_eq!(
                NormalizedEvent::from_ecs_json(doc.to_string().as_bytes(), &none),
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

    fn paths(list: &[&str]) -> RecordPaths {
        RecordPaths::new(list.iter().map(|p| (*p).to_owned()))
    }

    #[test]
    fn record_fields_come_from_event_original_when_kept() {
        let record = r#"{"eventName":"PutBucketAcl","requestParameters":{"bucketName":"b","x-amz-acl":["public-read"]},"readOnly":false}"#;
        let doc = serde_json::json!({
            "@timestamp": "2026-04-22T09:30:00.000Z",
            "event": {"action": "PutBucketAcl", "original": record},
            "aws.cloudtrail.flattened.request_parameters": {"bucketName": "not this one"},
        });
        let p = paths(&[
            "requestParameters.bucketName",
            "requestParameters.x-amz-acl",
            "readOnly",
        ]);
        let e = NormalizedEvent::from_ecs(&doc, &p).expect("ok");
        assert_eq!(
            e.record.get("requestParameters.bucketName"),
            Some(trailguard_rule_sdk::Value::String("b"))
        );
        assert_eq!(
            e.record.get("requestParameters.x-amz-acl"),
            Some(trailguard_rule_sdk::Value::Array(r#"["public-read"]"#))
        );
        assert_eq!(
            e.record.get("readOnly"),
            Some(trailguard_rule_sdk::Value::Bool(false))
        );
    }

    #[test]
    fn without_event_original_the_integrations_fields_map_back() {
        use trailguard_rule_sdk::Value as V;
        let doc = serde_json::json!({
            "@timestamp": "2026-04-22T09:30:00.000Z",
            "event": {"action": "ConsoleLogin", "provider": "signin.amazonaws.com", "id": "e1"},
            "user": {"name": "ci-deploy"},
            "aws": {"cloudtrail": {
                "event_type": "AwsConsoleSignIn",
                "read_only": false,
                "user_identity": {"type": "AssumedRole", "session_context": {"mfa_authenticated": "false", "session_issuer": {"type": "Role"}}},
                "flattened": {
                    "additional_eventdata": {"MFAUsed": "No"},
                    "response_elements": {"ConsoleLogin": "Success"}
                },
                "resources": [{"arn": "arn:aws:s3:::b", "account_id": "1", "type": "AWS::S3::Bucket"}]
            }},
            "tls": {"version": "1.3", "version_protocol": "tls", "cipher": "TLS_AES_128_GCM_SHA256"}
        });
        let p = paths(&[
            "additionalEventData.MFAUsed",
            "responseElements.ConsoleLogin",
            "eventType",
            "readOnly",
            "userIdentity.sessionContext.sessionIssuer.userName",
            "userIdentity.sessionContext.sessionIssuer.type",
            "userIdentity.sessionContext.attributes.mfaAuthenticated",
            "tlsDetails.tlsVersion",
            "resources",
            "requestParameters",
        ]);
        let e = NormalizedEvent::from_ecs(&doc, &p).expect("ok");
        let r = &e.record;
        assert_eq!(r.get("additionalEventData.MFAUsed"), Some(V::String("No")));
        assert_eq!(
            r.get("responseElements.ConsoleLogin"),
            Some(V::String("Success"))
        );
        assert_eq!(r.get("eventType"), Some(V::String("AwsConsoleSignIn")));
        assert_eq!(r.get("readOnly"), Some(V::Bool(false)));
        assert_eq!(
            r.get("userIdentity.sessionContext.sessionIssuer.userName"),
            Some(V::String("ci-deploy"))
        );
        assert_eq!(
            r.get("userIdentity.sessionContext.sessionIssuer.type"),
            Some(V::String("Role"))
        );
        assert_eq!(
            r.get("userIdentity.sessionContext.attributes.mfaAuthenticated"),
            Some(V::String("false"))
        );
        assert_eq!(r.get("tlsDetails.tlsVersion"), Some(V::String("TLSv1.3")));
        assert_eq!(
            r.get("resources"),
            Some(V::Array(
                r#"[{"ARN":"arn:aws:s3:::b","accountId":"1","type":"AWS::S3::Bucket"}]"#
            ))
        );
        assert_eq!(r.get("requestParameters"), None, "not in the document");
    }

    #[test]
    fn record_fields_survive_the_trip_through_ecs() {
        let p = paths(&["requestParameters.bucketName", "a.b", "n"]);
        let record = r#"{"eventTime":"2026-04-22T09:30:00Z","eventName":"X","requestParameters":{"bucketName":"b"},"a.b":[1],"n":null}"#;
        let mut stats = crate::IngestStats::default();
        let mut events = Vec::new();
        let normalizer = Normalizer::new(None).with_paths(p.clone());
        crate::decode_bytes("t", record.as_bytes(), &normalizer, &mut stats, &mut |e| {
            events.push(e)
        });
        let event = events.pop().expect("decoded");
        assert_eq!(
            event.record.get("a.b"),
            Some(trailguard_rule_sdk::Value::Array("[1]"))
        );
        assert_eq!(
            event.record.get("n"),
            Some(trailguard_rule_sdk::Value::Null)
        );
        let doc = event.to_ecs();
        let back = NormalizedEvent::from_ecs_json(doc.to_string().as_bytes(), &p).expect("ok");
        assert_eq!(back.record, event.record.clone(), "{doc}");
        let back = NormalizedEvent::from_ecs(&doc, &p).expect("ok");
        assert_eq!(back.record, event.record);
        // Kept whole (as publish does), any path can be extracted later.
        let keeping = Normalizer::new(None).keep_original(true);
        let mut kept = Vec::new();
        crate::decode_bytes("t", record.as_bytes(), &keeping, &mut stats, &mut |e| {
            kept.push(e)
        });
        let doc = kept[0].to_ecs();
        let later = paths(&["eventName"]);
        let back = NormalizedEvent::from_ecs_json(doc.to_string().as_bytes(), &later).expect("ok");
        assert_eq!(
            back.record.get("eventName"),
            Some(trailguard_rule_sdk::Value::String("X"))
        );
    }
}
