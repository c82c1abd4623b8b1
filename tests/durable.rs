//! Durable state: a run killed at many points and restarted with the same
//! state directory ends with exactly the alerts of an uninterrupted run (no
//! loss, no duplicate); a corrupt checkpoint falls back to the previous one;
//! SIGTERM checkpoints and exits cleanly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{first_half_into, fixture_mmdb, modules_dir, stderr, trailguard};
use trailguard_gen::{HOUR_MS, StolenCiCredentials, write_deliveries};

/// Three attacks on three roles over two weeks, in 100-record deliveries.
fn input(dir: &Path) -> PathBuf {
    let input = dir.join("input");
    std::fs::create_dir(&input).expect("mkdir");
    let mut calls = Vec::new();
    for (i, role) in ["ci-a", "ci-b", "ci-c"].into_iter().enumerate() {
        let s = StolenCiCredentials::long_history();
        calls.extend(
            StolenCiCredentials {
                role: role.into(),
                attack_ms: s.attack_ms + i as i64 * 30 * HOUR_MS,
                ..s
            }
            .calls(),
        );
    }
    calls.sort_by_key(|c| (c.time_ms, c.serial));
    write_deliveries(&input, &calls, 100).expect("write");
    input
}

/// The input, and the output of an uninterrupted run over it.
fn input_and_clean_run(dir: &Path) -> (PathBuf, PathBuf) {
    let input = input(dir);
    let clean = dir.join("clean.ndjson");
    let out = run(dir, &input, &clean, None, None);
    assert!(out.status.success(), "{}", stderr(&out));
    (input, clean)
}

fn run(
    dir: &Path,
    input: &Path,
    out: &Path,
    state: Option<&Path>,
    abort_after: Option<u64>,
) -> Output {
    run_with(dir, input, out, state, abort_after, None)
}

fn run_with(
    dir: &Path,
    input: &Path,
    out: &Path,
    state: Option<&Path>,
    abort_after: Option<u64>,
    config: Option<&Path>,
) -> Output {
    let mut cmd = trailguard(dir);
    if let Some(config) = config {
        cmd.arg("run").arg("--config").arg(config);
    } else {
        cmd.arg("run");
    }
    cmd.arg("--rules")
        .arg(modules_dir())
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(["--batch-size", "100", "--checkpoint-events", "300"])
        .arg("-o")
        .arg(out)
        .arg(input);
    if let Some(state) = state {
        cmd.arg("--state-dir").arg(state);
    }
    match abort_after {
        Some(n) => cmd.env("TRAILGUARD_TEST_ABORT_AFTER_EVENTS", n.to_string()),
        None => cmd.env_remove("TRAILGUARD_TEST_ABORT_AFTER_EVENTS"),
    };
    cmd.output().expect("runs")
}

