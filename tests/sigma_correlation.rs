//! Sigma correlation rules end to end: a brute force (`event_count`), an
//! enumeration (`value_count` of eventName) and a chain
//! (`temporal_ordered`) through `trailguard run` on deliveries whose
//! records arrive out of order and partly twice; the alerts equal an
//! independent evaluation written here from `../shared/specs/sigma.md`, and
//! a run killed at many points and restarted ends with the same alerts.

mod common;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixture_mmdb, modules_dir, stderr, trailguard};
use serde_json::{Value, json};
use trailguard_gen::{ApiCall, Identity, write_delivery};

const RULES: &str = r#"
title: Failed console login
name: tg_failed_login
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: ConsoleLogin
        errorMessage: Failed authentication
    condition: selection
---
title: Console login brute force
id: tg-brute-force
correlation:
    type: event_count
    rules:
        - tg_failed_login
    group-by:
        - sourceIPAddress
    timespan: 5m
    condition:
        gte: 4
level: high
---
title: Discovery call
name: tg_discovery
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName|startswith:
            - List
            - Describe
    condition: selection
---
title: Discovery burst
id: tg-enumeration
correlation:
    type: value_count
    rules:
        - tg_discovery
    group-by:
        - userIdentity.arn
    timespan: 10m
    condition:
        field: eventName
        gte: 4
level: medium
---
title: Access key created
name: tg_key_created
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: CreateAccessKey
    condition: selection
---
title: Trail stopped
name: tg_trail_stopped
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: StopLogging
    condition: selection
---
title: New key, then the trail stopped
id: tg-key-then-blind
correlation:
    type: temporal_ordered
    rules:
        - tg_key_created
        - tg_trail_stopped
    group-by:
        - userIdentity.arn
    timespan: 30m
level: critical
---
title: A lone access key
id: tg-lone-key
correlation:
    type: event_count
    rules:
        - tg_key_created
    group-by:
        - userIdentity.arn
    timespan: 10m
    condition:
        lt: 2
level: low
"#;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One record: (event time in seconds, eventID, the record).
struct Record {
    secs: i64,
    id: String,
    json: Value,
}

const START_SECS: i64 = 1_772_323_200; // 2026-03-01T00:00:00Z

/// Four hours of failed logins, discovery calls, key creations, trail
/// stops and other calls by 12 users from 16 addresses, with bursts.
fn records() -> Vec<Record> {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let users: Vec<Identity> = (0..12)
        .map(|i| Identity::User {
            name: format!("user-{i}"),
        })
        .collect();
    let ips: Vec<String> = (0..16).map(|i| format!("203.0.113.{}", 10 + i)).collect();
    let names = [
        "ListBuckets",
        "ListUsers",
        "ListRoles",
        "DescribeInstances",
        "DescribeRegions",
        "ListPolicies",
        "GetObject",
        "PutObject",
        "CreateAccessKey",
        "StopLogging",
        "ConsoleLogin",
    ];
    let mut out = Vec::new();
    let mut serial = 0u64;
    let mut push = |secs: i64, user: &Identity, name: &str, ip: &str, failed: bool| {
        serial += 1;
        let call = ApiCall::new(secs * 1000, user, name, ip, serial);
        let mut json = call.to_json();
        if name == "ConsoleLogin" {
            json["eventSource"] = json!("signin.amazonaws.com");
            json["eventType"] = json!("AwsConsoleSignIn");
            if failed {
                json["errorMessage"] = json!("Failed authentication");
            }
        }
        out.push(Record {
            secs,
            id: call.event_id(),
            json,
        });
    };
    // Background: 3,000 calls over four hours.
    for _ in 0..3000 {
        let secs = START_SECS + rng.below(4 * 3600) as i64;
        let user = &users[rng.below(users.len() as u64) as usize];
        let name = names[rng.below(names.len() as u64) as usize];
        let ip = &ips[rng.below(ips.len() as u64) as usize];
        let failed = rng.below(3) == 0;
        push(secs, user, name, ip, failed);
    }
    // Bursts: failed logins from one address, discovery by one user, a key
    // then a stopped trail.
    for b in 0..12 {
        let at = START_SECS + rng.below(4 * 3600 - 900) as i64;
        let ip = &ips[b % ips.len()];
        for k in 0..6 {
            push(
                at + k * 20,
                &users[b % users.len()],
                "ConsoleLogin",
                ip,
                true,
            );
        }
        let user = &users[(b * 5) % users.len()];
        for (k, name) in names[..6].iter().enumerate() {
            push(at + 30 + k as i64 * 45, user, name, &ips[0], false);
        }
        let user = &users[(b * 7 + 3) % users.len()];
        push(at + 100, user, "CreateAccessKey", &ips[1], false);
        push(
            at + 100 + rng.below(2400) as i64,
            user,
            "StopLogging",
            &ips[1],
            false,
        );
    }
    out
}

