//! Alert output end to end: the real CLI on generated CloudTrail with
//! attacks, in every `--format`, checked against Elastic's alert fields and
//! ECS (tests/data/ecs), the OCSF schema (tests/data/ocsf) and the `_bulk`
//! protocol; plus suppression and `--since` / `--until`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use common::{alerts, generate, json_lines, run, stderr};
use serde_json::Value;
use trailguard_gen::{StolenCiCredentials, write_deliveries};

/// The Elastic Security alert fields trailguard writes, with their mapping
/// types, as Elastic's alert schema documents them
/// (<https://www.elastic.co/guide/en/security/current/alert-schema.html>).
/// The first ones are present in every alert.
const ELASTIC_ALERT_FIELDS: &[(&str, &str, bool)] = &[
    ("kibana.alert.uuid", "keyword", true),
    ("kibana.alert.original_time", "date", true),
    ("kibana.alert.start", "date", true),
    ("kibana.alert.status", "keyword", true),
    ("kibana.alert.workflow_status", "keyword", true),
    ("kibana.alert.severity", "keyword", true),
    ("kibana.alert.risk_score", "float", true),
    ("kibana.alert.reason", "keyword", true),
    ("kibana.alert.rule.rule_id", "keyword", true),
    ("kibana.alert.rule.uuid", "keyword", true),
    ("kibana.alert.rule.name", "keyword", true),
    ("kibana.alert.rule.description", "keyword", true),
    ("kibana.alert.rule.version", "keyword", true),
    ("kibana.alert.rule.severity", "keyword", true),
    ("kibana.alert.rule.risk_score", "float", true),
    ("kibana.alert.rule.category", "keyword", true),
    ("kibana.alert.rule.consumer", "keyword", true),
    ("kibana.alert.rule.producer", "keyword", true),
    ("kibana.alert.rule.tags", "keyword", true),
    ("kibana.space_ids", "keyword", true),
    ("kibana.alert.suppression.docs_count", "long", false),
    ("kibana.alert.suppression.start", "date", false),
    ("kibana.alert.suppression.end", "date", false),
    ("kibana.alert.suppression.terms", "object", false),
];

/// Namespaces that are neither ECS nor Elastic's alert fields, and whose
/// fields are therefore free: the AWS integration's, the ES|QL rule's
/// `Esql.*` values, and trailguard's own.
const FREE_NAMESPACES: &[&str] = &["aws", "Esql", "trailguard"];

fn ecs_fields() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(common::root().join("tests/data/ecs/ecs-9.4.0-fields.json"))
        .expect("ECS field list");
    serde_json::from_str(&text).expect("ECS field list is JSON")
}

/// Whether `value` fits an Elasticsearch field of `kind` (arrays of it too).
fn fits(kind: &str, value: &Value) -> bool {
    if let Value::Array(items) = value {
        return kind == "nested" || items.iter().all(|v| fits(kind, v));
    }
    match kind {
        "keyword" | "constant_keyword" | "wildcard" | "match_only_text" => value.is_string(),
        "long" => value.is_i64() || value.is_u64(),
        "float" | "scaled_float" => value.is_number(),
        "boolean" => value.is_boolean(),
        "date" => value
            .as_str()
            .and_then(trailguard_format::parse_time_ms)
            .is_some(),
        "ip" => value.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok()),
        "object" | "flattened" | "nested" => value.is_object(),
        _ => false,
    }
}

/// Every field of an ECS-format alert is an Elastic alert field, an ECS
/// field, or in a free namespace; and each value fits its field's type.
fn shape_errors(alert: &Value, ecs: &BTreeMap<String, String>) -> Vec<String> {
    let doc = alert.as_object().expect("an alert is an object");
    let mut errors = Vec::new();
    for (name, _, required) in ELASTIC_ALERT_FIELDS {
        if *required && !doc.contains_key(*name) {
            errors.push(format!("missing {name}"));
        }
    }
    for required in ["@timestamp", "event.kind", "ecs.version"] {
        if !doc.contains_key(required) {
            errors.push(format!("missing {required}"));
        }
    }
    let ecs_sets: BTreeSet<&str> = ecs
        .keys()
        .map(|k| k.split('.').next().unwrap_or_default())
        .collect();
    for (key, value) in doc {
        let top = key.split('.').next().unwrap_or_default();
        let kind = if let Some((_, kind, _)) = ELASTIC_ALERT_FIELDS.iter().find(|f| f.0 == key) {
            *kind
        } else if let Some(kind) = ecs.get(key) {
            kind.as_str()
        } else if FREE_NAMESPACES.contains(&top) {
            continue;
        } else if top == "kibana" || ecs_sets.contains(top) {
            errors.push(format!(
                "{key}: not an Elastic alert field nor an ECS field"
            ));
            continue;
        } else {
            errors.push(format!("{key}: in no known namespace"));
            continue;
        };
        if !fits(kind, value) {
            errors.push(format!("{key}: {value} does not fit a {kind} field"));
        }
    }
    errors
}

