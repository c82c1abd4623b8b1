//! trailguard's alerts and the shapes they are written in.
//!
//! An alert is an [`AlertDocument`]: a flat JSON object with dotted names,
//! as Elastic stores detection alerts (`@timestamp`, `kibana.alert.uuid`,
//! `kibana.alert.rule.name`, `kibana.alert.severity`, `threat.technique.id`,
//! ... plus the rule's own fields such as `user.name` or `Esql.*`). The
//! names the host writes are in [`field`].
//!
//! [`Format`] says how alerts leave: as they are ([`Format::Ecs`]), as
//! Elastic `_bulk` requests ([`Format::ElasticBulk`]) or as OCSF Detection
//! Findings ([`Format::Ocsf`], what AWS Security Lake reads). [`read_alerts`]
//! reads any of them back.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

mod document;
pub mod ocsf;

pub use document::{AlertDocument, Iter, SharedFields};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// Names of the fields every alert document has.
pub mod field {
    /// The alert's time (event time of the finding), RFC 3339.
    pub const TIMESTAMP: &str = "@timestamp";
    /// Deterministic id: SHA-256 of rule id, time and the rule's fields.
    pub const UUID: &str = "kibana.alert.uuid";
    /// The rule's id (`aws-unusual-asn`).
    pub const RULE_ID: &str = "kibana.alert.rule.rule_id";
    /// The rule's title.
    pub const RULE_NAME: &str = "kibana.alert.rule.name";
    /// The rule's description.
    pub const RULE_DESCRIPTION: &str = "kibana.alert.rule.description";
    /// The rule's version.
    pub const RULE_VERSION: &str = "kibana.alert.rule.version";
    /// `low`, `medium`, `high` or `critical`.
    pub const SEVERITY: &str = "kibana.alert.severity";
    /// 0..=100.
    pub const RISK_SCORE: &str = "kibana.alert.risk_score";
    /// One sentence: what was found.
    pub const REASON: &str = "kibana.alert.reason";
    /// MITRE ATT&CK technique ids (parents of sub-techniques).
    pub const TECHNIQUE_ID: &str = "threat.technique.id";
    /// MITRE ATT&CK sub-technique ids.
    pub const SUBTECHNIQUE_ID: &str = "threat.technique.subtechnique.id";
    /// Alerts merged into this one by suppression (not counting itself).
    pub const SUPPRESSED_COUNT: &str = "kibana.alert.suppression.docs_count";
    /// Time of the first alert of a suppression group.
    pub const SUPPRESSION_START: &str = "kibana.alert.suppression.start";
    /// Time of the last alert of a suppression group.
    pub const SUPPRESSION_END: &str = "kibana.alert.suppression.end";
    /// The fields and values a suppression group was made by.
    pub const SUPPRESSION_TERMS: &str = "kibana.alert.suppression.terms";

    /// Every field the host writes (besides the suppression ones); the rest
    /// of a document is the rule's own.
    pub const HOST: &[&str] = &[
        TIMESTAMP,
        "event.kind",
        "ecs.version",
        UUID,
        "kibana.alert.original_time",
        "kibana.alert.start",
        "kibana.alert.status",
        "kibana.alert.workflow_status",
        SEVERITY,
        RISK_SCORE,
        REASON,
        RULE_ID,
        "kibana.alert.rule.uuid",
        RULE_NAME,
        RULE_DESCRIPTION,
        RULE_VERSION,
        "kibana.alert.rule.severity",
        "kibana.alert.rule.risk_score",
        "kibana.alert.rule.category",
        "kibana.alert.rule.consumer",
        "kibana.alert.rule.producer",
        "kibana.alert.rule.tags",
        "kibana.space_ids",
        "threat.framework",
        TECHNIQUE_ID,
        "threat.technique.reference",
        SUBTECHNIQUE_ID,
        "threat.technique.subtechnique.reference",
        SUPPRESSED_COUNT,
        SUPPRESSION_START,
        SUPPRESSION_END,
        SUPPRESSION_TERMS,
    ];
}

