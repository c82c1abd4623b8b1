//! From what a rule returns to the alert document written out: the rule's
//! fields plus its metadata under ECS / Elastic names.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use trailguard_rule_sdk::{Alert, RuleInfo, format_timestamp_ms};

/// One alert as written to the output: a flat JSON object with dotted ECS
/// names (`@timestamp`, `rule.id`, `severity`, ... plus the rule's fields).
pub type AlertDocument = Map<String, Value>;

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
    let mut doc = Map::new();
    doc.insert(
        "@timestamp".into(),
        format_timestamp_ms(alert.timestamp_ms).into(),
    );
    // Deterministic: the same rule, time and content give the same id, so
    // an alert emitted again after a restart is recognisable as the same.
    let mut hash = Sha256::new();
    hash.update(info.id.as_bytes());
    hash.update(b"\n");
    hash.update(alert.timestamp_ms.to_string().as_bytes());
    hash.update(b"\n");
    hash.update(alert.document.as_bytes());
    let digest = format!("{:x}", hash.finalize());
    doc.insert("trailguard.alert.id".into(), digest[..32].to_owned().into());
    doc.insert("rule.id".into(), info.id.clone().into());
    doc.insert("rule.name".into(), info.name.clone().into());
    doc.insert("rule.version".into(), info.version.clone().into());
    doc.insert("severity".into(), info.severity.as_str().into());
    doc.insert("risk_score".into(), info.risk_score.into());
    doc.insert(
        "threat.technique.id".into(),
        info.mitre_techniques.clone().into(),
    );
    for (key, value) in fields {
        // The host's metadata wins over a rule's claim to the same names.
        doc.entry(key).or_insert(value);
    }
    Ok(doc)
}