fn run_format(dir: &Path, input: &Path, format: &str) -> String {
    let out = run(dir, &[input], &["--format", format]);
    assert!(out.status.success(), "{format}: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn every_format_carries_the_same_alerts_in_its_own_valid_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, truth) = generate(dir.path(), 40_000, 3);
    let ecs_text = run_format(dir.path(), &input, "ecs");
    let ecs_alerts = json_lines(&ecs_text);
    // Both detections fire on each attack.
    assert!(ecs_alerts.len() >= 2 * truth.len(), "{ecs_text}");
    let rules: BTreeSet<&str> = ecs_alerts
        .iter()
        .filter_map(|a| a["kibana.alert.rule.rule_id"].as_str())
        .collect();
    assert!(
        rules.contains("aws-sensitive-untrusted-asn") && rules.contains("aws-unusual-asn"),
        "{rules:?}"
    );

    // ECS: Elastic's alert fields and ECS, every value of the right type.
    let ecs = ecs_fields();
    for alert in &ecs_alerts {
        assert_eq!(shape_errors(alert, &ecs), Vec::<String>::new(), "{alert:#}");
        assert_eq!(alert["event.kind"], "signal");
        assert_eq!(alert["kibana.alert.status"], "active");
        assert_eq!(alert["kibana.alert.original_time"], alert["@timestamp"]);
    }
    // The shape check can fail.
    let mut broken = ecs_alerts[0].clone();
    broken["source.ip"] = "not an address".into();
    broken["kibana.alert.made_up"] = 1.into();
    broken["user.nickname"] = "x".into();
    assert_eq!(shape_errors(&broken, &ecs).len(), 3);

    // Elastic bulk: a create action with the alert's id, then the alert.
    let bulk = json_lines(&run_format(dir.path(), &input, "elastic-bulk"));
    assert_eq!(bulk.len(), 2 * ecs_alerts.len());
    for (pair, alert) in bulk.chunks(2).zip(&ecs_alerts) {
        assert_eq!(
            pair[0],
            serde_json::json!({"create": {"_index": "trailguard-alerts", "_id": alert["kibana.alert.uuid"]}})
        );
        assert_eq!(&pair[1], alert);
    }
    let out = run(
        dir.path(),
        &[&input],
        &["--format", "elastic-bulk", "--elastic-index", "sec-alerts"],
    );
    assert_eq!(
        json_lines(&String::from_utf8_lossy(&out.stdout))[0]["create"]["_index"],
        "sec-alerts"
    );

    // OCSF: every finding valid against the Detection Finding schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::root().join("tests/data/ocsf/detection_finding-1.1.0-cloud.schema.json"),
        )
        .expect("schema"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let findings = json_lines(&run_format(dir.path(), &input, "ocsf"));
    assert_eq!(findings.len(), ecs_alerts.len());
    for (finding, alert) in findings.iter().zip(&ecs_alerts) {
        let errors: Vec<String> = validator
            .iter_errors(finding)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert_eq!(errors, Vec::<String>::new(), "{finding:#}");
        assert_eq!(finding["class_uid"], 2004);
        assert_eq!(finding["finding_info"]["uid"], alert["kibana.alert.uuid"]);
        assert_eq!(
            finding["finding_info"]["analytic"]["uid"],
            alert["kibana.alert.rule.rule_id"]
        );
        assert_eq!(
            Some(finding["time"].as_i64().expect("time")),
            alert["@timestamp"]
                .as_str()
                .and_then(trailguard_format::parse_time_ms)
        );
    }
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("trailguard.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("UTF-8 path").to_owned()
}

#[test]
fn suppression_merges_alerts_of_a_key_within_the_window_into_one_with_a_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, truth) = generate(dir.path(), 40_000, 3);
    let plain = alerts(&run(dir.path(), &[&input], &[]));
    let unusual: Vec<&Value> = plain
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == "aws-unusual-asn")
        .collect();
    assert!(unusual.len() >= truth.len(), "{plain:#?}");

    // One group per account for 14 days: every aws-unusual-asn alert of an
    // account becomes its first one, counting the others.
    let config = write_config(
        dir.path(),
        "[rules.aws-unusual-asn.alert_suppression]\ngroup_by = [\"cloud.account.id\"]\nduration_minutes = 20160\n",
    );
    let out = run(dir.path(), &[&input], &["--config", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    let suppressed = alerts(&out);
    // Each group's first alert is written at once (count 0); when alerts
    // were merged, the same alert again with the final count, at the end of
    // the window: the last document of an id is the one that stands.
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let mut first_seen: Vec<String> = Vec::new();
    for a in suppressed
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == "aws-unusual-asn")
    {
        let id = a["kibana.alert.uuid"].as_str().expect("id").to_owned();
        if latest.insert(id.clone(), a.clone()).is_none() {
            assert_eq!(
                a["kibana.alert.suppression.docs_count"], 0,
                "first written at once"
            );
            first_seen.push(id);
        }
    }
    let merged: Vec<&Value> = first_seen.iter().map(|id| &latest[id]).collect();
    let accounts: BTreeSet<&str> = unusual
        .iter()
        .filter_map(|a| a["cloud.account.id"].as_str())
        .collect();
    assert_eq!(merged.len(), accounts.len(), "{merged:#?}");
    let total: u64 = merged
        .iter()
        .map(|a| {
            a["kibana.alert.suppression.docs_count"]
                .as_u64()
                .expect("count")
                + 1
        })
        .sum();
    assert_eq!(total, unusual.len() as u64);
    for m in &merged {
        let first = unusual
            .iter()
            .find(|a| a["cloud.account.id"] == m["cloud.account.id"])
            .expect("the account alerted");
        assert_eq!(
            m["kibana.alert.uuid"], first["kibana.alert.uuid"],
            "the first alert stands for the group"
        );
        assert_eq!(m["kibana.alert.suppression.start"], first["@timestamp"]);
        assert_eq!(
            m["kibana.alert.suppression.terms"][0]["field"],
            "cloud.account.id"
        );
    }
    // The other rule is untouched.
    let others = |list: &[Value]| -> Vec<Value> {
        list.iter()
            .filter(|a| a["kibana.alert.rule.rule_id"] != "aws-unusual-asn")
            .cloned()
            .collect()
    };
    assert_eq!(others(&suppressed), others(&plain));
    assert!(
        stderr(&out).contains(&format!(
            "rule aws-unusual-asn: {} alert(s) ({} more suppressed into them)",
            merged.len(),
            unusual.len() - merged.len()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn since_and_until_bound_event_time() {
    let scenario = StolenCiCredentials::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("mkdir");
    write_deliveries(&input, &scenario.calls(), 50).expect("write");
    let stats = dir.path().join("stats.json");
    let stats_arg = stats.to_str().expect("UTF-8");

    let out = run(
        dir.path(),
        &[&input],
        &["--since", "2026-04-01", "--stats", stats_arg],
    );
    assert_eq!(alerts(&out).len(), 1, "{}", stderr(&out));

    // The attacker's calls are at 09:30 on 2026-04-22: cut before them.
    let out = run(
        dir.path(),
        &[&input],
        &["--until", "2026-04-22T09:00:00Z", "--stats", stats_arg],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(alerts(&out).len(), 0);
    let until_ms = trailguard_format::parse_time_ms("2026-04-22T09:00:00Z").expect("time");
    let after = scenario
        .calls()
        .iter()
        .filter(|c| c.time_ms >= until_ms)
        .count() as u64;
    assert!(after >= 2);
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("JSON");
    assert_eq!(stats["outside_time_range"], after);
    assert!(stderr(&out).contains(&format!("outside --since/--until: {after}")));

    let out = run(dir.path(), &[&input], &["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`yesterday` is not a time"),
        "{}",
        stderr(&out)
    );
}