/// How alerts are written: one JSON document per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// The alert document as it is: Elastic Security alert fields and ECS.
    Ecs,
    /// Two lines per alert for Elastic's `_bulk` API: a `create` action
    /// naming the index and the alert's deterministic id, then the document.
    /// Replaying alerts creates nothing twice.
    ElasticBulk {
        /// The index (or data stream) to create the alerts in.
        index: String,
    },
    /// OCSF Detection Finding (class_uid 2004, schema 1.1.0 with the `cloud`
    /// profile), as AWS Security Lake reads it.
    Ocsf,
}

/// The index `elastic-bulk` writes to unless told otherwise.
pub const DEFAULT_BULK_INDEX: &str = "trailguard-alerts";

impl FromStr for Format {
    type Err = FormatError;

    /// `ecs`, `elastic-bulk` (into [`DEFAULT_BULK_INDEX`]) or `ocsf`.
    fn from_str(s: &str) -> Result<Format, FormatError> {
        match s {
            "ecs" => Ok(Format::Ecs),
            "elastic-bulk" => Ok(Format::ElasticBulk {
                index: DEFAULT_BULK_INDEX.into(),
            }),
            "ocsf" => Ok(Format::Ocsf),
            other => Err(FormatError::UnknownFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ecs => "ecs",
            Format::ElasticBulk { .. } => "elastic-bulk",
            Format::Ocsf => "ocsf",
        })
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not one of the format names.
    #[error("unknown alert format `{0}`: use ecs, elastic-bulk or ocsf")]
    UnknownFormat(String),
    /// A line of an alerts file that is not an alert in any known shape.
    #[error("line {line}: not an alert (ECS, Elastic bulk or OCSF): {reason}")]
    NotAnAlert {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl Format {
    /// Appends `alert` in this format to `out`, each JSON document followed
    /// by a newline.
    pub fn write(&self, alert: &AlertDocument, out: &mut Vec<u8>) {
        match self {
            Format::Ecs => push_alert(out, alert),
            Format::ElasticBulk { index } => {
                // A suppression group's final count updates its alert in
                // place; everything else is created once.
                let updates = alert
                    .get(field::SUPPRESSED_COUNT)
                    .and_then(Value::as_u64)
                    .is_some_and(|n| n > 0);
                let mut action = Map::new();
                action.insert("_index".into(), index.clone().into());
                if let Some(id) = alert.get(field::UUID) {
                    action.insert("_id".into(), id.clone());
                }
                let mut line = Map::new();
                line.insert(
                    if updates { "index" } else { "create" }.into(),
                    action.into(),
                );
                push_line(out, &line);
                push_alert(out, alert);
            }
            Format::Ocsf => push_line(out, &ocsf::finding(alert)),
        }
    }
}

fn push_alert(out: &mut Vec<u8>, alert: &AlertDocument) {
    alert.write_json(out);
    out.push(b'\n');
}

fn push_line(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Serializing a JSON value or object to a Vec cannot fail.
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

/// Reads an alerts file written in any [`Format`] back into alert
/// documents: bulk action lines are skipped, OCSF findings are turned back
/// into documents ([`ocsf::document`]). Blank lines are ignored. A document
/// whose id came before (a suppression group's final count) replaces the
/// earlier one in place.
pub fn read_alerts(text: &str) -> Result<Vec<AlertDocument>, FormatError> {
    let mut alerts: Vec<AlertDocument> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let not_an_alert = |reason: String| FormatError::NotAnAlert {
            line: index + 1,
            reason,
        };
        let object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(not_an_alert("not a JSON object".into())),
            Err(e) => return Err(not_an_alert(e.to_string())),
        };
        let is_bulk_action = object.len() == 1
            && ["create", "index"]
                .iter()
                .any(|op| object.get(*op).is_some_and(Value::is_object));
        if is_bulk_action {
            continue;
        }
        let alert = if object.get("class_uid") == Some(&Value::from(ocsf::CLASS_UID)) {
            ocsf::document(&object).map_err(not_an_alert)?
        } else if object.contains_key(field::RULE_ID) {
            AlertDocument::from(object)
        } else {
            return Err(not_an_alert(format!(
                "it has no `{}` (nor OCSF class_uid {})",
                field::RULE_ID,
                ocsf::CLASS_UID
            )));
        };
        alerts.push(alert);
    }
    Ok(latest_by_id(alerts))
}

/// Keeps the last document of each `kibana.alert.uuid` (a suppression
/// group's final count replaces its first writing), in the order the ids
/// first appeared.
pub fn latest_by_id(alerts: Vec<AlertDocument>) -> Vec<AlertDocument> {
    let mut out: Vec<AlertDocument> = Vec::with_capacity(alerts.len());
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for alert in alerts {
        let id = alert
            .get(field::UUID)
            .and_then(Value::as_str)
            .map(str::to_owned);
        match id.as_ref().and_then(|id| seen.get(id)) {
            Some(&earlier) => out[earlier] = alert,
            None => {
                if let Some(id) = id {
                    seen.insert(id, out.len());
                }
                out.push(alert);
            }
        }
    }
    out
}

/// Milliseconds since the Unix epoch of an RFC 3339 time.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> AlertDocument {
        let Value::Object(doc) = serde_json::json!({
            "@timestamp": "2026-04-22T10:00:00Z",
            "event.kind": "signal",
            "kibana.alert.uuid": "ab12",
            "kibana.alert.rule.rule_id": "aws-unusual-asn",
            "kibana.alert.rule.name": "AWS API Calls from an Unusual ASN",
            "kibana.alert.rule.description": "An identity calls AWS from a new network.",
            "kibana.alert.rule.version": "0.1.0",
            "kibana.alert.severity": "medium",
            "kibana.alert.risk_score": 47,
            "kibana.alert.reason": "AWS API Calls from an Unusual ASN: ci-deploy (AssumedRole)",
            "threat.technique.id": ["T1078"],
            "threat.technique.subtechnique.id": ["T1078.004"],
            "cloud.account.id": "123456789012",
            "user.name": "ci-deploy",
            "aws.cloudtrail.user_identity.type": "AssumedRole",
            "source.ip": "185.220.101.7",
            "source.as.number": 60729,
            "source.as.organization.name": "Stiftung Erneuerbare Freiheit",
            "event.action": "GetCallerIdentity",
            "event.provider": "sts.amazonaws.com",
            "trailguard.new_term": "Stiftung Erneuerbare Freiheit",
        }) else {
            unreachable!()
        };
        doc.into()
    }

