//! `trailguard run` end to end: the real binary, the real rule component,
//! the real MMDB reader on real ASN rows, CloudTrail delivery files.

mod common;

use std::path::Path;

use common::{alerts, run, stderr};
use trailguard_gen::{ApiCall, HOUR_MS, StolenCiCredentials, write_deliveries, write_delivery};
use trailguard_rule_sdk::format_timestamp_ms;

/// Writes a scenario as delivery files of 50 records; returns the directory.
fn scenario_dir(scenario: &StolenCiCredentials) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_deliveries(dir.path(), &scenario.calls(), 50).expect("write deliveries");
    dir
}

fn run_scenario(scenario: &StolenCiCredentials) -> (Vec<serde_json::Value>, String) {
    let dir = scenario_dir(scenario);
    let cache = tempfile::tempdir().expect("tempdir");
    let out = run(cache.path(), &[dir.path()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    (alerts(&out), stderr(&out))
}

#[test]
fn stolen_ci_credentials_alert_once_at_the_next_hour() {
    let scenario = StolenCiCredentials::default();
    let (alerts, summary) = run_scenario(&scenario);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(
        a["@timestamp"],
        format_timestamp_ms(scenario.alert_hour_ms())
    );
    assert_eq!(a["@timestamp"], "2026-04-22T10:00:00Z");
    assert_eq!(
        a["kibana.alert.rule.rule_id"],
        "aws-sensitive-untrusted-asn"
    );
    assert_eq!(
        a["kibana.alert.rule.name"],
        "AWS Sensitive API Actions from Untrusted ASN"
    );
    assert_eq!(a["kibana.alert.severity"], "high");
    assert_eq!(a["kibana.alert.risk_score"], 73);
    assert_eq!(a["threat.technique.id"], serde_json::json!(["T1078"]));
    assert_eq!(
        a["threat.technique.subtechnique.id"],
        serde_json::json!(["T1078.004"])
    );
    assert_eq!(a["event.kind"], "signal");
    assert_eq!(a["user.name"], "ci-deploy");
    assert_eq!(a["aws.cloudtrail.user_identity.type"], "AssumedRole");
    assert_eq!(a["Esql.total_events_all_asns"], 302);
    assert_eq!(a["Esql.trusted_cloud_event_count"], 300);
    assert_eq!(a["Esql.untrusted_event_count"], 2);
    assert_eq!(a["Esql.count_distinct_asns"], 2);
    assert_eq!(
        a["Esql.src_asn_values"],
        serde_json::json!(["Amazon.com, Inc.", "Comcast Cable Communications, LLC"])
    );
    assert_eq!(
        a["Esql.untrusted_suspicious_actions"],
        serde_json::json!(["GetCallerIdentity", "ListBuckets"])
    );
    assert_eq!(a["Esql.rare_asn_ratio"].as_f64(), Some(2.0 / 302.0));
    assert_eq!(a["Esql.most_recent_low_asn_day"], "2026-04-22T09:30:20Z");
    let untrusted = a["trailguard.untrusted_events"].as_array().expect("list");
    assert_eq!(untrusted.len(), 2);
    assert!(untrusted.iter().all(|e| e["source.ip"] == "73.162.41.17"));
    assert!(untrusted.iter().all(|e| e["event.id"].is_string()));

    // 300 + 2 + 40 records, all accepted; the summary says so.
    assert!(
        summary.contains("342 record(s) read: 342 accepted, 0 rejected"),
        "{summary}"
    );
    assert!(
        summary.contains("rule aws-sensitive-untrusted-asn: 1 alert(s)"),
        "{summary}"
    );
}

#[test]
fn changing_any_one_condition_yields_no_alert() {
    let base = StolenCiCredentials::default;
    let variants: Vec<(&str, StolenCiCredentials)> = vec![
        (
            "one distinct sensitive action",
            StolenCiCredentials {
                attacker_actions: vec!["GetCallerIdentity".into(), "DescribeInstances".into()],
                ..base()
            },
        ),
        (
            "ratio above 1%",
            StolenCiCredentials {
                trusted_calls: 150,
                ..base()
            },
        ),
        (
            "attacker on an Amazon network (trusted)",
            StolenCiCredentials {
                attacker_ip: "3.88.1.1".into(),
                ..base()
            },
        ),
        (
            "attacker on a private address (no ASN)",
            StolenCiCredentials {
                attacker_ip: "10.0.4.17".into(),
                ..base()
            },
        ),
        (
            "attacker address with leading zeros (not a literal IP)",
            StolenCiCredentials {
                attacker_ip: "073.162.041.017".into(),
                ..base()
            },
        ),
        (
            "attacker calls failed",
            StolenCiCredentials {
                attacker_error: Some("AccessDenied".into()),
                ..base()
            },
        ),
    ];
    for (what, scenario) in variants {
        let (alerts, _) = run_scenario(&scenario);
        assert!(alerts.is_empty(), "{what}: {alerts:#?}");
    }
}

#[test]
fn a_malformed_file_loses_nothing_else() {
    let scenario = StolenCiCredentials::default();
    let dir = scenario_dir(&scenario);
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"Records\": [ {\"eventTime\": }",
    )
    .expect("write");
    let cache = tempfile::tempdir().expect("tempdir");
    let out = run(cache.path(), &[dir.path()], &[]);
    assert_eq!(out.status.code(), Some(3), "completed, with rejections");
    assert_eq!(alerts(&out).len(), 1);
    let summary = stderr(&out);
    assert!(
        summary.contains("343 record(s) read: 342 accepted, 1 rejected (invalid-json 1)"),
        "{summary}"
    );
    assert!(
        summary.contains("broken.json: 1\n    record 0, line 1: invalid JSON"),
        "{summary}"
    );
}

#[test]
fn delivery_order_does_not_change_alerts() {
    let scenario = StolenCiCredentials::default();
    let dir = scenario_dir(&scenario);
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files.reverse();
    let inputs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let cache = tempfile::tempdir().expect("tempdir");
    let out = run(cache.path(), &inputs, &[]);
    let alerts = alerts(&out);
    assert_eq!(alerts.len(), 1, "{}", stderr(&out));
    assert_eq!(alerts[0]["@timestamp"], "2026-04-22T10:00:00Z");
}

#[test]
fn late_events_are_counted() {
    // The attacker's calls arrive after a record twelve hours newer (within
    // what the time guard lets through: a day): too late for the 10:00
    // evaluation, which already ran.
    let scenario = StolenCiCredentials::default();
    let calls = scenario.calls();
    let dir = tempfile::tempdir().expect("tempdir");
    let (attacker, rest): (Vec<ApiCall>, Vec<ApiCall>) = calls
        .into_iter()
        .partition(|c| c.ip == scenario.attacker_ip);
    let later = ApiCall::new(
        scenario.attack_ms + 12 * HOUR_MS,
        &rest[0].identity,
        "DescribeInstances",
        "3.80.17.4",
        9,
    );
    let json = |calls: &[ApiCall]| calls.iter().map(ApiCall::to_json).collect::<Vec<_>>();
    let first = write_delivery(dir.path(), 0, "a", &json(&rest)).expect("write");
    let second = write_delivery(dir.path(), 1, "b", &json(&[later])).expect("write");
    let third = write_delivery(dir.path(), 2, "c", &json(&attacker)).expect("write");
    let cache = tempfile::tempdir().expect("tempdir");
    let out = run(
        cache.path(),
        &[&first, &second, &third],
        &["--batch-size", "1"],
    );
    let summary = stderr(&out);
    assert!(alerts(&out).is_empty(), "{summary}");
    assert!(
        summary.contains("late events (after their hour was evaluated): 2"),
        "{summary}"
    );
}

#[test]
fn reads_standard_input() {
    let scenario = StolenCiCredentials::default();
    let ndjson: String = scenario
        .calls()
        .iter()
        .map(|c| c.to_json().to_string() + "\n")
        .collect();
    let cache = tempfile::tempdir().expect("tempdir");
    let mut child = common::trailguard(cache.path())
        .args(["run", "--rules"])
        .arg(common::modules_dir())
        .arg("--asn-db")
        .arg(common::fixture_mmdb())
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ndjson.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(alerts(&out).len(), 1, "{}", stderr(&out));
}

#[test]
fn config_file_tunes_the_rule_and_rejects_unknown_keys() {
    let scenario = StolenCiCredentials {
        attacker_actions: vec!["GetCallerIdentity".into()],
        ..StolenCiCredentials::default()
    };
    let dir = scenario_dir(&scenario);
    let cache = tempfile::tempdir().expect("tempdir");
    let config = cache.path().join("trailguard.toml");
    std::fs::write(
        &config,
        "[rules.aws-sensitive-untrusted-asn]\nmin_distinct_sensitive_actions = 1\n",
    )
    .expect("write");
    let config_arg = config.to_str().expect("utf-8 path");
    let out = run(cache.path(), &[dir.path()], &["--config", config_arg]);
    assert_eq!(alerts(&out).len(), 1, "{}", stderr(&out));

    std::fs::write(
        &config,
        "[rules.aws-sensitive-untrusted-asn]\nmin_distinct_actions = 1\n",
    )
    .expect("write");
    let out = run(cache.path(), &[dir.path()], &["--config", config_arg]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("aws-sensitive-untrusted-asn") && message.contains("min_distinct_actions"),
        "{message}"
    );

    std::fs::write(&config, "[rules.no-such-rule]\nx = 1\n").expect("write");
    let out = run(cache.path(), &[dir.path()], &["--config", config_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-rule"), "{}", stderr(&out));
}

#[test]
fn with_a_long_history_both_rules_alert() {
    let scenario = StolenCiCredentials::long_history();
    let (alerts, summary) = run_scenario(&scenario);
    let by_rule = |id: &str| -> Vec<&serde_json::Value> {
        alerts
            .iter()
            .filter(|a| a["kibana.alert.rule.rule_id"] == id)
            .collect()
    };
    let unusual = by_rule("aws-unusual-asn");
    assert_eq!(unusual.len(), 1, "{alerts:#?}");
    let b = unusual[0];
    assert_eq!(
        b["@timestamp"], "2026-04-22T09:30:00Z",
        "the attacker's first call"
    );
    assert_eq!(b["kibana.alert.severity"], "medium");
    assert_eq!(b["kibana.alert.risk_score"], 47);
    assert_eq!(b["user.name"], "ci-deploy");
    assert_eq!(b["cloud.account.id"], "123456789012");
    assert_eq!(b["event.action"], "GetCallerIdentity");
    assert_eq!(b["source.ip"], "73.162.41.17");
    assert_eq!(b["source.as.number"], 7922);
    assert_eq!(
        b["trailguard.usual_networks"][0]["source.as.organization.name"],
        "Amazon.com, Inc."
    );
    let sensitive = by_rule("aws-sensitive-untrusted-asn");
    assert_eq!(sensitive.len(), 1, "{alerts:#?}");
    assert_eq!(sensitive[0]["@timestamp"], "2026-04-22T10:00:00Z");
    // Calls every 14.4 minutes; those from 10:00 seven days earlier on: 697.
    assert_eq!(sensitive[0]["Esql.trusted_cloud_event_count"], 697);
    assert!(
        summary.contains("rule aws-unusual-asn: 1 alert(s)"),
        "{summary}"
    );
    assert!(
        summary.contains("rule aws-sensitive-untrusted-asn: 1 alert(s)"),
        "{summary}"
    );
}

#[test]
fn ipv6_works_end_to_end() {
    // The attacker on Comcast's IPv6 network (2601::/24 in the fixture).
    let scenario = StolenCiCredentials {
        attacker_ip: "2601:0:41:17::9".into(),
        ..StolenCiCredentials::default()
    };
    let (alerts, _) = run_scenario(&scenario);
    let a: Vec<_> = alerts
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == "aws-sensitive-untrusted-asn")
        .collect();
    assert_eq!(a.len(), 1, "{alerts:#?}");
    assert_eq!(
        a[0]["trailguard.untrusted_events"][0]["source.ip"],
        "2601:0:41:17::9"
    );
    assert_eq!(
        a[0]["Esql.src_asn_values"],
        serde_json::json!(["Amazon.com, Inc.", "Comcast Cable Communications, LLC"])
    );
}

/// (user.name, @timestamp) of every alert of `rule`, sorted.
fn alerted(alerts: &[serde_json::Value], rule: &str) -> Vec<(String, String)> {
    let mut got: Vec<(String, String)> = alerts
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == rule)
        .map(|a| {
            (
                a["user.name"].as_str().unwrap_or_default().to_owned(),
                a["@timestamp"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    got
}

/// (user.name, expected time) of every episode `rule` should alert on
/// (those whose expected time is null are left out), sorted.
fn expected_by_truth(episodes: &[serde_json::Value], rule: &str) -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = episodes
        .iter()
        .filter_map(|e| {
            Some((
                e["user.name"].as_str()?.to_owned(),
                e["expected"][rule].as_str()?.to_owned(),
            ))
        })
        .collect();
    expected.sort();
    expected
}

/// The traffic of an organisation (`gen --profile org`: hundreds of
/// identities, humans on dynamic residential addresses, root activity):
/// the stolen-credential episodes are the only alerts of the two ASN
/// rules, at the times the ground truth gives, and root's calls all alert.
#[test]
fn an_organisations_traffic_alerts_only_on_its_attacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = common::trailguard(d)
        .args([
            "gen",
            "--profile",
            "org",
            "--events",
            "60000",
            "--seed",
            "7",
            "-o",
        ])
        .arg(d.join("org.ndjson"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("org.ground-truth.json")).expect("truth"),
    )
    .expect("JSON");
    let episodes = truth.as_array().expect("list");
    assert_eq!(episodes.len(), 3);
    let roots = std::fs::read_to_string(d.join("org.ndjson"))
        .expect("records")
        .lines()
        .filter(|l| l.contains(r#""type":"Root""#))
        .count();
    assert!(roots > 100, "root activity in the profile: {roots}");
    let out = run(d, &[&d.join("org.ndjson")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = alerts(&out);
    for rule in ["aws-sensitive-untrusted-asn", "aws-unusual-asn"] {
        // Nine days are too few for `aws-unusual-asn` to learn a role: it
        // is expected nowhere (null), the other rule everywhere.
        let expected = expected_by_truth(episodes, rule);
        let want = if rule == "aws-sensitive-untrusted-asn" {
            3
        } else {
            0
        };
        assert_eq!(expected.len(), want, "{rule}: {truth:#}");
        assert_eq!(alerted(&alerts, rule), expected, "{rule}");
    }
    let root_alerts = alerts
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == "aws-root-activity")
        .count();
    assert_eq!(root_alerts, roots, "every root call alerts");
}

#[test]
fn generated_attacks_are_caught_as_the_ground_truth_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = common::trailguard(d)
        .args([
            "gen",
            "--format",
            "s3",
            "--events",
            "60000",
            "--days",
            "14",
            "--attacks",
            "2",
            "--seed",
            "7",
            "-o",
        ])
        .arg(d.join("gen"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("gen.ground-truth.json")).expect("truth"),
    )
    .expect("JSON");
    let episodes = truth.as_array().expect("list");
    assert_eq!(episodes.len(), 2);
    let out = run(d, &[&d.join("gen")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = alerts(&out);
    for rule in ["aws-sensitive-untrusted-asn", "aws-unusual-asn"] {
        let expected = expected_by_truth(episodes, rule);
        assert_eq!(expected.len(), 2, "{rule}: distinct roles, both expected");
        assert_eq!(alerted(&alerts, rule), expected, "{rule}");
    }
}

#[test]
fn rule_threads_change_no_alert_and_no_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (input, _) = common::generate(d, 40_000, 3);
    // Delivery order shuffled a little: files in reverse pairs, so some
    // events arrive late and the watermark matters.
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&input)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for pair in files.chunks_mut(2) {
        pair.reverse();
    }
    let shuffled: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let summary_of = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.contains("alert(s)") || l.contains("late events") || l.contains("duplicates")
            })
            .map(str::to_owned)
            .collect()
    };
    let mut outputs = Vec::new();
    for threads in ["1", "2", "5"] {
        let out = run(d, &shuffled, &["--rule-threads", threads]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        outputs.push((threads, lines, summary_of(&stderr(&out))));
    }
    assert!(outputs[0].1.len() >= 2, "{:#?}", outputs[0].1);
    let late = outputs[0]
        .2
        .iter()
        .find(|l| l.contains("late events"))
        .expect("late events line");
    assert!(
        !late.ends_with(": 0"),
        "the shuffle makes late events: {late}"
    );
    for (threads, lines, summary) in &outputs[1..] {
        assert_eq!(lines, &outputs[0].1, "{threads} threads vs 1");
        assert_eq!(summary, &outputs[0].2, "{threads} threads vs 1");
    }
}
