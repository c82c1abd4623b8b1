//! The hostile-module suite: a rule that misbehaves in every way we know of
//! runs beside rule A. The host must survive, name the offender, handle it
//! (recover or quarantine), and rule A's alerts must be byte-identical to a
//! run without it.

mod common;

use std::path::Path;

use common::{fixture_mmdb, modules_dir, root, stderr, trailguard};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

fn hostile_component() -> std::path::PathBuf {
    let path = root().join("target/test-components/hostile-rule.wasm");
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask build`",
        path.display()
    );
    path
}

struct Outcome {
    code: Option<i32>,
    rule_a_lines: Vec<String>,
    /// Every alert line, parsed.
    alerts: Vec<serde_json::Value>,
    summary: String,
}

/// Runs rule A (and the hostile rule in `mode`, if any) over the scenario.
fn run(dir: &Path, mode: Option<&str>, extra_run_settings: &str) -> Outcome {
    let rule_a = modules_dir().join("rule-sensitive-untrusted-asn.wasm");
    let mut rules = rule_a.display().to_string();
    let timeout = if extra_run_settings.contains("call_timeout_ms") {
        ""
    } else {
        "call_timeout_ms = 300\n"
    };
    let mut config = format!(
        "[run]\n{timeout}max_memory_mib = 64\ncheckpoint_every_batches = 2\n{extra_run_settings}\n"
    );
    if let Some(mode) = mode {
        rules = format!("{rules}:{}", hostile_component().display());
        config.push_str(&format!(
            "[rules.test-hostile]\nmode = \"{mode}\"\nafter_events = 100\n"
        ));
    }
    let config_file = dir.join(format!("{}.toml", mode.unwrap_or("clean")));
    std::fs::write(&config_file, config).expect("write config");
    let out = trailguard(dir)
        .arg("run")
        .arg("--rules")
        .arg(rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg("--config")
        .arg(&config_file)
        .args(["--batch-size", "50"])
        .arg(dir.join("input"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    Outcome {
        code: out.status.code(),
        alerts: stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON alert"))
            .collect(),
        rule_a_lines: stdout
            .lines()
            .filter(|l| l.contains("\"kibana.alert.rule.rule_id\":\"aws-sensitive-untrusted-asn\""))
            .map(str::to_owned)
            .collect(),
        summary: stderr(&out),
    }
}

#[test]
fn every_hostile_rule_is_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("input")).expect("mkdir");
    write_deliveries(
        &dir.path().join("input"),
        &StolenCiCredentials::default().calls(),
        40,
    )
    .expect("write");
    let clean = run(dir.path(), None, "");
    assert_eq!(clean.code, Some(0), "{}", clean.summary);
    assert_eq!(clean.rule_a_lines.len(), 1, "{}", clean.summary);
    // The shipped rule writes only its own fields (and its own reason).
    assert!(!clean.summary.contains("host-owned"), "{}", clean.summary);
    assert!(
        clean.rule_a_lines[0].contains("whose calls come from cloud providers"),
        "{}",
        clean.rule_a_lines[0]
    );

    // (mode, extra [run] settings, expected exit status, what the summary must say)
    let cases: [(&str, &str, i32, &str); 16] = [
        ("healthy", "", 0, "rule test-hostile: 0 alert(s)"),
        (
            "endless-loop",
            "",
            2,
            "took longer than the limit of 0.300 s",
        ),
        ("memory-bomb", "", 2, "rule test-hostile failed in process"),
        ("recursion", "", 2, "stack overflow"),
        (
            "trap-in-create",
            "",
            2,
            "rule test-hostile QUARANTINED at load",
        ),
        ("panic", "", 2, "a panic in the rule"),
        (
            "flaky",
            "",
            0,
            "restarted from its last checkpoint; the retry succeeded",
        ),
        (
            // Lifting a million alerts takes a while on a loaded machine:
            // this case is about the count limit, not the CPU-time one.
            "huge-alerts",
            "call_timeout_ms = 10000",
            2,
            "returned 1000000 alerts in one call, over the limit of 10000",
        ),
        (
            "huge-snapshot",
            "max_snapshot_mib = 1",
            2,
            "returned a snapshot of 4194304 bytes, over the limit of 1048576",
        ),
        ("garbage-alert", "", 2, "returned an alert that is not JSON"),
        // Tiny alerts, but each would carry the rule's 16 KiB description:
        // the limit counts what the host builds, not what the rule sent.
        (
            "many-alerts",
            "",
            2,
            "returned 10000 alerts that would make",
        ),
        ("forge-fields", "", 0, "rule test-hostile wrote"),
        ("invalid-utf8", "", 2, "rule test-hostile failed in process"),
        (
            "bad-rule-index",
            "",
            2,
            "returned an alert of rule #7, but its `rules` lists 1",
        ),
        (
            "many-rules",
            "",
            2,
            "it lists 10001 rules, over the limit of 10000",
        ),
        (
            "claim-rule-a",
            "",
            2,
            "its rule aws-sensitive-untrusted-asn has the id of a rule of the loaded aws-sensitive-untrusted-asn",
        ),
    ];
    for (mode, settings, code, says) in cases {
        let hostile = run(dir.path(), Some(mode), settings);
        assert_eq!(hostile.code, Some(code), "{mode}: {}", hostile.summary);
        assert!(
            hostile.summary.contains(says),
            "{mode}: {}",
            hostile.summary
        );
        if code == 2 && mode != "trap-in-create" {
            assert!(
                hostile.summary.contains("QUARANTINED"),
                "{mode}: {}",
                hostile.summary
            );
        }
        assert_eq!(
            hostile.rule_a_lines, clean.rule_a_lines,
            "{mode}: rule A's alerts changed"
        );
        assert!(
            hostile
                .summary
                .contains("rule aws-sensitive-untrusted-asn: 1 alert(s)"),
            "{mode}: {}",
            hostile.summary
        );
        if mode == "forge-fields" {
            assert_forgeries_dropped(&hostile.alerts);
        }
    }
}

/// The hostile rule's alerts say what the host says: its own id, severity
/// and time, and none of the host's fields in the rule's spelling.
fn assert_forgeries_dropped(alerts: &[serde_json::Value]) {
    let forged: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == "test-hostile")
        .collect();
    assert!(!forged.is_empty(), "the hostile rule raised its alerts");
    for alert in forged {
        assert_eq!(alert["kibana.alert.severity"], "low", "{alert}");
        assert_eq!(alert["kibana.alert.risk_score"], 1, "{alert}");
        assert_eq!(alert["event.kind"], "signal", "{alert}");
        assert_ne!(alert["kibana.alert.uuid"], "forged", "{alert}");
        assert_eq!(alert["@timestamp"], "1970-01-01T00:00:00Z", "{alert}");
        assert_eq!(
            alert["event"],
            serde_json::json!({"action": "forged"}),
            "{alert}"
        );
        for key in ["kibana", "threat", "Kibana..alert.rule.rule_id"] {
            assert!(alert.get(key).is_none(), "{key} survived: {alert}");
        }
    }
}