/// `run --follow` with frequent checkpoints, until told to stop.
fn follow(
    dir: &Path,
    rules: &Path,
    input: &Path,
    state: &Path,
    output: &Path,
) -> std::process::Child {
    trailguard(dir)
        .arg("run")
        .arg("--rules")
        .arg(rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args([
            "--batch-size",
            "100",
            "--checkpoint-events",
            "300",
            "--follow",
            "--poll-ms",
            "50",
        ])
        .arg("--state-dir")
        .arg(state)
        .arg("-o")
        .arg(output)
        .arg(input)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("output")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn killed_and_restarted_runs_end_with_the_same_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let clean = d.join("clean.ndjson");
    let out = run(d, &input, &clean, None, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = lines(&clean);
    assert!(
        expected.len() >= 6,
        "both rules alert for each attack: {expected:#?}"
    );

    // Kill points spread over the run, between and on checkpoints.
    for (i, kill_at) in [1, 150, 299, 300, 301, 777, 1500, 2222, 3000, 3700]
        .into_iter()
        .enumerate()
    {
        let state = d.join(format!("state-{i}"));
        let output = d.join(format!("out-{i}.ndjson"));
        let killed = run(d, &input, &output, Some(&state), Some(kill_at));
        assert_eq!(
            killed.status.code(),
            None,
            "killed at {kill_at}: {}",
            stderr(&killed)
        );
        let resumed = run(d, &input, &output, Some(&state), None);
        assert!(
            resumed.status.success(),
            "resume after {kill_at}: {}",
            stderr(&resumed)
        );
        assert_eq!(lines(&output), expected, "killed after {kill_at} events");
        // A complete run is not redone.
        let again = run(d, &input, &output, Some(&state), None);
        assert!(
            stderr(&again).contains("complete; nothing to do"),
            "{}",
            stderr(&again)
        );
        assert_eq!(lines(&output), expected);
    }
}

/// Open suppression groups are part of the checkpoint: a run killed while
/// alerts are held still ends with the same merged alerts.
#[test]
fn suppression_groups_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let config = d.join("trailguard.toml");
    std::fs::write(
        &config,
        "[rules.aws-unusual-asn.alert_suppression]\ngroup_by = [\"cloud.account.id\"]\nduration_minutes = 4320\n",
    )
    .expect("write");
    let clean = d.join("clean.ndjson");
    let out = run_with(d, &input, &clean, None, None, Some(&config));
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = lines(&clean);
    let merged: Vec<&String> = expected
        .iter()
        .filter(|l| l.contains("\"kibana.alert.suppression.docs_count\":2"))
        .collect();
    assert_eq!(
        merged.len(),
        1,
        "the three attacks' alerts are one: {expected:#?}"
    );
    // Kill points after the first attack (the group is open) and later.
    for (i, kill_at) in [2222, 2900, 3700].into_iter().enumerate() {
        let state = d.join(format!("state-{i}"));
        let output = d.join(format!("out-{i}.ndjson"));
        let killed = run_with(
            d,
            &input,
            &output,
            Some(&state),
            Some(kill_at),
            Some(&config),
        );
        assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
        let resumed = run_with(d, &input, &output, Some(&state), None, Some(&config));
        assert!(resumed.status.success(), "{}", stderr(&resumed));
        assert_eq!(lines(&output), expected, "killed after {kill_at} events");
    }
}

#[test]
fn a_corrupt_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (input, clean) = input_and_clean_run(d);
    let state = d.join("state");
    let output = d.join("out.ndjson");
    let killed = run(d, &input, &output, Some(&state), Some(2000));
    assert_eq!(killed.status.code(), None);
    let mut checkpoints: Vec<PathBuf> = std::fs::read_dir(&state)
        .expect("state")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    checkpoints.sort();
    assert_eq!(checkpoints.len(), 2, "the newest two are kept");
    let newest = checkpoints.pop().expect("checkpoint");
    let mut bytes = std::fs::read(&newest).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&newest, bytes).expect("write");
    let resumed = run(d, &input, &output, Some(&state), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed)
            .contains("is corrupt or partial (checksum mismatch); using the one before it")
    );
    assert_eq!(lines(&output), lines(&clean));
}

#[test]
fn sigterm_checkpoints_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (input, clean) = input_and_clean_run(d);
    let state = d.join("state");
    let output = d.join("out.ndjson");
    // Follow mode runs until told to stop.
    let child = follow(d, &modules_dir(), &input, &state, &output);
    // Wait for the first checkpoint: the run is under way (and its signal
    // handlers are installed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !has_checkpoint(&state) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checkpoint written"),
        "{}",
        stderr(&out)
    );
    // Resume without --follow: the input ends, the final evaluations run.
    let resumed = run(d, &input, &output, Some(&state), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(lines(&output), lines(&clean));
}

fn has_checkpoint(state: &Path) -> bool {
    std::fs::read_dir(state).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "bin"))
    })
}

#[test]
fn hot_reload_under_load_carries_state_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (all, clean) = input_and_clean_run(d);

    // Rules in a directory of their own, so one can be replaced.
    let rules = d.join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    for name in [
        "rule-sensitive-untrusted-asn.wasm",
        "rule-unusual-asn.wasm",
        "rule-root-activity.wasm",
    ] {
        std::fs::copy(modules_dir().join(name), rules.join(name)).expect("copy");
    }
    // Half the deliveries now, the rest while the rule is being replaced.
    let live = d.join("live");
    let second = first_half_into(&all, &live);
    let state = d.join("state");
    let output = d.join("out.ndjson");
    let child = follow(d, &rules, &live, &state, &output);
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !what() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for(&|| has_checkpoint(&state));
    // A new build of rule A: the same rule, different bytes (a custom section).
    let rule_a = rules.join("rule-sensitive-untrusted-asn.wasm");
    let mut bytes = std::fs::read(&rule_a).expect("read");
    bytes.extend_from_slice(&[0x00, 0x08, 0x01, b'v', b'2', b'.', b'b', b'u', b'i', b'l']);
    let tmp = rules.join("new.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, &rule_a).expect("replace");
    for f in &second {
        std::fs::copy(f, live.join(f.file_name().expect("name"))).expect("copy");
    }
    // Wait until the new files are in a checkpoint's output, then stop.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("reloaded rule aws-sensitive-untrusted-asn from")
            && log.contains("(state carried over)"),
        "{log}"
    );
    let resumed = trailguard(d)
        .arg("run")
        .arg("--rules")
        .arg(&rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(["--batch-size", "100", "--checkpoint-events", "300"])
        .arg("--state-dir")
        .arg(&state)
        .arg("-o")
        .arg(&output)
        .arg(&live)
        .output()
        .expect("runs");
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    // The same alerts; those the new build raised have ids of their own (an
    // alert id binds the component's digest).
    let without_ids = |path: &Path| -> Vec<serde_json::Value> {
        lines(path)
            .iter()
            .map(|l| {
                let mut alert: serde_json::Value = serde_json::from_str(l).expect("JSON");
                alert
                    .as_object_mut()
                    .expect("object")
                    .remove("kibana.alert.uuid");
                alert
            })
            .collect()
    };
    assert_eq!(without_ids(&output), without_ids(&clean));
    let reloaded = |path: &Path| {
        lines(path)
            .into_iter()
            .filter(|l| l.contains("\"kibana.alert.rule.rule_id\":\"aws-sensitive-untrusted-asn\""))
            .collect::<Vec<_>>()
    };
    assert_ne!(
        reloaded(&output),
        reloaded(&clean),
        "the new build's alerts have their own ids"
    );
}

