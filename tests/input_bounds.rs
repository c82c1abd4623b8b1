//! Decompression and line bombs (issue #14, attack 8): a 1 MB `.json.gz`
//! expanding to 1 GiB, as one document or one line, used to be read whole
//! (1.07 GB peak RSS). Each must be rejected with its file and cause, the
//! good lines around a bomb read, a healthy rule's alerts byte-identical to
//! a run without the bombs, and peak memory bounded.

mod common;

use std::io::Write;
use std::path::Path;

use common::{fixture_mmdb, modules_dir, stderr, trailguard};
use flate2::Compression;
use flate2::write::GzEncoder;
use trailguard_gen::{StolenCiCredentials, write_deliveries};

const MIB: usize = 1 << 20;

/// Far below the 1 GiB a bomb expands to; the run reads three of them.
const PEAK_RSS_LIMIT: u64 = 400 << 20;

/// One gzip member holding `data`.
fn member(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

/// A good record (of an identity rule A never alerts on), as one line.
fn line(id: &str) -> String {
    serde_json::json!({
        "eventTime": "2026-04-20T12:00:00Z",
        "eventID": id,
        "eventName": "ListBuckets",
        "sourceIPAddress": "203.0.113.9",
        "userIdentity": {"type": "IAMUser", "userName": "bystander"},
    })
    .to_string()
        + "\n"
}

/// Writes the three bombs: a single gzip member (written streaming) that
/// is a delivery object opening on a 1 GiB line of spaces; a JSON array of
/// 1 GiB of records, one per line, in 1,024 members of 1 MiB; and NDJSON
/// whose second line is 1 GiB long, between good lines, for standard input.
fn bombs(dir: &Path) -> [std::path::PathBuf; 3] {
    let document = dir.join("bomb-document.json.gz");
    let mut gz = GzEncoder::new(
        std::fs::File::create(&document).expect("create"),
        Compression::best(),
    );
    gz.write_all(b"{\"Records\": [").expect("gzip");
    let spaces = vec![b' '; MIB];
    for _ in 0..1024 {
        gz.write_all(&spaces).expect("gzip");
    }
    gz.finish().expect("gzip");

    let array = dir.join("bomb-array.json.gz");
    let record = line("repeated");
    let block: String = record.trim_end().to_owned() + ",\n";
    let block = block.repeat(MIB / block.len());
    let one = member(block.as_bytes());
    let mut bytes = member(b"[\n");
    for _ in 0..(1024 * MIB / block.len()) {
        bytes.extend_from_slice(&one);
    }
    std::fs::write(&array, bytes).expect("write");

    let stdin = dir.join("bomb-stdin.ndjson.gz");
    let x = member(&vec![b'x'; MIB]);
    let mut bytes = member(line("before-the-bomb").as_bytes());
    for _ in 0..1024 {
        bytes.extend_from_slice(&x);
    }
    bytes.extend(member(format!("\n{}", line("after-the-bomb")).as_bytes()));
    std::fs::write(&stdin, bytes).expect("write");
    // A few MiB at most, each expanding to 1 GiB.
    for bomb in [&document, &array, &stdin] {
        let size = std::fs::metadata(bomb).expect("written").len();
        assert!(size < 8 * MIB as u64, "{}: {size} bytes", bomb.display());
    }
    [document, array, stdin]
}

struct Outcome {
    code: Option<i32>,
    alerts: String,
    summary: String,
    stats: serde_json::Value,
}

fn run(dir: &Path, inputs: &[&Path], stdin: Option<&Path>) -> Outcome {
    run_with(dir, inputs, stdin, &[])
}

fn run_with(dir: &Path, inputs: &[&Path], stdin: Option<&Path>, extra: &[&str]) -> Outcome {
    let stats = dir.join("stats.json");
    let mut cmd = trailguard(dir);
    cmd.arg("run")
        .args(extra)
        .arg("--rules")
        .arg(modules_dir().join("rule-sensitive-untrusted-asn.wasm"))
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(["--batch-size", "50", "--stats"])
        .arg(&stats)
        .args(inputs);
    if let Some(file) = stdin {
        cmd.arg("-")
            .stdin(std::fs::File::open(file).expect("open the stdin bomb"));
    }
    let out = cmd.output().expect("runs");
    Outcome {
        code: out.status.code(),
        alerts: String::from_utf8_lossy(&out.stdout).into_owned(),
        summary: stderr(&out),
        stats: serde_json::from_slice(&std::fs::read(&stats).expect("stats written"))
            .expect("stats are JSON"),
    }
}

/// The stolen-credentials scenario as deliveries in `dir/input`, and rule
/// A's run on it alone.
fn scenario(dir: &Path) -> (std::path::PathBuf, Outcome) {
    let input = dir.join("input");
    std::fs::create_dir(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::default().calls(), 40)
        .expect("write deliveries");
    let clean = run(dir, &[&input], None);
    assert_eq!(clean.code, Some(0), "{}", clean.summary);
    (input, clean)
}

/// The run's own peak RSS (from its `--stats`) stayed under the bound.
fn assert_peak_rss_bounded(outcome: &Outcome) {
    let peak = outcome.stats["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS measured (Linux)");
    assert!(
        peak < PEAK_RSS_LIMIT,
        "peak RSS {} MiB over {} MiB",
        peak >> 20,
        PEAK_RSS_LIMIT >> 20
    );
}

#[test]
fn bombs_are_rejected_in_bounded_memory_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, clean) = scenario(dir.path());
    assert_eq!(clean.alerts.lines().count(), 1, "{}", clean.summary);

    let [document, array, stdin] = bombs(dir.path());
    let attacked = run(dir.path(), &[&document, &input, &array], Some(&stdin));
    assert_eq!(attacked.code, Some(3), "{}", attacked.summary);
    assert_eq!(
        attacked.alerts, clean.alerts,
        "rule A's alerts changed\n{}",
        attacked.summary
    );
    let says = |file: &str, rejection: &str| {
        assert!(
            attacked
                .summary
                .contains(&format!("rejected in {file}: 1\n    {rejection}")),
            "{file}: {rejection}\n{}",
            attacked.summary
        );
    };
    says(
        &document.display().to_string(),
        "line 1: the line is longer than the limit of 64 MiB, so it is skipped (raise [input] max_document_mib)",
    );
    says(
        &array.display().to_string(),
        "whole input: the document is larger than the limit of 64 MiB after decompression, so it is not read (raise [input] max_document_mib)",
    );
    says(
        "<stdin>",
        "line 2: the line is longer than the limit of 64 MiB",
    );
    // The good lines around the bomb on standard input are read.
    assert_eq!(
        attacked.stats["accepted"],
        clean.stats["accepted"].as_u64().expect("a count") + 2
    );
    assert_eq!(
        attacked.stats["rejected_by_reason"],
        serde_json::json!({"document-too-large": 1, "line-too-long": 2})
    );
    assert_peak_rss_bounded(&attacked);
}

