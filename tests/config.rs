//! The configuration file end to end: `trailguard config check` locating
//! every problem, the documented example file, and flags overriding it.

mod common;

use std::path::Path;

use common::{json_lines, modules_dir, stderr, trailguard};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

fn check(dir: &Path, file: &Path) -> std::process::Output {
    trailguard(dir)
        .args(["config", "check", "--rules"])
        .arg(modules_dir())
        .arg(file)
        .output()
        .expect("trailguard runs")
}

#[test]
fn check_reports_every_problem_with_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trailguard.toml");
    std::fs::write(
        &file,
        "[input]\ndedup_window_minutes = 60\n\n[run]\nbatch_sise = 10\n\n[output]\nformat = \"ecs\"\ncolour = true\n",
    )
    .expect("write");
    let out = check(dir.path(), &file);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    let shown = file.display();
    assert!(
        text.contains(&format!("{shown}:5:1: unknown key `batch_sise` in [run]")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{shown}:9:1: unknown key `colour` in [output]")),
        "{text}"
    );
    assert!(text.contains("2 problem(s)"), "{text}");

    // A key the rule itself refuses, and a table for no loaded rule.
    std::fs::write(
        &file,
        "[rules.aws-unusual-asn]\nhistory_days = 10\nhistory_dayz = 3\n\n[rules.aws-no-such-rule]\nx = 1\n",
    )
    .expect("write");
    let out = check(dir.path(), &file);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("{shown}:3:1: [rules.aws-unusual-asn]"))
            && text.contains("history_dayz"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{shown}:5:8: [rules.aws-no-such-rule]: no loaded rule has this id"
        )),
        "{text}"
    );

    // `run` refuses the same file, naming the place.
    let out = trailguard(dir.path())
        .args(["run", "--rules"])
        .arg(modules_dir())
        .arg("--asn-db")
        .arg(common::fixture_mmdb())
        .arg("--config")
        .arg(&file)
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{shown}:3:1")),
        "{}",
        stderr(&out)
    );
}

/// The example file as shipped, beside the files it names.
fn example_setup(dir: &Path) {
    let example = common::root().join("trailguard.example.toml");
    std::fs::copy(&example, dir.join("trailguard.toml")).expect("copy example");
    let scenario = StolenCiCredentials::default();
    std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
    write_deliveries(&dir.join("logs"), &scenario.calls(), 50).expect("write logs");
    std::fs::create_dir_all(dir.join("target/asn")).expect("mkdir");
    std::fs::copy(common::fixture_mmdb(), dir.join("target/asn/asn.mmdb")).expect("copy mmdb");
    std::os::unix::fs::symlink(modules_dir(), dir.join("target/modules")).expect("symlink");
}

#[test]
fn the_example_file_is_valid_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    example_setup(dir.path());
    let file = dir.path().join("trailguard.toml");
    let out = check(dir.path(), &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("OK (5 rule(s)"), "{}", stderr(&out));

    // Everything comes from the file: input, rules, ASN data, outputs.
    let out = trailguard(dir.path())
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = json_lines(
        &std::fs::read_to_string(dir.path().join("out/alerts.ndjson")).expect("alerts file"),
    );
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        alerts[0]["kibana.alert.rule.rule_id"],
        "aws-sensitive-untrusted-asn"
    );
    for written in ["out/report.html", "out/stats.json", "out/rejected.ndjson"] {
        assert!(dir.path().join(written).is_file(), "{written}");
    }

    // Flags override the file.
    let out = trailguard(dir.path())
        .args(["run", "--config"])
        .arg(&file)
        .args(["--format", "ocsf", "-o"])
        .arg(dir.path().join("findings.ndjson"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let findings =
        json_lines(&std::fs::read_to_string(dir.path().join("findings.ndjson")).expect("findings"));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["class_uid"], 2004);
}