/// Deliveries of five minutes each (so no record is more than five minutes
/// out of order, within the default 15 minutes of lateness), records
/// shuffled inside each, and 40 records delivered a second time.
fn write_input(dir: &Path, records: &[Record]) -> PathBuf {
    let input = dir.join("input");
    std::fs::create_dir(&input).expect("mkdir");
    let mut rng = Rng(0x0dd_ba11);
    let mut buckets: std::collections::BTreeMap<i64, Vec<Value>> = Default::default();
    for r in records {
        buckets
            .entry(r.secs.div_euclid(300))
            .or_default()
            .push(r.json.clone());
    }
    for (i, (bucket, mut batch)) in buckets.into_iter().enumerate() {
        for k in (1..batch.len()).rev() {
            batch.swap(k, rng.below(k as u64 + 1) as usize);
        }
        if i % 5 == 3 {
            let again: Vec<Value> = batch.iter().take(8).cloned().collect();
            batch.extend(again);
        }
        write_delivery(&input, bucket * 300_000 + 1, &format!("{i:05}"), &batch).expect("write");
    }
    input
}

/// What the spec says the three correlations find: (rule id, event id of
/// the event that completes it), each event id counted once, in
/// event-time order (ties by event id), windows `[t - span, t]`, a group's
/// window cleared after it fires.
fn expected(records: &[Record]) -> BTreeSet<(String, String)> {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| (a.secs, &a.id).cmp(&(b.secs, &b.id)));
    sorted.dedup_by(|a, b| a.id == b.id);
    let text = |r: &Record, field: &str| -> Option<String> {
        let mut v = &r.json;
        for part in field.split('.') {
            v = v.get(part)?;
        }
        v.as_str().map(str::to_owned)
    };
    let mut out = BTreeSet::new();
    let mut brute: HashMap<String, VecDeque<i64>> = HashMap::new();
    let mut discovery: HashMap<String, VecDeque<(i64, String)>> = HashMap::new();
    let mut keys: HashMap<String, VecDeque<i64>> = HashMap::new();
    let mut stops: HashMap<String, VecDeque<i64>> = HashMap::new();
    // Too few: per identity, the window a key creation opens ([t, t + 10m])
    // is decided once event time is past its end: (opened, event id, count).
    let mut lone: HashMap<String, (i64, String, usize)> = HashMap::new();
    let newest = sorted.last().map_or(0, |r| r.secs);
    for r in sorted {
        let t = r.secs;
        lone.retain(|_, (opened, id, n)| {
            let open = *opened + 600 >= t;
            if !open && *n < 2 {
                out.insert(("tg-lone-key".to_owned(), id.clone()));
            }
            open
        });
        let name = text(r, "eventName").unwrap_or_default();
        let arn = text(r, "userIdentity.arn").unwrap_or_default();
        if name == "ConsoleLogin"
            && text(r, "errorMessage").as_deref() == Some("Failed authentication")
        {
            let w = brute
                .entry(text(r, "sourceIPAddress").unwrap_or_default())
                .or_default();
            w.push_back(t);
            w.retain(|&x| x >= t - 300);
            if w.len() >= 4 {
                out.insert(("tg-brute-force".to_owned(), r.id.clone()));
                w.clear();
            }
        }
        if name.to_ascii_lowercase().starts_with("list")
            || name.to_ascii_lowercase().starts_with("describe")
        {
            let w = discovery.entry(arn.clone()).or_default();
            w.push_back((t, name.clone()));
            w.retain(|&(x, _)| x >= t - 600);
            let distinct: BTreeSet<&String> = w.iter().map(|(_, n)| n).collect();
            if distinct.len() >= 4 {
                out.insert(("tg-enumeration".to_owned(), r.id.clone()));
                w.clear();
            }
        }
        if name == "CreateAccessKey" {
            lone.entry(arn.clone()).or_insert((t, r.id.clone(), 0)).2 += 1;
        }
        let (k, s) = (name == "CreateAccessKey", name == "StopLogging");
        if k || s {
            let ks = keys.entry(arn.clone()).or_default();
            let ss = stops.entry(arn.clone()).or_default();
            if k {
                ks.push_back(t);
            } else {
                ss.push_back(t);
            }
            ks.retain(|&x| x >= t - 1800);
            ss.retain(|&x| x >= t - 1800);
            // A key creation at or before some stop, both in the window.
            let ordered = ks
                .front()
                .is_some_and(|&first_key| ss.iter().any(|&stop| stop >= first_key));
            if ordered {
                out.insert(("tg-key-then-blind".to_owned(), r.id.clone()));
                ks.clear();
                ss.clear();
            }
        }
    }
    // At the end, the windows event time has passed are decided; those
    // ending after the newest event are not.
    for (opened, id, n) in lone.into_values() {
        if opened + 600 <= newest && n < 2 {
            out.insert(("tg-lone-key".to_owned(), id));
        }
    }
    out
}

