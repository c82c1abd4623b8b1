//! Shared helpers of the end-to-end tests: the real CLI binary, the rule
//! components built by `cargo xtask build`, and the fixture ASN database.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/modules`, where `cargo xtask build` puts the rule components.
pub fn modules_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let dir = target.join("modules");
    assert!(
        dir.join("rule-sensitive-untrusted-asn.wasm").is_file()
            && dir.join("rule-unusual-asn.wasm").is_file(),
        "rule components missing in {}: run `cargo xtask build` first (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// The fixture ASN database: real rows of the ip-location-db table.
pub fn fixture_mmdb() -> PathBuf {
    root().join("tests/data/asn/asn-fixture.mmdb")
}

/// The CLI, run in `dir`, sharing one compile cache among the tests (the
/// cache is keyed by content and written atomically).
pub fn trailguard(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailguard"));
    cmd.current_dir(dir)
        .env("XDG_CACHE_HOME", root().join("target/test-cache"))
        .env_remove("TRAILGUARD_RULES")
        .env_remove("TRAILGUARD_SIGMA")
        .env_remove("TRAILGUARD_ASN_DB");
    cmd
}

/// `trailguard run` with the built rules and the fixture database.
pub fn run(cache: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = trailguard(cache);
    cmd.arg("run")
        .arg("--rules")
        .arg(modules_dir())
        .arg("--asn-db")
        .arg(fixture_mmdb());
    cmd.args(extra).args(inputs);
    cmd.output().expect("trailguard runs")
}

/// Alerts printed on standard output.
pub fn alerts(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is a JSON alert"))
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `trailguard gen` into `dir/gen` (gzip S3 objects, 14 days, seed 7);
/// returns the directory and the ground truth (one entry per attack).
pub fn generate(dir: &Path, events: u32, attacks: u32) -> (PathBuf, Vec<serde_json::Value>) {
    let out = trailguard(dir)
        .args(["gen", "--format", "s3", "--days", "14", "--seed", "7"])
        .args([
            "--events",
            &events.to_string(),
            "--attacks",
            &attacks.to_string(),
        ])
        .arg("-o")
        .arg(dir.join("gen"))
        .output()
        .expect("trailguard gen runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("gen.ground-truth.json")).expect("ground truth"),
    )
    .expect("ground truth is JSON");
    let episodes = truth.as_array().expect("a list of episodes").clone();
    (dir.join("gen"), episodes)
}

/// The JSON documents of an NDJSON text.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// `rules keygen --unencrypted` into `dir/NAME.key` and `dir/NAME.pub`;
/// returns the public key line.
pub fn keygen(dir: &Path, name: &str) -> String {
    let out = trailguard(dir)
        .args(["rules", "keygen", "--unencrypted", "--secret-key"])
        .arg(dir.join(format!("{name}.key")))
        .arg("--public-key")
        .arg(dir.join(format!("{name}.pub")))
        .env_remove("TRAILGUARD_KEY_PASSWORD")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("key line")
        .trim()
        .to_owned()
}

/// `rules sign` of `file` with `dir/KEY.key`.
pub fn sign(dir: &Path, key: &str, file: &Path) {
    let out = trailguard(dir)
        .args(["rules", "sign", "--secret-key"])
        .arg(dir.join(format!("{key}.key")))
        .arg(file)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The deliveries of `all`, in name order, split in two: the first half is
/// copied into `live` now; returns the second half, to copy in later (a
/// follow-mode run that sees its input arrive in two steps).
pub fn first_half_into(all: &Path, live: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(live).expect("mkdir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(all)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let second = files.split_off(files.len() / 2);
    for f in &files {
        std::fs::copy(f, live.join(f.file_name().expect("name"))).expect("copy");
    }
    second
}