/// The input of the state fixtures: `tests/data/state-format-1/` was
/// written by a run over exactly this (relative paths, in `dir`), killed
/// after 2,800 events, by trailguard before checkpoints named their format.
fn fixture_input(dir: &Path) -> PathBuf {
    let out = trailguard(dir)
        .args([
            "gen",
            "--format",
            "s3",
            "--events",
            "3000",
            "--days",
            "14",
            "--attacks",
            "2",
            "--seed",
            "5",
            "--records-per-file",
            "300",
            "-o",
            "input",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    PathBuf::from("input")
}

/// Alerts without their ids (which name the rule build that wrote them).
fn without_ids(path: &Path) -> Vec<serde_json::Value> {
    lines(path)
        .iter()
        .map(|l| {
            let mut alert: serde_json::Value = serde_json::from_str(l).expect("JSON");
            if let Some(fields) = alert.as_object_mut() {
                fields.remove("kibana.alert.uuid");
            }
            alert
        })
        .collect()
}

#[test]
fn a_checkpoint_of_the_previous_state_format_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = fixture_input(d);
    let fixture = common::root().join("tests/data/state-format-1");
    let state = d.join("state");
    std::fs::create_dir(&state).expect("mkdir");
    std::fs::copy(
        fixture.join("checkpoint-0000000008.bin"),
        state.join("checkpoint-0000000008.bin"),
    )
    .expect("copy");
    std::fs::copy(fixture.join("alerts.ndjson"), d.join("alerts.ndjson")).expect("copy");
    // The first delivery was done at the checkpoint: a run that resumes
    // does not read it again, so spoiling it changes nothing.
    let first = std::fs::read_dir(d.join(&input))
        .expect("input")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .min()
        .expect("a delivery");
    std::fs::write(&first, "not CloudTrail").expect("spoil");
    let out = run(d, &input, Path::new("alerts.ndjson"), Some(&state), None);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(summary.contains("3000 accepted, 0 rejected"), "{summary}");
    let clean_dir = d.join("clean");
    std::fs::create_dir(&clean_dir).expect("mkdir");
    let clean_input = fixture_input(&clean_dir);
    let clean = run(
        &clean_dir,
        &clean_input,
        Path::new("clean.ndjson"),
        None,
        None,
    );
    assert!(clean.status.success(), "{}", stderr(&clean));
    let resumed = without_ids(&d.join("alerts.ndjson"));
    assert!(!resumed.is_empty());
    assert_eq!(resumed, without_ids(&clean_dir.join("clean.ndjson")));
    // What it saves now names this format.
    let newest = std::fs::read_dir(&state)
        .expect("state")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max()
        .expect("a checkpoint");
    let bytes = std::fs::read(newest).expect("read");
    assert!(bytes.starts_with(b"TRAILGUARD-CHECKPOINT-2\n"));
}

#[test]
fn a_checkpoint_of_a_newer_state_format_is_refused_by_name() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = fixture_input(d);
    let state = d.join("state");
    std::fs::create_dir(&state).expect("mkdir");
    let mut file = b"TRAILGUARD-CHECKPOINT-7\n".to_vec();
    file.extend_from_slice(&Sha256::digest(b"from the future"));
    file.extend_from_slice(b"from the future");
    std::fs::write(state.join("checkpoint-0000000000.bin"), file).expect("write");
    let out = run(d, &input, Path::new("alerts.ndjson"), Some(&state), None);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("state format 7") && message.contains("formats 1 to 2"),
        "{message}"
    );
}