/// A gzip file of `head`, then `item` repeated to about `bytes`, then `tail`.
fn repeated(path: &Path, head: &str, item: &str, bytes: usize, tail: &str) {
    let mut gz = GzEncoder::new(
        std::fs::File::create(path).expect("create"),
        Compression::fast(),
    );
    gz.write_all(head.as_bytes()).expect("gzip");
    let block = item.repeat(MIB / item.len());
    for _ in 0..bytes / block.len() {
        gz.write_all(block.as_bytes()).expect("gzip");
    }
    gz.write_all(tail.as_bytes()).expect("gzip");
    gz.finish().expect("gzip");
}

/// Documents within the size cap that hold tens of millions of tiny
/// records: each used to cost a slice (and, with --dead-letter, a kept
/// rejection of hundreds of bytes) per record: 606 MB, and 7.2 GB with a
/// dead letter, for 60 MiB of `{},` or `1,`.
#[test]
fn documents_of_millions_of_tiny_records_are_read_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, clean) = scenario(dir.path());

    let array = dir.path().join("ones.json.gz");
    repeated(&array, "[", "1,", 60 * MIB, "1]");
    let delivery = dir.path().join("empty-records.json.gz");
    repeated(&delivery, "{\"Records\":[", "{},", 60 * MIB, "{}]}");
    // Not valid JSON as a whole: read record by record.
    let broken = dir.path().join("broken.json.gz");
    repeated(&broken, "[", "{},", 60 * MIB, "{}");
    let dead = dir.path().join("dead.ndjson");
    let attacked = run_with(
        dir.path(),
        &[&array, &delivery, &input, &broken],
        None,
        &["--dead-letter", dead.to_str().expect("utf-8")],
    );
    assert_eq!(attacked.code, Some(3), "{}", attacked.summary);
    assert_eq!(attacked.alerts, clean.alerts, "{}", attacked.summary);
    assert_eq!(
        attacked.stats["rejected_by_reason"]["too-many-records"], 2,
        "{}",
        attacked.summary
    );
    assert!(
        attacked.stats["dead_letters_dropped"]
            .as_u64()
            .expect("a count")
            > 0,
        "{}",
        attacked.summary
    );
    assert!(
        attacked
            .summary
            .contains("were counted but not written to the dead letter"),
        "{}",
        attacked.summary
    );
    // What the dead letter did keep is written.
    assert!(std::fs::metadata(&dead).expect("dead letter").len() > 0);
    assert_peak_rss_bounded(&attacked);
}
