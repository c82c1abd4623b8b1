//! From what a rule returns to the alert document written out: an Elastic
//! Security alert (ECS plus `kibana.alert.*`) holding the rule's own fields.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use trailguard_format::{AlertDocument, ECS_VERSION, SharedFields, field};
use trailguard_rule_sdk::{Alert, RuleInfo, format_timestamp_ms};

use crate::Provenance;

/// Fields only the host writes: a rule's document cannot set them, in any
/// spelling (`kibana.alert.severity`, `{"kibana":{"alert":{...}}}`,
/// `Kibana..alert`), since consumers read them as the host's word.
const HOST_OWNED: &[&[&str]] = &[
    &["@timestamp"],
    &["ecs", "version"],
    &["event", "kind"],
    &["kibana"],
    &["threat"],
];

/// Builds the alert documents of one rule: the host's fields, computed once
/// when the rule is loaded, and the identity every alert id binds (rule id,
/// version, component digest, publisher), so a rule claiming another's id
/// cannot produce that rule's alert ids.
#[derive(Clone, Debug)]
pub(crate) struct AlertMaker {
    /// The rule's name, for the reason sentence.
    name: String,
    /// Fields that do not depend on the alert, shared by its alerts.
    fixed: Arc<SharedFields>,
    /// The start of every alert id's hash input.
    identity: Vec<u8>,
}

