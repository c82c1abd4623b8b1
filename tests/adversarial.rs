//! The sandbox promise, tried as an attacker would: a hostile rule, rule
//! file or cache must not get past verification, take over another rule,
//! forge another rule's alerts or make the host do unbounded work. Each
//! test reproduces one way in, and checks it is closed, the message names
//! the cause, and a healthy rule beside it is unaffected.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{first_half_into, fixture_mmdb, keygen, modules_dir, root, sign, stderr, trailguard};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

const RULE_A: &str = "rule-sensitive-untrusted-asn.wasm";
const RULE_B: &str = "rule-unusual-asn.wasm";
const ROOT_ACTIVITY: &str = "rule-root-activity.wasm";

fn test_component(name: &str) -> PathBuf {
    let path = root().join("target/test-components").join(name);
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask build`",
        path.display()
    );
    path
}

/// The stolen-credentials scenario as S3 deliveries in `dir/input`.
fn input(dir: &Path) -> PathBuf {
    let input = dir.join("input");
    std::fs::create_dir_all(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::default().calls(), 40).expect("write");
    input
}

fn run(dir: &Path, rules: &str, extra: &[&str], input: &Path) -> Output {
    trailguard(dir)
        .arg("run")
        .arg("--rules")
        .arg(rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(extra)
        .arg(input)
        .output()
        .expect("runs")
}

fn lines_of(out: &Output, rule: &str) -> Vec<String> {
    let needle = format!("\"kibana.alert.rule.rule_id\":\"{rule}\"");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// The scenario, rule A's component, and rule A's alert lines run alone.
fn rule_a_alone(dir: &Path) -> (PathBuf, PathBuf, Vec<String>) {
    let input = input(dir);
    let rule_a = modules_dir().join(RULE_A);
    let clean = run(dir, rule_a.to_str().expect("utf-8"), &[], &input);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let lines = lines_of(&clean, "aws-sensitive-untrusted-asn");
    assert_eq!(lines.len(), 1, "{}", stderr(&clean));
    (input, rule_a, lines)
}

/// Waits for a child, killing it (and failing) after `limit`.
fn wait_or_kill(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn hot_reload_is_verified_like_a_load_and_keeps_each_file_to_its_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let all = input(d);
    let acme = keygen(d, "acme");
    let trust = d.join("trust.toml");
    std::fs::write(
        &trust,
        format!("[[publisher]]\nname = \"acme\"\npublic_key = \"{acme}\"\n"),
    )
    .expect("write");
    let rules = d.join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    for name in [RULE_A, ROOT_ACTIVITY] {
        std::fs::copy(modules_dir().join(name), rules.join(name)).expect("copy");
        sign(d, "acme", &rules.join(name));
    }
    // Rule B, signed by the same trusted publisher, kept aside.
    let spare = d.join("spare");
    std::fs::create_dir(&spare).expect("mkdir");
    std::fs::copy(modules_dir().join(RULE_B), spare.join(RULE_B)).expect("copy");
    sign(d, "acme", &spare.join(RULE_B));
    let signed = [
        "--require-signed",
        "--trust",
        trust.to_str().expect("utf-8"),
    ];
    let clean = run(d, rules.to_str().expect("utf-8"), &signed, &all);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));

    // Half the deliveries, then the attack, then the rest.
    let live = d.join("live");
    let second = first_half_into(&all, &live);
    let state = d.join("state");
    let output = d.join("out.ndjson");
    let child = trailguard(d)
        .arg("run")
        .arg("--rules")
        .arg(&rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(signed)
        .args(["--follow", "--poll-ms", "50", "--checkpoint-events", "300"])
        .arg("--state-dir")
        .arg(&state)
        .arg("-o")
        .arg(&output)
        .arg(&live)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    // 1. An unsigned component over a signed rule's file (its signature
    //    stays beside it): the hostile rule would write its own alerts.
    let rule_a = rules.join(RULE_A);
    std::fs::copy(test_component("hostile-rule.wasm"), d.join("x.tmp")).expect("copy");
    std::fs::rename(d.join("x.tmp"), &rule_a).expect("replace");
    // 2. Another trusted rule, with its valid signature, over root
    //    activity's file: it would take over that slot and its state.
    let root_activity = rules.join(ROOT_ACTIVITY);
    std::fs::copy(
        spare.join(format!("{RULE_B}.minisig")),
        rules.join(format!("{ROOT_ACTIVITY}.minisig")),
    )
    .expect("copy");
    std::fs::copy(spare.join(RULE_B), d.join("y.tmp")).expect("copy");
    std::fs::rename(d.join("y.tmp"), &root_activity).expect("replace");
    std::thread::sleep(Duration::from_millis(1000));
    for f in &second {
        std::fs::copy(f, live.join(f.file_name().expect("name"))).expect("copy");
    }
    std::thread::sleep(Duration::from_millis(1000));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = wait_or_kill(child, Duration::from_secs(60));
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!(
            "{} changed but was not reloaded, rule aws-sensitive-untrusted-asn goes on as it was",
            rule_a.display()
        )) && log.contains("does not match its signature by `acme`"),
        "{log}"
    );
    assert!(
        log.contains(
            "now declares rule id aws-unusual-asn, but it was loaded as aws-root-activity"
        ),
        "{log}"
    );
    assert!(!log.contains("reloaded rule"), "{log}");

    // Resumed without --follow (the rule files restored), the output is
    // exactly the clean run's.
    for name in [RULE_A, ROOT_ACTIVITY] {
        std::fs::copy(modules_dir().join(name), rules.join(name)).expect("copy");
        sign(d, "acme", &rules.join(name));
    }
    let resumed = trailguard(d)
        .arg("run")
        .arg("--rules")
        .arg(&rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .args(signed)
        .args(["--checkpoint-events", "300"])
        .arg("--state-dir")
        .arg(&state)
        .arg("-o")
        .arg(&output)
        .arg(&live)
        .output()
        .expect("runs");
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let written = std::fs::read_to_string(&output).expect("output");
    assert_eq!(written, String::from_utf8_lossy(&clean.stdout));
    assert!(!written.contains("test-hostile"));
}

#[cfg(unix)]
#[test]
fn a_fifo_named_like_a_rule_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let rules = d.join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::copy(modules_dir().join(RULE_A), rules.join(RULE_A)).expect("copy");
    let fifo = rules.join("zz-fifo.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    // Nobody writes the FIFO: opening it for reading would block forever.
    let child = trailguard(d)
        .arg("run")
        .arg("--rules")
        .arg(&rules)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_or_kill(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("zz-fifo.wasm refused: it is not a regular file (a FIFO)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rule_metadata_over_the_limits_is_quarantined_at_load_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (input, rule_a, clean) = rule_a_alone(d);

    // A 16 MiB description and 50,000 technique ids, with 64 alerts per
    // batch: once 1 GiB of alert documents and seconds of host CPU.
    let bloated = test_component("bloated-rule.wasm");
    let rules = format!("{}:{}", rule_a.display(), bloated.display());
    let stats = d.join("stats.json");
    let out = run(
        d,
        &rules,
        &[
            "--batch-size",
            "50",
            "--stats",
            stats.to_str().expect("utf-8"),
        ],
        &input,
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("QUARANTINED"), "{log}");
    assert!(
        log.contains("its description is 16777216 bytes, over the limit of 16384"),
        "{log}"
    );
    assert_eq!(lines_of(&out, "aws-sensitive-untrusted-asn"), clean);
    assert!(lines_of(&out, "test-bloated").is_empty());
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("JSON");
    let peak = stats["peak_rss_bytes"].as_u64().expect("peak RSS");
    assert!(peak < 300 << 20, "peak RSS {peak} bytes");
}

#[test]
fn alert_ids_bind_the_component_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let real = modules_dir().join(RULE_A);
    // An impostor: rule A's code and metadata, another build (one custom
    // section more). It produces rule A's very documents.
    let impostor = d.join("impostor.wasm");
    let mut bytes = std::fs::read(&real).expect("read");
    bytes.extend_from_slice(&[0x00, 0x06, 0x05, b'e', b'v', b'i', b'l', b'!']);
    std::fs::write(&impostor, bytes).expect("write");
    let ids = |rule: &Path| -> Vec<(String, serde_json::Value)> {
        let out = run(d, rule.to_str().expect("utf-8"), &[], &input);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        common::alerts(&out)
            .into_iter()
            .map(|mut a| {
                let id = a["kibana.alert.uuid"].as_str().expect("uuid").to_owned();
                a.as_object_mut()
                    .expect("object")
                    .remove("kibana.alert.uuid");
                (id, a)
            })
            .collect()
    };
    let (real, impostor) = (ids(&real), ids(&impostor));
    assert_eq!(real.len(), 1);
    assert_eq!(real.len(), impostor.len());
    for ((real_id, real_doc), (impostor_id, impostor_doc)) in real.iter().zip(&impostor) {
        assert_eq!(real_doc, impostor_doc, "the same documents");
        assert_ne!(real_id, impostor_id, "but not the same alert ids");
    }
}

#[cfg(unix)]
#[test]
fn a_compile_cache_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let cache_home = d.join("cache");
    let cache = cache_home.join("trailguard");
    std::fs::create_dir_all(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o775)).expect("chmod");
    let rule_a = modules_dir().join(RULE_A);
    let out = trailguard(d)
        .env("XDG_CACHE_HOME", &cache_home)
        .arg("run")
        .arg("--rules")
        .arg(&rule_a)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg(&input)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is writable by others (mode 775)")
            && stderr(&out).contains("--no-cache"),
        "{}",
        stderr(&out)
    );
    // A fresh cache directory is made private.
    std::fs::remove_dir(&cache).expect("rmdir");
    let out = trailguard(d)
        .env("XDG_CACHE_HOME", &cache_home)
        .arg("run")
        .arg("--rules")
        .arg(&rule_a)
        .arg("--asn-db")
        .arg(fixture_mmdb())
        .arg(&input)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mode = std::fs::metadata(&cache)
        .expect("cache")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    for entry in std::fs::read_dir(&cache).expect("cache") {
        let mode = entry
            .expect("entry")
            .metadata()
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[cfg(unix)]
#[test]
fn keygen_encrypts_by_default_and_writes_the_secret_key_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let keygen = |name: &str| {
        let mut cmd = trailguard(d);
        cmd.args(["rules", "keygen", "--secret-key"])
            .arg(format!("{name}.key"))
            .arg("--public-key")
            .arg(format!("{name}.pub"))
            .stdin(Stdio::null());
        cmd
    };
    // No password and no terminal to ask on: refused, nothing written.
    let out = keygen("a")
        .env_remove("TRAILGUARD_KEY_PASSWORD")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--unencrypted"), "{}", stderr(&out));
    assert!(!d.join("a.key").exists());
    let out = keygen("b")
        .env("TRAILGUARD_KEY_PASSWORD", "pw")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(d.join("b.key")).expect("key");
    assert!(
        minisign::SecretKeyBox::from_string(&text)
            .expect("a secret key")
            .into_unencrypted_secret_key()
            .is_err(),
        "encrypted"
    );
    let mode = std::fs::metadata(d.join("b.key"))
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Never over an existing key.
    let out = keygen("b")
        .env("TRAILGUARD_KEY_PASSWORD", "pw")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_trust_policy_without_require_signed_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let trust = d.join("trust.toml");
    std::fs::write(&trust, "").expect("write");
    let out = run(
        d,
        modules_dir().join(RULE_A).to_str().expect("utf-8"),
        &["--trust", trust.to_str().expect("utf-8")],
        &input,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--require-signed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_snapshot_within_its_limit_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (input, rule_a, clean) = rule_a_alone(d);
    // Snapshots of 160 MiB, under the documented 256 MiB limit, taken
    // every second batch for recovery.
    let config = d.join("snapshots.toml");
    std::fs::write(
        &config,
        "[run]\ncheckpoint_every_batches = 2\n\n[rules.test-hostile]\nmode = \"snapshot-160mib\"\nafter_events = 100\n",
    )
    .expect("write");
    let rules = format!(
        "{}:{}",
        rule_a.display(),
        test_component("hostile-rule.wasm").display()
    );
    let out = run(
        d,
        &rules,
        &[
            "--batch-size",
            "1000",
            "--config",
            config.to_str().expect("utf-8"),
        ],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("QUARANTINED"), "{}", stderr(&out));
    assert_eq!(lines_of(&out, "aws-sensitive-untrusted-asn"), clean);
}

#[cfg(unix)]
#[test]
fn names_from_outside_reach_the_terminal_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rules = d.join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    // A file name that would clear the screen and print a fake line.
    let hostile = "ok.wasm: trusted\n\u{1b}[2K\u{1b}[1A\u{202e}x.wasm";
    std::fs::copy(modules_dir().join(ROOT_ACTIVITY), rules.join(hostile)).expect("copy");
    let trust = d.join("trust.toml");
    std::fs::write(&trust, "").expect("write");
    let list = trailguard(d)
        .args(["rules", "list", "--rules"])
        .arg(&rules)
        .output()
        .expect("runs");
    let verify = trailguard(d)
        .args(["rules", "verify", "--trust"])
        .arg(&trust)
        .arg(rules.join(hostile))
        .output()
        .expect("runs");
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
    for out in [&list, &verify] {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert!(
            text.contains("ok.wasm: trusted\\n\\u{1b}[2K\\u{1b}[1A\\u{202e}x.wasm"),
            "{text:?}"
        );
        // One line per rule or file: the name cannot start a line of its own.
        assert!(!text.lines().any(|l| l.starts_with("\u{1b}")), "{text:?}");
    }
}

#[test]
fn alerts_can_go_to_a_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = input(d);
    let out = run(
        d,
        modules_dir().join(RULE_A).to_str().expect("utf-8"),
        &["-o", "/dev/null"],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_compile_past_its_limit_blocks_further_compiles_until_it_ends() {
    use trailguard_host::{HostError, Limits, Runtime, RuntimeOptions};
    let runtime = Runtime::new(RuntimeOptions {
        limits: Limits {
            max_compile_time: Duration::ZERO,
            ..Limits::default()
        },
        cache_dir: None,
        epoch_interruption: true,
    })
    .expect("runtime");
    let rule_a = modules_dir().join(RULE_A);
    // Nothing compiles in no time: given up on, still compiling.
    let e = runtime.compile_rule(&rule_a).expect_err("over the limit");
    assert!(e.to_string().contains("took longer than the limit"), "{e}");
    // A second (hostile) component cannot start another compile meanwhile.
    let e = runtime
        .compile_rule(&modules_dir().join(RULE_B))
        .expect_err("refused while the first compiles");
    assert!(
        matches!(&e, HostError::Refused { reason, .. } if reason.contains("still compiling")),
        "{e}"
    );
}
