//! Origin verification: keygen, sign, verify, and `run --require-signed`
//! refusing unsigned, tampered and unknown-key modules.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture_mmdb, keygen, modules_dir, sign, stderr, trailguard};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

fn copy_rule(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(modules_dir().join("rule-sensitive-untrusted-asn.wasm"), &to).expect("copy");
    to
}

fn run_signed(dir: &Path, rule: &Path, trust: &Path, input: &Path) -> std::process::Output {
    trailguard(dir)
        .arg("run")
        .arg("--rules")
        .arg(rule)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg("--require-signed")
        .arg("--trust")
        .arg(trust)
        .arg(input)
        .output()
        .expect("runs")
}

#[test]
fn signed_modules_run_and_tampered_unsigned_or_unknown_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = d.join("input");
    std::fs::create_dir(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::default().calls(), 100).expect("write");
    let acme = keygen(d, "acme");
    let _other = keygen(d, "other");
    let trust = d.join("trust.toml");
    std::fs::write(
        &trust,
        format!("[[publisher]]\nname = \"acme\"\npublic_key = \"{acme}\"\n"),
    )
    .expect("write");

    // Signed by a trusted publisher: verified and run.
    let good = copy_rule(d, "good.wasm");
    sign(d, "acme", &good);
    let verify = trailguard(d)
        .args(["rules", "verify", "--trust"])
        .arg(&trust)
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(
        String::from_utf8_lossy(&verify.stdout)
            .contains("trusted (signed by acme; rule:aws-sensitive-untrusted-asn version:")
    );
    let out = run_signed(d, &good, &trust, &input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(common::alerts(&out).len(), 1);

    // Tampered after signing.
    let tampered = copy_rule(d, "tampered.wasm");
    sign(d, "acme", &tampered);
    let mut bytes = std::fs::read(&tampered).expect("read");
    bytes.extend_from_slice(&[0, 4, b'e', b'v', b'i', b'l', 0]);
    std::fs::write(&tampered, bytes).expect("write");
    let out = run_signed(d, &tampered, &trust, &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("tampered.wasm does not match its signature by `acme`"),
        "{}",
        stderr(&out)
    );
    assert!(common::alerts(&out).is_empty());

    // Unsigned and not pinned.
    let unsigned = copy_rule(d, "unsigned.wasm");
    let out = run_signed(d, &unsigned, &trust, &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not signed (no"),
        "{}",
        stderr(&out)
    );

    // Signed by a key the policy does not know.
    let foreign = copy_rule(d, "foreign.wasm");
    sign(d, "other", &foreign);
    let out = run_signed(d, &foreign, &trust, &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("signed by a key that is not in the trust policy"),
        "{}",
        stderr(&out)
    );

    // A publisher whose rule ids are bound cannot sign another's rule.
    std::fs::write(
        &trust,
        format!("[[publisher]]\nname = \"acme\"\npublic_key = \"{acme}\"\nrules = [\"acme-*\"]\n"),
    )
    .expect("write");
    let out = run_signed(d, &good, &trust, &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("publisher `acme` may not sign rule id aws-sensitive-untrusted-asn"),
        "{}",
        stderr(&out)
    );
    // A signature that does not bind the rule id and version (made by
    // minisign itself with its default comment).
    let key = minisign::SecretKeyBox::from_string(
        &std::fs::read_to_string(d.join("acme.key")).expect("key"),
    )
    .and_then(|b| b.into_unencrypted_secret_key())
    .expect("unencrypted key");
    let bare = copy_rule(d, "bare.wasm");
    let bytes = std::fs::read(&bare).expect("read");
    let signature = minisign::sign(
        None,
        &key,
        std::io::Cursor::new(bytes),
        Some("file:bare.wasm"),
        None,
    )
    .expect("sign");
    std::fs::write(d.join("bare.wasm.minisig"), signature.into_string()).expect("write");
    std::fs::write(
        &trust,
        format!("[[publisher]]\nname = \"acme\"\npublic_key = \"{acme}\"\n"),
    )
    .expect("write");
    let out = run_signed(d, &bare, &trust, &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not name the rule id and version"),
        "{}",
        stderr(&out)
    );

    // Pinning the digest trusts the unsigned file.
    let verify = trailguard(d)
        .args(["rules", "inspect", "--json"])
        .arg(&unsigned)
        .output()
        .expect("runs");
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).expect("JSON");
    let sha = report[0]["sha256"].as_str().expect("digest").to_owned();
    std::fs::write(
        &trust,
        format!("[[publisher]]\nname = \"acme\"\npublic_key = \"{acme}\"\n\n[[pinned]]\nsha256 = \"{sha}\"\nnote = \"reviewed\"\n"),
    )
    .expect("write");
    let out = run_signed(d, &unsigned, &trust, &input);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_encrypted_key_needs_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = trailguard(d)
        .args([
            "rules",
            "keygen",
            "--secret-key",
            "k.key",
            "--public-key",
            "k.pub",
        ])
        .env("TRAILGUARD_KEY_PASSWORD", "correct horse")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let file = copy_rule(d, "r.wasm");
    let without = trailguard(d)
        .args(["rules", "sign", "--secret-key", "k.key"])
        .arg(&file)
        .env_remove("TRAILGUARD_KEY_PASSWORD")
        .output()
        .expect("runs");
    assert_eq!(without.status.code(), Some(1));
    assert!(
        stderr(&without).contains("set TRAILGUARD_KEY_PASSWORD"),
        "{}",
        stderr(&without)
    );
    let with = trailguard(d)
        .args(["rules", "sign", "--secret-key", "k.key"])
        .arg(&file)
        .env("TRAILGUARD_KEY_PASSWORD", "correct horse")
        .output()
        .expect("runs");
    assert!(with.status.success(), "{}", stderr(&with));
    assert!(d.join("r.wasm.minisig").is_file());
}

