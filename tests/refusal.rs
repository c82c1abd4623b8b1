//! The host refuses what is not a rule of this contract, with a message that
//! names the file and says what to do.

mod common;

use common::{fixture_mmdb, stderr, trailguard};

fn refused(wasm: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = dir.path().join("suspect.wasm");
    std::fs::write(&rule, wasm).expect("write");
    let input = dir.path().join("empty.json");
    std::fs::write(&input, "[]").expect("write");
    let out = trailguard(dir.path())
        .arg("run")
        .arg("--rules")
        .arg(&rule)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg(&input)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("suspect.wasm"),
        "names the file: {message}"
    );
    message
}

#[test]
fn a_component_that_imports_anything_is_refused() {
    let wasm = wat::parse_str(
        r#"(component
             (import "wasi:filesystem/preopens@0.2.0" (instance))
             (import "wasi:sockets/tcp@0.2.0" (instance)))"#,
    )
    .expect("valid WAT");
    let message = refused(&wasm);
    assert!(
        message.contains("wasi:filesystem/preopens@0.2.0"),
        "{message}"
    );
    assert!(message.contains("wasi:sockets/tcp@0.2.0"), "{message}");
    assert!(message.contains("must import nothing"), "{message}");
}

#[test]
fn another_contract_version_is_refused_and_named() {
    let wasm = wat::parse_str(
        r#"(component
             (instance $rule)
             (export "trailguard:detector/rule@0.3.0" (instance $rule)))"#,
    )
    .expect("valid WAT");
    // A rule built for the previous contract (one rule per component, no `rules`).
    let message = refused(&wasm);
    assert!(message.contains("trailguard:detector@0.3.0"), "{message}");
    assert!(
        message.contains("speaks trailguard:detector@0.4.0"),
        "{message}"
    );
}

#[test]
fn a_component_without_the_rule_export_is_refused() {
    let wasm = wat::parse_str("(component)").expect("valid WAT");
    let message = refused(&wasm);
    assert!(
        message.contains("does not export trailguard:detector/rule@0.4.0"),
        "{message}"
    );
}

#[test]
fn a_core_module_is_refused_with_advice() {
    let wasm = wat::parse_str("(module)").expect("valid WAT");
    let message = refused(&wasm);
    assert!(
        message.contains("core WebAssembly module, not a component"),
        "{message}"
    );
    assert!(message.contains("cargo xtask build"), "{message}");
}
