//! Alerts as OCSF Detection Findings (class_uid 2004), schema 1.1.0 with the
//! `cloud` profile: the shape AWS Security Lake reads.
//!
//! Mapped: time, severity, risk score, the rule (as `finding_info.analytic`),
//! MITRE ATT&CK (`finding_info.attacks`), the cloud account and region, the
//! API call (`api`), and the identity and source address (`evidences`).
//! Everything else the rule wrote (its own fields, the source AS, which OCSF
//! 1.1 has no attribute for) goes to `unmapped` under its ECS name, so no
//! information is lost and [`document`] can turn a finding back into the
//! alert.

use serde_json::{Map, Value, json};

use crate::{AlertDocument, field, parse_time_ms};

/// OCSF class of a Detection Finding.
pub const CLASS_UID: u64 = 2004;
/// The OCSF schema version written.
pub const OCSF_VERSION: &str = "1.1.0";

/// `activity_id` 1: Create (a new finding).
const ACTIVITY_CREATE: u64 = 1;

/// The OCSF finding of an alert.
pub fn finding(alert: &AlertDocument) -> Value {
    let text = |key: &str| {
        alert
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let time_ms = text(field::TIMESTAMP).and_then(parse_time_ms).unwrap_or(0);
    let (severity_id, severity) = match text(field::SEVERITY) {
        Some("low") => (2, "Low"),
        Some("medium") => (3, "Medium"),
        Some("high") => (4, "High"),
        Some("critical") => (5, "Critical"),
        _ => (0, "Unknown"),
    };
    let uid = text(field::UUID).unwrap_or_default();
    let rule_name = text(field::RULE_NAME).unwrap_or_default();

    let mut analytic = json!({"type_id": 1, "type": "Rule", "name": rule_name});
    if let Some(id) = text(field::RULE_ID) {
        analytic["uid"] = id.into();
    }
    if let Some(version) = text(field::RULE_VERSION) {
        analytic["version"] = version.into();
    }
    let mut info = json!({
        "uid": uid,
        "title": rule_name,
        "analytic": analytic,
        "first_seen_time": time_ms,
        "last_seen_time": time_ms,
    });
    if let Some(desc) = text(field::RULE_DESCRIPTION) {
        info["desc"] = desc.into();
    }
    let attacks = attacks(alert);
    if !attacks.is_empty() {
        info["attacks"] = attacks.into();
    }

    let mut finding = json!({
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "time": time_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "profiles": ["cloud"],
            "product": {
                "name": "trailguard",
                "vendor_name": "trailguard",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": info,
        "cloud": cloud(alert),
    });
    if let Some(reason) = text(field::REASON) {
        finding["message"] = reason.into();
    }
    if let Some(score) = alert.get(field::RISK_SCORE).and_then(Value::as_u64) {
        finding["risk_score"] = score.into();
    }
    if let Some(merged) = alert.get(field::SUPPRESSED_COUNT).and_then(Value::as_u64) {
        finding["count"] = (merged + 1).into();
        let start = text(field::SUPPRESSION_START).and_then(parse_time_ms);
        let end = text(field::SUPPRESSION_END).and_then(parse_time_ms);
        if let (Some(start), Some(end)) = (start, end) {
            finding["start_time"] = start.into();
            finding["end_time"] = end.into();
            finding["finding_info"]["first_seen_time"] = start.into();
            finding["finding_info"]["last_seen_time"] = end.into();
        }
    }
    let api = api(alert);
    if let Some(api) = &api {
        finding["api"] = api.clone();
    }
    let mut evidences: Vec<Value> = evidence(alert, api).into_iter().collect();
    evidences.extend(listed_events(alert));
    if !evidences.is_empty() {
        finding["evidences"] = evidences.into();
    }
    let unmapped: Map<String, Value> = alert
        .iter()
        .filter(|(key, _)| !field::HOST.contains(key))
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect();
    if !unmapped.is_empty() {
        finding["unmapped"] = unmapped.into();
    }
    finding
}

/// One `attack` per technique, with its sub-technique when there is one.
fn attacks(alert: &AlertDocument) -> Vec<Value> {
    let list = |key: &str| -> Vec<String> {
        alert
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let subtechniques = list(field::SUBTECHNIQUE_ID);
    let mut attacks = Vec::new();
    for technique in list(field::TECHNIQUE_ID) {
        let technique_json = json!({
            "uid": technique,
            "src_url": format!("https://attack.mitre.org/techniques/{technique}/"),
        });
        let subs: Vec<&String> = subtechniques
            .iter()
            .filter(|s| {
                s.split_once('.')
                    .is_some_and(|(parent, _)| parent == technique)
            })
            .collect();
        if subs.is_empty() {
            attacks.push(json!({"technique": technique_json}));
        }
        for sub in subs {
            attacks.push(json!({
                "technique": technique_json,
                "sub_technique": {
                    "uid": sub,
                    "src_url": format!("https://attack.mitre.org/techniques/{}/", sub.replace('.', "/")),
                },
            }));
        }
    }
    attacks
}

fn cloud(alert: &AlertDocument) -> Value {
    let mut cloud = json!({"provider": "AWS"});
    if let Some(account) = alert.get("cloud.account.id").and_then(Value::as_str) {
        cloud["account"] = json!({"uid": account});
    }
    if let Some(region) = alert.get("cloud.region").and_then(Value::as_str) {
        cloud["region"] = region.into();
    }
    cloud
}

fn api(alert: &AlertDocument) -> Option<Value> {
    let operation = alert.get("event.action").and_then(Value::as_str)?;
    let mut api = json!({"operation": operation});
    if let Some(service) = alert.get("event.provider").and_then(Value::as_str) {
        api["service"] = json!({"name": service});
    }
    Some(api)
}

/// The identity and where it called from, when the alert names them.
fn evidence(alert: &AlertDocument, api: Option<Value>) -> Option<Value> {
    let text = |key: &str| {
        alert
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut evidence = Map::new();
    if let Some(name) = text("user.name") {
        let mut user = json!({"name": name});
        if let Some(kind) = text("aws.cloudtrail.user_identity.type") {
            // Not one of OCSF's user types: `type_id` 99 (Other) and the
            // CloudTrail name as the caption.
            user["type_id"] = 99.into();
            user["type"] = kind.into();
        }
        if let Some(arn) = text("aws.cloudtrail.user_identity.arn") {
            user["uid"] = arn.into();
        }
        evidence.insert("actor".into(), json!({"user": user}));
    }
    if let Some(ip) = text("source.ip") {
        evidence.insert("src_endpoint".into(), json!({"ip": ip}));
    }
    if let Some(api) = api {
        evidence.insert("api".into(), api);
    }
    (!evidence.is_empty()).then_some(Value::Object(evidence))
}

/// Events the alert lists itself (arrays of event objects, such as rule
/// A's `trailguard.untrusted_events`), as evidences: where each call came
/// from and what it was. At most 50.
fn listed_events(alert: &AlertDocument) -> Vec<Value> {
    let user = alert.get("user.name").and_then(Value::as_str);
    alert
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|event| {
            let ip = event.get("source.ip").and_then(Value::as_str);
            let action = event.get("event.action").and_then(Value::as_str);
            if ip.is_none() && action.is_none() {
                return None;
            }
            let mut evidence = Map::new();
            if let Some(ip) = ip {
                evidence.insert("src_endpoint".into(), json!({"ip": ip}));
            }
            if let Some(action) = action {
                evidence.insert("api".into(), json!({"operation": action}));
            }
            if let Some(name) = user {
                evidence.insert("actor".into(), json!({"user": {"name": name}}));
            }
            Some(Value::Object(evidence))
        })
        .take(50)
        .collect()
}

/// Turns a finding written by [`finding`] back into the alert document
/// (the host's fields the report and tools read, plus everything in
/// `unmapped`).
pub fn document(finding: &Map<String, Value>) -> Result<AlertDocument, String> {
    let info = finding
        .get("finding_info")
        .and_then(Value::as_object)
        .ok_or("an OCSF finding without finding_info")?;
    let time_ms = finding
        .get("time")
        .and_then(Value::as_i64)
        .ok_or("an OCSF finding without a numeric time")?;
    let mut doc = Map::new();
    doc.insert(
        field::TIMESTAMP.into(),
        format_time(time_ms).ok_or("time out of range")?.into(),
    );
    let mut copy = |to: &str, from: Option<&Value>| {
        if let Some(value) = from {
            doc.insert(to.into(), value.clone());
        }
    };
    let analytic = info.get("analytic");
    copy(field::UUID, info.get("uid"));
    copy(field::RULE_ID, analytic.and_then(|a| a.get("uid")));
    copy(field::RULE_NAME, info.get("title"));
    copy(field::RULE_VERSION, analytic.and_then(|a| a.get("version")));
    copy(field::RULE_DESCRIPTION, info.get("desc"));
    copy(field::REASON, finding.get("message"));
    copy(field::RISK_SCORE, finding.get("risk_score"));
    let severity = finding
        .get("severity")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    copy(field::SEVERITY, severity.map(Value::from).as_ref());
    if let Some(count) = finding.get("count").and_then(Value::as_u64) {
        doc.insert(
            field::SUPPRESSED_COUNT.into(),
            count.saturating_sub(1).into(),
        );
        for (to, from) in [
            (field::SUPPRESSION_START, "start_time"),
            (field::SUPPRESSION_END, "end_time"),
        ] {
            if let Some(time) = finding
                .get(from)
                .and_then(Value::as_i64)
                .and_then(format_time)
            {
                doc.insert(to.into(), time.into());
            }
        }
    }
    let ids = |key: &str| -> Vec<Value> {
        info.get("attacks")
            .and_then(Value::as_array)
            .map(|attacks| {
                let mut ids: Vec<Value> = Vec::new();
                for id in attacks.iter().filter_map(|a| a.get(key)?.get("uid")) {
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
                ids
            })
            .unwrap_or_default()
    };
    for (to, from) in [
        (field::TECHNIQUE_ID, "technique"),
        (field::SUBTECHNIQUE_ID, "sub_technique"),
    ] {
        let list = ids(from);
        if !list.is_empty() {
            doc.insert(to.into(), list.into());
        }
    }
    if let Some(Value::Object(unmapped)) = finding.get("unmapped") {
        for (key, value) in unmapped {
            doc.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Ok(doc.into())
}

fn format_time(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sample;

    fn schema() -> jsonschema::Validator {
        let text =
            include_str!("../../../tests/data/ocsf/detection_finding-1.1.0-cloud.schema.json");
        let schema: Value = serde_json::from_str(text).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    }

    fn errors(validator: &jsonschema::Validator, finding: &Value) -> Vec<String> {
        validator
            .iter_errors(finding)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    #[test]
    fn a_finding_is_valid_ocsf() {
        let validator = schema();
        let finding = finding(&sample());
        assert_eq!(errors(&validator, &finding), Vec::<String>::new());
        assert_eq!(finding["class_uid"], 2004);
        assert_eq!(finding["type_uid"], 200401);
        assert_eq!(finding["time"], 1_776_852_000_000_i64);
        assert_eq!(finding["severity_id"], 3);
        assert_eq!(
            finding["finding_info"]["analytic"]["uid"],
            "aws-unusual-asn"
        );
        assert_eq!(
            finding["finding_info"]["attacks"][0]["sub_technique"]["uid"],
            "T1078.004"
        );
        assert_eq!(finding["cloud"]["account"]["uid"], "123456789012");
        assert_eq!(
            finding["evidences"][0]["src_endpoint"]["ip"],
            "185.220.101.7"
        );
        assert_eq!(
            finding["evidences"][0]["actor"]["user"]["name"],
            "ci-deploy"
        );
        assert_eq!(finding["api"]["operation"], "GetCallerIdentity");
        assert_eq!(finding["unmapped"]["source.as.number"], 60729);
        assert!(finding["unmapped"].get("kibana.alert.severity").is_none());
    }

    #[test]
    fn events_an_alert_lists_become_evidences() {
        let validator = schema();
        let mut alert = sample();
        alert.insert(
            "trailguard.untrusted_events".into(),
            json!([{"event.action": "ListBuckets", "source.ip": "73.162.41.17", "source.as.organization.name": "Comcast"}]),
        );
        let f = finding(&alert);
        assert_eq!(errors(&validator, &f), Vec::<String>::new());
        assert_eq!(f["evidences"].as_array().map(Vec::len), Some(2));
        assert_eq!(f["evidences"][1]["src_endpoint"]["ip"], "73.162.41.17");
        assert_eq!(f["evidences"][1]["api"]["operation"], "ListBuckets");
    }

    #[test]
    fn the_schema_check_can_fail() {
        let validator = schema();
        let mut bad = finding(&sample());
        bad["class_uid"] = 2003.into();
        bad["trailguard"] = true.into();
        bad["metadata"]["product"]
            .as_object_mut()
            .expect("product")
            .remove("vendor_name");
        let errors = errors(&validator, &bad);
        assert!(errors.len() >= 3, "{errors:?}");
    }

    #[test]
    fn suppressed_alerts_and_a_bare_alert_are_valid_too() {
        let validator = schema();
        let mut alert = sample();
        alert.insert(field::SUPPRESSED_COUNT.into(), 4.into());
        alert.insert(
            field::SUPPRESSION_START.into(),
            "2026-04-22T10:00:00Z".into(),
        );
        alert.insert(field::SUPPRESSION_END.into(), "2026-04-22T10:40:00Z".into());
        let f = finding(&alert);
        assert_eq!(errors(&validator, &f), Vec::<String>::new());
        assert_eq!(f["count"], 5);
        let mut bare = AlertDocument::new();
        bare.insert(field::TIMESTAMP.into(), "2026-04-22T10:00:00Z".into());
        let f = finding(&bare);
        assert_eq!(errors(&validator, &f), Vec::<String>::new());
    }
}