/// Files of Sigma rules are third-party code too: with `--require-signed`
/// each must be signed (as Sigma rules, by a publisher allowed the `sigma`
/// pack) or pinned; an unsigned, modified or wrongly signed file stops the
/// run naming it.
#[test]
fn sigma_rule_files_must_be_signed_under_require_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = d.join("input");
    std::fs::create_dir(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::default().calls(), 100).expect("write");
    let acme = keygen(d, "acme");
    let narrow = keygen(d, "narrow");
    let trust = d.join("trust.toml");
    std::fs::write(
        &trust,
        format!(
            "[[publisher]]\nname = \"acme\"\npublic_key = \"{acme}\"\n\n[[publisher]]\nname = \"narrow\"\npublic_key = \"{narrow}\"\nrules = [\"narrow-*\"]\n"
        ),
    )
    .expect("write");
    let pack = d.join("rule-sigma.wasm");
    std::fs::copy(modules_dir().join("rule-sigma.wasm"), &pack).expect("copy");
    sign(d, "acme", &pack);
    let rules = d.join("sigma");
    std::fs::create_dir(&rules).expect("mkdir");
    let sigmahq = common::root().join("rules/sigma/cloud/aws/cloudtrail");
    for name in [
        "aws_sts_assumerole_misuse.yml",
        "aws_iam_backdoor_users_keys.yml",
    ] {
        std::fs::copy(sigmahq.join(name), rules.join(name)).expect("copy");
    }
    let run = |extra: &[&str]| {
        trailguard(d)
            .arg("run")
            .arg("--rules")
            .arg(&pack)
            .arg("--sigma")
            .arg(&rules)
            .arg("--asn-db")
            .arg(fixture_mmdb())
            .args(extra)
            .arg(&input)
            .output()
            .expect("runs")
    };
    let signed_run = || {
        run(&[
            "--require-signed",
            "--trust",
            trust.to_str().expect("utf-8"),
        ])
    };
    let verify = |file: &Path| {
        let out = trailguard(d)
            .args(["rules", "verify", "--trust"])
            .arg(&trust)
            .arg(file)
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let first = rules.join("aws_sts_assumerole_misuse.yml");
    let second = rules.join("aws_iam_backdoor_users_keys.yml");

    // Unsigned: refused, naming the file.
    let out = signed_run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("aws_iam_backdoor_users_keys.yml is not trusted"),
        "{}",
        stderr(&out)
    );

    // Both signed: the run goes, and the role-session rule alerts.
    sign(d, "acme", &first);
    sign(d, "acme", &second);
    let (ok, text) = verify(&first);
    assert!(
        ok && text.contains("trusted (signed by acme; sigma:"),
        "{text}"
    );
    let out = signed_run();
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = common::json_lines(&String::from_utf8_lossy(&out.stdout));
    assert!(
        alerts
            .iter()
            .any(|a| a["kibana.alert.rule.rule_id"] == "905d389b-b853-46d0-9d3d-dea0d3a3cd49"),
        "{} alerts",
        alerts.len()
    );
    // Without --require-signed, signatures are not asked for.
    assert!(run(&[]).status.success());

    // Modified after signing: refused.
    let text = std::fs::read_to_string(&second).expect("read");
    std::fs::write(&second, text.replace("level: medium", "level: low")).expect("write");
    let out = signed_run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("modified after signing"),
        "{}",
        stderr(&out)
    );
    assert!(!verify(&second).0);

    // Signed by a publisher not allowed the `sigma` pack: refused.
    sign(d, "narrow", &second);
    let out = signed_run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("may not sign Sigma rules"),
        "{}",
        stderr(&out)
    );
    let (ok, text) = verify(&second);
    assert!(!ok && text.contains("NOT TRUSTED"), "{text}");

    // A component's signature moved onto a rule file is not a Sigma one.
    sign(d, "acme", &second);
    std::fs::copy(
        trailguard_host::trust::signature_path(&pack),
        trailguard_host::trust::signature_path(&second),
    )
    .expect("copy");
    let out = signed_run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("aws_iam_backdoor_users_keys.yml"),
        "{}",
        stderr(&out)
    );
}
