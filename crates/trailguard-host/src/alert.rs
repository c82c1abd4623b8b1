//! From what a rule returns to the alert document written out: an Elastic
//! Security alert (ECS plus `kibana.alert.*`) holding the rule's own fields.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use trailguard_format::{AlertDocument, ECS_VERSION, field};
use trailguard_rule_sdk::{Alert, RuleInfo, format_timestamp_ms};

/// Builds the alert document; `Err` when the rule's `document` is not a JSON
/// object (a misbehaving rule).
pub(crate) fn document(info: &RuleInfo, alert: Alert) -> Result<AlertDocument, String> {
    let fields = match serde_json::from_str::<Value>(&alert.document) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => {
            return Err(format!(
                "returned an alert that is not a JSON object: {other:.100}"
            ));
        }
        Err(e) => return Err(format!("returned an alert that is not JSON: {e}")),
    };
    let time = format_timestamp_ms(alert.timestamp_ms);
    // Deterministic: the same rule, time and content give the same id, so
    // an alert emitted again after a restart or a replay is the same alert
    // (and an Elastic `_bulk` create with this `_id` is not indexed twice).
    let mut hash = Sha256::new();
    hash.update(info.id.as_bytes());
    hash.update(b"\n");
    hash.update(alert.timestamp_ms.to_string().as_bytes());
    hash.update(b"\n");
    hash.update(alert.document.as_bytes());
    let uuid = format!("{:x}", hash.finalize());

    let (techniques, subtechniques) = techniques(&info.mitre_techniques);
    // The rule's own sentence if it wrote one, else one from its fields.
    let reason = match fields.get(field::REASON) {
        Some(Value::String(own)) if !own.is_empty() => format!("{}: {own}", info.name),
        _ => reason(&info.name, &fields),
    };
    let mut doc = Map::new();
    let mut put = |key: &str, value: Value| {
        doc.insert(key.to_owned(), value);
    };
    put(field::TIMESTAMP, time.clone().into());
    put("event.kind", "signal".into());
    put("ecs.version", ECS_VERSION.into());
    put(field::UUID, uuid.into());
    put("kibana.alert.original_time", time.clone().into());
    put("kibana.alert.start", time.into());
    put("kibana.alert.status", "active".into());
    put("kibana.alert.workflow_status", "open".into());
    put(field::SEVERITY, info.severity.as_str().into());
    put(field::RISK_SCORE, info.risk_score.into());
    put(field::REASON, reason.into());
    put(field::RULE_ID, info.id.clone().into());
    put("kibana.alert.rule.uuid", info.id.clone().into());
    put(field::RULE_NAME, info.name.clone().into());
    put(field::RULE_DESCRIPTION, info.description.clone().into());
    put(field::RULE_VERSION, info.version.clone().into());
    put("kibana.alert.rule.severity", info.severity.as_str().into());
    put("kibana.alert.rule.risk_score", info.risk_score.into());
    put("kibana.alert.rule.category", "trailguard rule".into());
    put("kibana.alert.rule.consumer", "siem".into());
    put("kibana.alert.rule.producer", "siem".into());
    put("kibana.alert.rule.tags", json!(["trailguard"]));
    put("kibana.space_ids", json!(["default"]));
    if !info.mitre_techniques.is_empty() {
        put("threat.framework", "MITRE ATT&CK".into());
        put(
            field::TECHNIQUE_ID,
            techniques.iter().map(|t| t.0.as_str()).collect(),
        );
        put(
            "threat.technique.reference",
            techniques.iter().map(|t| t.1.as_str()).collect(),
        );
        if !subtechniques.is_empty() {
            put(
                field::SUBTECHNIQUE_ID,
                subtechniques.iter().map(|t| t.0.as_str()).collect(),
            );
            put(
                "threat.technique.subtechnique.reference",
                subtechniques.iter().map(|t| t.1.as_str()).collect(),
            );
        }
    }
    for (key, value) in fields {
        // The host's metadata wins over a rule's claim to the same names.
        doc.entry(key).or_insert(value);
    }
    Ok(doc)
}

/// An ATT&CK id and its reference URL.
type Technique = (String, String);

