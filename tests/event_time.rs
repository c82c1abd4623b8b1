//! Event time defended (issue #14, attack 7): one record dated 2099 and one
//! dated now, among April 2026 deliveries, used to move the watermark past
//! every real event, and rule A went blind. Both must be refused with their
//! location and cause, and rule A's alerts must be byte-identical to a run
//! without them, wherever the records are in the input.

mod common;

use std::path::Path;

use common::{fixture_mmdb, modules_dir, stderr, trailguard};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

struct Outcome {
    code: Option<i32>,
    rule_a_lines: Vec<String>,
    summary: String,
    stats: serde_json::Value,
}

/// Rule A over `input`, in batches of 50 so that event time moves many
/// times in the run.
fn run(dir: &Path, input: &Path, extra: &[&str]) -> Outcome {
    let stats = dir.join("stats.json");
    let out = trailguard(dir)
        .arg("run")
        .arg("--rules")
        .arg(modules_dir().join("rule-sensitive-untrusted-asn.wasm"))
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(["--batch-size", "50", "--stats"])
        .arg(&stats)
        .args(extra)
        .arg(input)
        .output()
        .expect("runs");
    Outcome {
        code: out.status.code(),
        rule_a_lines: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        summary: stderr(&out),
        stats: serde_json::from_slice(&std::fs::read(&stats).expect("stats written"))
            .expect("stats are JSON"),
    }
}

/// A record of an identity rule A never alerts on.
fn record(id: &str, time: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "eventTime": time,
        "eventID": id,
        "eventName": "ListBuckets",
        "eventSource": "s3.amazonaws.com",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9",
        "userIdentity": {"type": "IAMUser", "userName": "mallory", "accountId": "123456789012"},
    })
}

#[test]
fn records_dated_far_ahead_cannot_blind_the_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input");
    std::fs::create_dir(&input).expect("mkdir");
    let files = write_deliveries(&input, &StolenCiCredentials::default().calls(), 40)
        .expect("write deliveries");
    let clean = run(dir.path(), &input, &[]);
    assert_eq!(clean.code, Some(0), "{}", clean.summary);
    assert_eq!(clean.rule_a_lines.len(), 1, "{}", clean.summary);

    // Dated now: not in the future, but eight months ahead of the stream.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let now = trailguard_rule_sdk::format_timestamp_ms(now_ms);
    let injected = serde_json::json!({"Records": [
        record("forged-2099", "2099-01-01T00:00:00Z"),
        record("forged-now", &now),
    ]});
    // A name that sorts first, in the middle (just before the middle
    // delivery), and last.
    let middle = files[files.len() / 2]
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .replace(".json.gz", "-injected.json");
    for (place, name) in [
        ("first", "000-injected.json".to_owned()),
        ("middle", middle),
        ("last", "zzz-injected.json".to_owned()),
    ] {
        let path = input.join(&name);
        std::fs::write(&path, injected.to_string()).expect("write");
        let attacked = run(dir.path(), &input, &[]);
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(
            attacked.rule_a_lines, clean.rule_a_lines,
            "{place}: rule A's alerts changed\n{}",
            attacked.summary
        );
        assert_eq!(attacked.code, Some(3), "{place}: {}", attacked.summary);
        let at = path.display().to_string();
        assert!(
            attacked.summary.contains(&format!("rejected in {at}"))
                && attacked.summary.contains(
                    "record 0: eventTime `2099-01-01T00:00:00Z` is more than 15 minute(s) ahead of the clock"
                ),
            "{place}: {}",
            attacked.summary
        );
        let guard = &attacked.stats["time_guard"];
        assert_eq!(guard["future"], 1, "{place}: {}", attacked.stats);
        if place == "last" {
            // Nothing comes after it for it to make late: it ends the
            // stream and is processed.
            assert_eq!(guard["ahead_of_stream"], 0, "{place}: {}", attacked.stats);
            continue;
        }
        assert_eq!(guard["ahead_of_stream"], 1, "{place}: {}", attacked.stats);
        assert!(
            attacked.summary.contains(&format!(
                "eventID forged-now: eventTime `{now}` is more than 24 hour(s) ahead of the stream"
            )),
            "{place}: {}",
            attacked.summary
        );
        assert_eq!(
            attacked.stats["rejected_by_reason"],
            serde_json::json!({"ahead-of-stream": 1, "future-event-time": 1}),
            "{place}"
        );
    }
}

#[test]
fn a_refused_record_goes_to_the_dead_letter_file_and_checks_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input");
    std::fs::create_dir(&input).expect("mkdir");
    let files = write_deliveries(&input, &StolenCiCredentials::default().calls(), 40)
        .expect("write deliveries");
    let clean = run(dir.path(), &input, &[]);
    let middle = files[files.len() / 2]
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .replace(".json.gz", "-injected.json");
    let injected = serde_json::json!({"Records": [record("forged", "2026-11-01T00:00:00Z")]});
    std::fs::write(input.join(middle), injected.to_string()).expect("write");

    let dead = dir.path().join("dead.ndjson");
    let guarded = run(
        dir.path(),
        &input,
        &["--dead-letter", dead.to_str().expect("utf-8")],
    );
    assert_eq!(guarded.code, Some(3), "{}", guarded.summary);
    assert_eq!(guarded.rule_a_lines, clean.rule_a_lines);
    let letters = common::json_lines(&std::fs::read_to_string(&dead).expect("dead letters"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["kind"], "ahead-of-stream");
    assert_eq!(letters[0]["position"], "eventID forged");
    let record: serde_json::Value =
        serde_json::from_str(letters[0]["record"].as_str().expect("the record")).expect("JSON");
    assert_eq!(record["@timestamp"], "2026-11-01T00:00:00Z");

    // Turned off, the record moves event time, as it did before the guard.
    let unguarded = run(dir.path(), &input, &["--max-time-jump", "0"]);
    assert_eq!(unguarded.code, Some(0), "{}", unguarded.summary);
    assert_ne!(
        unguarded.rule_a_lines, clean.rule_a_lines,
        "without the guard, the record blinds rule A"
    );
}