/// ATT&CK tactic names from tags in Sigma's spelling (`attack.initial-access`
/// → `Initial Access`); technique tags (`attack.t1078`) and others are not
/// tactics.
fn tactics(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack."))
        // Tactics are words (`initial-access`); techniques, groups and
        // software have digits (`t1078`, `g0016`, `s0002`).
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        .map(|t| {
            t.split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .map(|name| name.replace("And", "and"))
        .collect()
}

impl AlertMaker {
    pub(crate) fn new(info: &RuleInfo, provenance: &Provenance) -> AlertMaker {
        let mut identity = Vec::new();
        for part in [
            "trailguard-alert/2",
            info.id.as_str(),
            info.version.as_str(),
            provenance.digest.as_deref().unwrap_or(""),
            provenance.publisher.as_deref().unwrap_or(""),
        ] {
            // Length-prefixed: no two identities hash the same bytes.
            identity.extend_from_slice(&(part.len() as u64).to_le_bytes());
            identity.extend_from_slice(part.as_bytes());
        }
        let mut fixed = Map::new();
        let mut put = |key: &str, value: Value| {
            fixed.insert(key.to_owned(), value);
        };
        put("event.kind", "signal".into());
        put("ecs.version", ECS_VERSION.into());
        put("kibana.alert.status", "active".into());
        put("kibana.alert.workflow_status", "open".into());
        put(field::SEVERITY, info.severity.as_str().into());
        put(field::RISK_SCORE, info.risk_score.into());
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
        let tags: Vec<&str> = std::iter::once("trailguard")
            .chain(info.tags.iter().map(String::as_str))
            .collect();
        put("kibana.alert.rule.tags", json!(tags));
        if !info.references.is_empty() {
            put("kibana.alert.rule.references", json!(info.references));
        }
        if !info.author.is_empty() {
            put("kibana.alert.rule.author", json!([info.author]));
        }
        let tactics = tactics(&info.tags);
        if !tactics.is_empty() {
            put("threat.framework", "MITRE ATT&CK".into());
            put("threat.tactic.name", json!(tactics));
        }
        put("kibana.space_ids", json!(["default"]));
        if !info.mitre_techniques.is_empty() {
            let (techniques, subtechniques) = techniques(&info.mitre_techniques);
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
        AlertMaker {
            name: info.name.clone(),
            fixed: SharedFields::new(fixed),
            identity,
        }
    }

    /// An upper bound of what the host adds to each alert beyond the rule's
    /// document (its fixed fields, times, id and the reason's prefix); the
    /// reason may repeat the document's text once more.
    pub(crate) fn overhead(&self) -> usize {
        self.fixed.json_len() + self.name.len() + 512
    }

    /// Builds the alert document; `Err` when the rule's `document` is not a
    /// JSON object (a misbehaving rule). Also returns how many host-owned
    /// fields the rule tried to write (they are dropped).
    pub(crate) fn document(&self, alert: Alert) -> Result<(AlertDocument, usize), String> {
        let mut fields = match serde_json::from_str::<Value>(&alert.document) {
            Ok(Value::Object(fields)) => fields,
            Ok(other) => {
                return Err(format!(
                    "returned an alert that is not a JSON object: {other:.100}"
                ));
            }
            Err(e) => return Err(format!("returned an alert that is not JSON: {e}")),
        };
        // A rule may say why, in its own words: the reason is the one
        // host-owned field it writes (the host prefixes the rule's name).
        let own_reason = match fields.remove(field::REASON) {
            Some(Value::String(own)) if !own.is_empty() => Some(own),
            _ => None,
        };
        let dropped = strip_host_owned(&mut fields, &[]);
        let time = format_timestamp_ms(alert.timestamp_ms);
        // Deterministic: the same rule build, time and content give the same
        // id, so an alert emitted again after a restart or a replay is the
        // same alert (and an Elastic `_bulk` create with this `_id` is not
        // indexed twice).
        let mut hash = Sha256::new();
        hash.update(&self.identity);
        hash.update(alert.timestamp_ms.to_le_bytes());
        hash.update(alert.document.as_bytes());
        let uuid = format!("{:x}", hash.finalize());
        // The rule's own sentence if it wrote one, else one from its fields.
        let reason = match own_reason {
            Some(own) => format!("{}: {own}", self.name),
            None => reason(&self.name, &fields),
        };
        // The host's fields win over the rule's of the same name.
        fields.insert(field::TIMESTAMP.to_owned(), time.clone().into());
        fields.insert(field::UUID.to_owned(), uuid.into());
        fields.insert("kibana.alert.original_time".to_owned(), time.clone().into());
        fields.insert("kibana.alert.start".to_owned(), time.into());
        fields.insert(field::REASON.to_owned(), reason.into());
        Ok((
            AlertDocument::with_shared(self.fixed.clone(), fields),
            dropped,
        ))
    }
}

/// The dot-separated path segments of a key, as a consumer might read
/// them: trimmed, empty segments dropped.
fn segments(key: &str) -> impl Iterator<Item = &str> {
    key.split('.').map(str::trim).filter(|s| !s.is_empty())
}

/// Removes every field under a host-owned path (`parent` is the path of
/// `fields` in the document); returns how many it removed.
fn strip_host_owned(fields: &mut Map<String, Value>, parent: &[&str]) -> usize {
    let mut dropped = 0;
    // At the top, a key whose first segment starts no host-owned path is
    // the rule's own (most keys: `user.name`, `Esql.*`): no need to look
    // further. A key without segments relates to every path; it is looked at.
    let may_be_owned = |key: &&String| {
        !parent.is_empty()
            || segments(key).next().is_none_or(|first| {
                HOST_OWNED
                    .iter()
                    .any(|owned| owned[0].eq_ignore_ascii_case(first))
            })
    };
    let keys: Vec<String> = fields.keys().filter(may_be_owned).cloned().collect();
    for key in keys {
        let path: Vec<&str> = parent.iter().copied().chain(segments(&key)).collect();
        let relation = HOST_OWNED
            .iter()
            .map(|owned| {
                let common = owned
                    .iter()
                    .zip(&path)
                    .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                    .count();
                if common == owned.len() {
                    Relation::Owned
                } else if common == path.len() {
                    Relation::Above
                } else {
                    Relation::Apart
                }
            })
            .min()
            .unwrap_or(Relation::Apart);
        match relation {
            Relation::Owned => {
                fields.remove(&key);
                dropped += 1;
            }
            Relation::Above => match fields.get_mut(&key) {
                Some(Value::Object(inner)) => {
                    let under = strip_host_owned(inner, &path);
                    if under > 0 && inner.is_empty() {
                        // Nothing of the rule's own was left in it.
                        fields.remove(&key);
                    }
                    dropped += under;
                }
                // An array (whose objects a consumer flattens into the
                // host's fields) or a scalar (which clashes with them) where
                // the host writes an object: the rule's value goes.
                _ => {
                    fields.remove(&key);
                    dropped += 1;
                }
            },
            Relation::Apart => {}
        }
    }
    dropped
}

/// How a field's path relates to a host-owned one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Relation {
    /// At or below a host-owned path.
    Owned,
    /// A parent of a host-owned path (`kibana.alert` of nothing, `event` of
    /// `event.kind`): its object members may be host-owned.
    Above,
    /// Unrelated.
    Apart,
}

/// An ATT&CK id and its reference URL.
type Technique = (String, String);

/// The techniques and the sub-techniques: `T1078.004` counts as
/// sub-technique `T1078.004` of technique `T1078`. Linear in the ids.
fn techniques(ids: &[String]) -> (Vec<Technique>, Vec<Technique>) {
    let mut techniques: Vec<Technique> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut subtechniques = Vec::new();
    for id in ids {
        let (parent, sub) = match id.split_once('.') {
            Some((parent, sub)) => (parent, Some(sub)),
            None => (id.as_str(), None),
        };
        if seen.insert(parent) {
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
            tags: Vec::new(),
            references: Vec::new(),
            author: String::new(),
        }
    }

    fn maker() -> AlertMaker {
        AlertMaker::new(&info(), &Provenance::default())
    }

    fn document(alert: Alert) -> AlertDocument {
        maker().document(alert).expect("object").0
    }

    #[test]
    fn elastic_alert_fields_and_the_rules_own() {
        let alert = Alert {
            rule: 0,
            timestamp_ms: 1_776_852_000_000,
            document: r#"{"user.name":"ci","source.ip":"1.2.3.4","source.as.organization.name":"Tor","kibana.alert.severity":"low","Esql.n":2}"#.into(),
        };
        let doc = document(alert.clone());
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
        let again = document(alert);
        assert_eq!(again["kibana.alert.uuid"], doc["kibana.alert.uuid"]);
    }

    #[test]
    fn host_owned_fields_cannot_be_written_in_any_spelling() {
        let forged = r#"{
            "user.name": "ci",
            "kibana": {"alert": {"severity": "low", "rule": {"rule_id": "other"}}},
            "kibana.alert": {"risk_score": 1},
            "Kibana..alert.uuid": "x",
            " kibana .alert.reason": "forged",
            "@timestamp": "1999-01-01T00:00:00Z",
            "event": {"kind": "event", "action": "GetSecretValue"},
            "event.kind": "event",
            "threat": {"framework": "none"},
            "ecs": {"version": "0.1"},
            "..": {"kibana": {"alert": {"uuid": "y"}}},
            "kibanas": "kept"
        }"#;
        let arrays = r#"{"event": [{"kind": "alert", "action": "x"}], "ecs": "0.1", "rule": [{"kibana": 1}]}"#;
        let (doc, dropped) = maker()
            .document(Alert {
                rule: 0,
                timestamp_ms: 0,
                document: arrays.into(),
            })
            .expect("object");
        assert_eq!(dropped, 2, "{doc:#?}");
        assert_eq!(doc["event.kind"], "signal");
        assert_eq!(doc["ecs.version"], ECS_VERSION);
        assert!(
            doc.get("event").is_none() && doc.get("ecs").is_none(),
            "{doc:#?}"
        );
        // Not under a host-owned path: the rule's own.
        assert_eq!(doc["rule"], json!([{"kibana": 1}]));
        let (doc, dropped) = maker()
            .document(Alert {
                rule: 0,
                timestamp_ms: 1_776_852_000_000,
                document: forged.into(),
            })
            .expect("object");
        assert_eq!(dropped, 10, "{doc:#?}");
        for forged in [
            "..",
            "Kibana..alert.uuid",
            " kibana .alert.reason",
            "kibana.alert",
        ] {
            assert!(!doc.contains_key(forged), "{forged} survived");
        }
        assert!(!doc.contains_key("kibana"));
        assert!(!doc.contains_key("threat"));
        assert!(!doc.contains_key("ecs"));
        assert_eq!(doc["kibana.alert.severity"], "high");
        assert_eq!(doc["kibana.alert.rule.rule_id"], "r");
        assert_eq!(doc["@timestamp"], "2026-04-22T10:00:00Z");
        assert_eq!(doc["event.kind"], "signal");
        // A sibling of a host-owned field inside a shared parent stays.
        assert_eq!(doc["event"], json!({"action": "GetSecretValue"}));
        assert_eq!(doc["kibanas"], "kept");
    }

    #[test]
    fn the_alert_id_binds_the_rule_build_and_publisher() {
        let alert = Alert {
            rule: 0,
            timestamp_ms: 1,
            document: "{}".into(),
        };
        let id = |provenance: Provenance, info: RuleInfo| {
            AlertMaker::new(&info, &provenance)
                .document(alert.clone())
                .expect("object")
                .0["kibana.alert.uuid"]
                .clone()
        };
        let real = Provenance {
            digest: Some("aa".into()),
            publisher: Some("acme".into()),
        };
        let base = id(real.clone(), info());
        assert_eq!(base, id(real.clone(), info()));
        let impostor = Provenance {
            digest: Some("bb".into()),
            ..real.clone()
        };
        assert_ne!(base, id(impostor, info()), "another build");
        let other_signer = Provenance {
            publisher: Some("evil".into()),
            ..real.clone()
        };
        assert_ne!(base, id(other_signer, info()), "another publisher");
        let mut older = info();
        older.version = "0.9.0".into();
        assert_ne!(base, id(real, older), "another version");
    }

    #[test]
    fn tactic_tags_become_tactic_names_and_other_tags_do_not() {
        let tags = [
            "attack.initial-access",
            "attack.t1078.004",
            "attack.g0016",
            "attack.command-and-control",
            "attack.",
            "cve.2021-44228",
            "detection.threat-hunting",
        ]
        .map(String::from);
        assert_eq!(tactics(&tags), ["Initial Access", "Command and Control"]);
    }

    #[test]
    fn techniques_are_deduplicated_in_linear_time() {
        let ids: Vec<String> = (0..20_000)
            .map(|i| format!("T{:04}.{:03}", i % 10_000, i % 1000))
            .collect();
        let (techniques, subtechniques) = techniques(&ids);
        assert_eq!(techniques.len(), 10_000);
        assert_eq!(subtechniques.len(), 20_000);
    }

    #[test]
    fn the_rules_own_reason_is_kept_after_its_name() {
        let (doc, dropped) = maker()
            .document(Alert {
                rule: 0,
                timestamp_ms: 0,
                document: r#"{"kibana.alert.reason":"ci-a used 2 sensitive actions"}"#.into(),
            })
            .expect("object");
        assert_eq!(dropped, 0);
        assert_eq!(
            doc["kibana.alert.reason"],
            "Rule: ci-a used 2 sensitive actions"
        );
    }

    #[test]
    fn a_non_object_is_refused() {
        let alert = Alert {
            rule: 0,
            timestamp_ms: 0,
            document: "[1]".into(),
        };
        assert!(maker().document(alert).is_err());
    }
}
