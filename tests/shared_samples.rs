//! Every real public CloudTrail sample in `../shared/data/cloudtrail` is read,
//! with exact counts (see PROVENANCE.md there). The no-ASN counts were
//! checked independently (Python's `ipaddress`, which also rejects leading
//! zeros); the fixture ASN database covers almost none of these addresses,
//! so "not in database" counts every literal one.
//!
//! The data is beside the repository in CI; in a plain clone without it,
//! these tests say so and pass without checking anything.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture_mmdb, root, stderr, trailguard};
use serde_json::{Value, json};

fn samples() -> Option<PathBuf> {
    let dir = root().join("../shared/data/cloudtrail");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("../shared/data/cloudtrail is not beside the repository: nothing to check");
        None
    }
}

/// Every file of a sample set except the test-label files, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sample dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.to_string_lossy().contains(".labels."))
        .collect();
    files.sort();
    files
}

fn stats(files: &[PathBuf], extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let stats = dir.path().join("stats.json");
    let out = trailguard(dir.path())
        .arg("run")
        .arg("--rules")
        .arg(common::modules_dir())
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg("--stats")
        .arg(&stats)
        .args(extra)
        .args(files)
        .output()
        .expect("runs");
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("JSON")
}

#[test]
fn every_sample_set_is_read_with_exact_counts() {
    let Some(root) = samples() else { return };
    // (set, inputs, records read, accepted, rejected by reason, without ASN by reason, repaired)
    let expected = [
        (
            "grycap-2014",
            228,
            4442,
            4442,
            json!({}),
            json!({"not-a-literal-ip": 103, "not-in-database": 4339}),
            0,
        ),
        (
            "grycap-2018",
            459,
            1746,
            1746,
            json!({}),
            json!({"not-in-database": 1746}),
            0,
        ),
        (
            "invictus",
            55,
            2900,
            2900,
            json!({}),
            json!({"not-a-literal-ip": 353, "not-in-database": 2547}),
            0,
        ),
        (
            "otrf",
            1,
            103,
            103,
            json!({}),
            json!({"not-a-literal-ip": 5, "not-in-database": 98}),
            0,
        ),
        (
            "panther-tests",
            1,
            472,
            453,
            json!({"bad-event-time": 2, "missing-event-time": 17}),
            json!({"no-source-address": 18, "not-a-literal-ip": 49, "not-in-database": 378}),
            0,
        ),
        (
            "stratus-red-team",
            35,
            310,
            310,
            json!({}),
            json!({"not-a-literal-ip": 107, "not-in-database": 203}),
            0,
        ),
        // One file misses a comma between two records: all 15 records are read.
        (
            "zmallen",
            4,
            15,
            15,
            json!({}),
            json!({"not-in-database": 15}),
            1,
        ),
    ];
    for (set, inputs, read, accepted, rejected, without_asn, repaired) in expected {
        // Panther's and Stratus Red Team's sets are collections of
        // unrelated captures, their times years apart, back and forth in
        // name order: not a stream, so event-time checks are off for them.
        // The others are real accounts' deliveries: the checks (on by
        // default) must not refuse any of their records.
        let captures = matches!(set, "panther-tests" | "stratus-red-team");
        let extra: &[&str] = if captures {
            &["--dedup-window", "0", "--max-time-jump", "0"]
        } else {
            &["--dedup-window", "0"]
        };
        let s = stats(&files(&root.join(set)), extra);
        assert_eq!(s["inputs"], inputs, "{set}");
        assert_eq!(s["records_read"], read, "{set}");
        assert_eq!(s["accepted"], accepted, "{set}");
        assert_eq!(s["rejected_by_reason"], rejected, "{set}");
        assert_eq!(s["without_asn_by_reason"], without_asn, "{set}");
        assert_eq!(s["repaired_documents"], repaired, "{set}");
        assert_eq!(s["duplicates"], 0, "{set}: deduplication was off");
    }
}

#[test]
fn all_samples_in_one_run_and_duplicate_ids_count_once() {
    let Some(root) = samples() else { return };
    let mut all = Vec::new();
    for set in [
        "grycap-2014",
        "grycap-2018",
        "invictus",
        "otrf",
        "panther-tests",
        "stratus-red-team",
        "zmallen",
    ] {
        all.extend(files(&root.join(set)));
    }
    // Sets years apart, and captures not in time order: not one stream.
    let s = stats(&all, &["--max-time-jump", "0"]);
    assert_eq!(s["inputs"], 783);
    assert_eq!(s["records_read"], 9988);
    assert_eq!(s["accepted"], 9969);
    assert_eq!(s["rejected"], 19);
    // Panther's hand-written test records reuse eventIDs ("1", ...): those
    // within the 60-minute window of one another are dropped as redeliveries.
    assert_eq!(s["duplicates"], 285);
    assert_eq!(s["events"], 9969 - 285);
}
