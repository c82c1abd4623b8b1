//! `trailguard rules list` and `trailguard rules inspect` on the built
//! components and on components the host refuses.

mod common;

use common::{modules_dir, stderr, trailguard};
use sha2::{Digest, Sha256};

#[test]
fn list_shows_every_built_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = trailguard(dir.path())
        .args(["rules", "list", "--rules"])
        .arg(modules_dir())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aws-sensitive-untrusted-asn    0.1.0    73     high"),
        "{text}"
    );
    assert!(
        text.contains("aws-unusual-asn                0.1.0    47     medium"),
        "{text}"
    );
}

#[test]
fn inspect_reports_identity_contract_config_and_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = modules_dir().join("rule-sensitive-untrusted-asn.wasm");
    let out = trailguard(dir.path())
        .args(["rules", "inspect", "--json"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let r = &reports[0];
    let bytes = std::fs::read(&file).expect("read");
    assert_eq!(r["sha256"], format!("{:x}", Sha256::digest(&bytes)));
    assert_eq!(r["size"], bytes.len());
    assert_eq!(r["contract"], "0.4.0");
    assert_eq!(r["imports"], serde_json::json!([]));
    assert_eq!(r["refused"], serde_json::Value::Null);
    assert_eq!(r["rule"]["id"], "aws-sensitive-untrusted-asn");
    assert_eq!(
        r["rule"]["mitre_techniques"],
        serde_json::json!(["T1078.004"])
    );
    assert_eq!(r["config_defaults"]["min_trusted_events"], 100);
    assert_eq!(r["config_defaults"]["max_untrusted_ratio"], 0.01);
    assert_eq!(
        r["filters"],
        serde_json::json!([]),
        "rule A reads every event"
    );
    let functions = &r["exports"][0]["functions"];
    assert!(
        functions
            .as_array()
            .expect("list")
            .contains(&"[method]detector.advance".into()),
        "{functions}"
    );
}

#[test]
fn inspect_names_imports_of_a_refused_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vendor.wasm");
    let wasm = wat::parse_str(r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance)))"#)
        .expect("WAT");
    std::fs::write(&file, wasm).expect("write");
    let out = trailguard(dir.path())
        .args(["rules", "inspect"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("imports:   wasi:clocks/wall-clock@0.2.0"),
        "{text}"
    );
    assert!(
        text.contains("REFUSED:   it imports wasi:clocks/wall-clock@0.2.0"),
        "{text}"
    );
}