    #[test]
    fn format_names() {
        for name in ["ecs", "elastic-bulk", "ocsf"] {
            assert_eq!(Format::from_str(name).expect(name).to_string(), name);
        }
        let err = Format::from_str("cef").expect_err("unknown");
        assert!(err.to_string().contains("use ecs, elastic-bulk or ocsf"));
    }

    #[test]
    fn bulk_is_an_action_then_the_document() {
        let mut out = Vec::new();
        Format::ElasticBulk {
            index: "alerts".into(),
        }
        .write(&sample(), &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            serde_json::json!({"create": {"_index": "alerts", "_id": "ab12"}})
        );
        assert_eq!(lines[1], Value::from(sample()));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn every_format_reads_back() {
        for format in ["ecs", "elastic-bulk", "ocsf"] {
            let mut out = Vec::new();
            let format = Format::from_str(format).expect("format");
            let mut other = sample();
            other.insert(field::UUID.into(), "cd34".into());
            let mut update = sample();
            update.insert(field::SUPPRESSED_COUNT.into(), 3.into());
            format.write(&sample(), &mut out);
            format.write(&other, &mut out);
            format.write(&update, &mut out);
            let back = read_alerts(std::str::from_utf8(&out).expect("utf-8")).expect("alerts");
            assert_eq!(back.len(), 2, "{format}: the update replaces its alert");
            assert_eq!(back[0][field::SUPPRESSED_COUNT], 3, "{format}");
            assert_eq!(back[1][field::UUID], "cd34", "{format}");
            for key in [
                field::TIMESTAMP,
                field::RULE_ID,
                field::RULE_NAME,
                field::SEVERITY,
                field::UUID,
                "user.name",
                "source.ip",
                "trailguard.new_term",
            ] {
                assert_eq!(back[0].get(key), sample().get(key), "{format}: {key}");
            }
        }
    }

    #[test]
    fn a_line_that_is_no_alert_is_named() {
        let err = read_alerts("\n{\"a\":1}\n").expect_err("not an alert");
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        assert!(read_alerts("[]").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time_ms("2026-04-22T10:00:00Z"),
            Some(1_776_852_000_000)
        );
        assert_eq!(
            parse_time_ms("2026-04-22T10:00:00.5Z"),
            Some(1_776_852_000_500)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
    }
}