/// The techniques and the sub-techniques: `T1078.004` counts as
/// sub-technique `T1078.004` of technique `T1078`.
fn techniques(ids: &[String]) -> (Vec<Technique>, Vec<Technique>) {
    let mut techniques: Vec<Technique> = Vec::new();
    let mut subtechniques = Vec::new();
    for id in ids {
        let (parent, sub) = match id.split_once('.') {
            Some((parent, sub)) => (parent, Some(sub)),
            None => (id.as_str(), None),
        };
        if !techniques.iter().any(|(t, _)| t == parent) {
            techniques.push((
                parent.to_owned(),
                format!("https://attack.mitre.org/techniques/{parent}/"),
            ));
        }
        if let Some(sub) = sub {
            subtechniques.push((
                id.clone(),
                format!("https://attack.mitre.org/techniques/{parent}/{sub}/"),
            ));
        }
    }
    (techniques, subtechniques)
}

/// One sentence for `kibana.alert.reason`, from the fields the rule gave.
fn reason(rule_name: &str, fields: &Map<String, Value>) -> String {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut reason = rule_name.to_owned();
    if let Some(user) = text("user.name") {
        reason.push_str(&format!(": {user}"));
        if let Some(kind) = text("aws.cloudtrail.user_identity.type") {
            reason.push_str(&format!(" ({kind})"));
        }
    }
    if let Some(account) = text("cloud.account.id") {
        reason.push_str(&format!(" in account {account}"));
    }
    if let Some(action) = text("event.action") {
        reason.push_str(&format!(" called {action}"));
    }
    match (text("source.as.organization.name"), text("source.ip")) {
        (Some(org), Some(ip)) => reason.push_str(&format!(" from {org} ({ip})")),
        (Some(org), None) => reason.push_str(&format!(" from {org}")),
        (None, Some(ip)) => reason.push_str(&format!(" from {ip}")),
        (None, None) => {}
    }
    reason
}

#[cfg(test)]
mod tests {
    use trailguard_rule_sdk::Severity;

    use super::*;

    fn info() -> RuleInfo {
        RuleInfo {
            id: "r".into(),
            name: "Rule".into(),
            version: "1.0.0".into(),
            severity: Severity::High,
            risk_score: 73,
            mitre_techniques: vec!["T1078.004".into(), "T1078.001".into(), "T1530".into()],
            description: "d".into(),
            default_config: String::new(),
        }
    }

    #[test]
    fn elastic_alert_fields_and_the_rules_own() {
        let alert = Alert {
            timestamp_ms: 1_776_852_000_000,
            document: r#"{"user.name":"ci","source.ip":"1.2.3.4","source.as.organization.name":"Tor","kibana.alert.severity":"low","Esql.n":2}"#.into(),
        };
        let doc = document(&info(), alert.clone()).expect("object");
        assert_eq!(doc["@timestamp"], "2026-04-22T10:00:00Z");
        assert_eq!(doc["kibana.alert.original_time"], "2026-04-22T10:00:00Z");
        assert_eq!(doc["kibana.alert.rule.rule_id"], "r");
        // The rule cannot overwrite the host's metadata.
        assert_eq!(doc["kibana.alert.severity"], "high");
        assert_eq!(doc["kibana.alert.risk_score"], 73);
        assert_eq!(doc["Esql.n"], 2);
        assert_eq!(doc["threat.technique.id"], json!(["T1078", "T1530"]));
        assert_eq!(
            doc["threat.technique.subtechnique.id"],
            json!(["T1078.004", "T1078.001"])
        );
        assert_eq!(
            doc["threat.technique.subtechnique.reference"][0],
            "https://attack.mitre.org/techniques/T1078/004/"
        );
        assert_eq!(doc["kibana.alert.reason"], "Rule: ci from Tor (1.2.3.4)");
        let uuid = doc["kibana.alert.uuid"].as_str().expect("uuid");
        assert_eq!(uuid.len(), 64);
        // Deterministic.
        let again = document(&info(), alert).expect("object");
        assert_eq!(again["kibana.alert.uuid"], doc["kibana.alert.uuid"]);
    }

    #[test]
    fn a_non_object_is_refused() {
        let alert = Alert {
            timestamp_ms: 0,
            document: "[1]".into(),
        };
        assert!(document(&info(), alert).is_err());
    }
}