fn rules_dir(dir: &Path) -> PathBuf {
    let rules = dir.join("sigma");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(rules.join("correlations.yml"), RULES).expect("write");
    rules
}

fn run(dir: &Path, input: &Path, out: &Path, state: Option<&Path>, abort: Option<u64>) -> Output {
    let mut cmd = trailguard(dir);
    cmd.arg("run")
        .arg("--rules")
        .arg(modules_dir().join("rule-sigma.wasm"))
        .arg("--sigma")
        .arg(dir.join("sigma"))
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(["--batch-size", "100", "--checkpoint-events", "500"])
        .arg("-o")
        .arg(out)
        .arg(input);
    if let Some(state) = state {
        cmd.arg("--state-dir").arg(state);
    }
    match abort {
        Some(n) => cmd.env("TRAILGUARD_TEST_ABORT_AFTER_EVENTS", n.to_string()),
        None => cmd.env_remove("TRAILGUARD_TEST_ABORT_AFTER_EVENTS"),
    };
    cmd.output().expect("runs")
}

fn alerts(path: &Path) -> Vec<Value> {
    common::json_lines(&std::fs::read_to_string(path).expect("output"))
}

fn found(alerts: &[Value]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["kibana.alert.rule.rule_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                a["event.id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn correlations_on_out_of_order_and_replayed_deliveries_agree_with_the_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    rules_dir(d);
    let records = records();
    let input = write_input(d, &records);
    let out = d.join("alerts.ndjson");
    let run = run(d, &input, &out, None, None);
    assert!(run.status.success(), "{}", stderr(&run));
    let alerts = alerts(&out);
    let want = expected(&records);
    for rule in [
        "tg-brute-force",
        "tg-enumeration",
        "tg-key-then-blind",
        "tg-lone-key",
    ] {
        let n = want.iter().filter(|(r, _)| r == rule).count();
        assert!(n >= 5, "the data exercises {rule}: {n} alerts expected");
    }
    assert_eq!(found(&alerts), want);
    assert_eq!(alerts.len(), want.len(), "no alert twice");
    // The rules the correlations count raise nothing of their own.
    assert!(
        alerts
            .iter()
            .all(|a| a["trailguard.sigma.correlation"].is_object()),
        "only correlation alerts"
    );
    let brute = alerts
        .iter()
        .find(|a| a["kibana.alert.rule.rule_id"] == "tg-brute-force")
        .expect("a brute force");
    assert_eq!(brute["kibana.alert.severity"], "high");
    assert_eq!(brute["trailguard.sigma.correlation"]["type"], "event_count");
    assert_eq!(brute["trailguard.sigma.correlation"]["value"], 4.0);
}

#[test]
fn killed_and_restarted_runs_end_with_the_same_correlation_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    rules_dir(d);
    let records = records();
    let input = write_input(d, &records);
    let clean = d.join("clean.ndjson");
    let out = run(d, &input, &clean, None, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = std::fs::read_to_string(&clean).expect("output");
    assert!(!expected.is_empty());
    for (i, kill_at) in [1, 499, 500, 1234, 2000, 3001].into_iter().enumerate() {
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
        assert_eq!(
            std::fs::read_to_string(&output).expect("output"),
            expected,
            "killed after {kill_at} events"
        );
    }
}

/// `run --follow` reloads changed Sigma rule files: a new rule file joins
/// between two deliveries, the correlations' windows and held matches are
/// carried over (their alerts equal those of an uninterrupted run), and the
/// new rule alerts on what comes after.
#[test]
fn a_new_rule_file_is_hot_reloaded_with_the_correlation_state_carried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rules = rules_dir(d);
    let records = records();
    let all = write_input(d, &records);
    let clean = d.join("clean.ndjson");
    let out = run(d, &all, &clean, None, None);
    assert!(out.status.success(), "{}", stderr(&out));

    let live = d.join("live");
    let second = common::first_half_into(&all, &live);
    let state = d.join("state");
    let output = d.join("out.ndjson");
    let child = trailguard(d)
        .arg("run")
        .arg("--rules")
        .arg(modules_dir().join("rule-sigma.wasm"))
        .arg("--sigma")
        .arg(&rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(["--batch-size", "100", "--checkpoint-events", "300"])
        .args(["--follow", "--poll-ms", "50"])
        .arg("--state-dir")
        .arg(&state)
        .arg("-o")
        .arg(&output)
        .arg(&live)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !what() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let has_checkpoint = || {
        std::fs::read_dir(&state).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "bin"))
        })
    };
    wait_for(&has_checkpoint);
    std::fs::write(
        rules.join("uploads.yml"),
        "title: Object uploaded\nid: tg-put-object\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName: PutObject\n    condition: selection\nlevel: low\n",
    )
    .expect("write");
    // Past a few polls: the reload happens between two of them.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for f in &second {
        std::fs::copy(f, live.join(f.file_name().expect("name"))).expect("copy");
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("reloaded the Sigma rules (state carried over)"),
        "{log}"
    );
    let resumed = run(d, &live, &output, Some(&state), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));

    let output = alerts(&output);
    let correlations = |alerts: &[Value]| -> BTreeSet<(String, String)> {
        found(alerts)
            .into_iter()
            .filter(|(rule, _)| rule != "tg-put-object")
            .collect()
    };
    assert_eq!(correlations(&output), correlations(&alerts(&clean)));
    let uploads: Vec<&Value> = output
        .iter()
        .filter(|a| a["kibana.alert.rule.rule_id"] == "tg-put-object")
        .collect();
    assert!(!uploads.is_empty(), "the new rule alerts after the reload");
    assert!(uploads.iter().all(|a| a["event.action"] == "PutObject"));
}
