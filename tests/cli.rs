//! The CLI's surface: completions and man pages generated from the clap
//! definitions, and colours only where wanted.

mod common;

use common::{stderr, trailguard};

#[test]
fn completions_cover_every_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = trailguard(dir.path())
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in [
            "run",
            "report",
            "config",
            "rules",
            "completions",
            "format",
            "since",
        ] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let man = dir.path().join("man1");
    let out = trailguard(dir.path())
        .arg("man")
        .arg("-o")
        .arg(&man)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "trailguard.1",
        "trailguard-run.1",
        "trailguard-report.1",
        "trailguard-config-check.1",
        "trailguard-rules-inspect.1",
    ] {
        let text =
            std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is roff"
        );
    }
    let run = std::fs::read_to_string(man.join("trailguard-run.1")).expect("page");
    assert!(
        run.contains("\\-\\-since") && run.contains("Examples"),
        "{run:.400}"
    );
}

/// Colours on standard error: forced with CLICOLOR_FORCE (as on a
/// terminal), never with NO_COLOR, and not when redirected.
#[test]
fn colours_only_when_wanted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[run]\nbatch_sise = 1\n").expect("write");
    let check = |env: &[(&str, &str)]| {
        let mut cmd = trailguard(dir.path());
        cmd.args(["config", "check", "--rules"])
            .arg(common::modules_dir())
            .arg(&bad)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("runs");
        assert_eq!(out.status.code(), Some(1));
        stderr(&out)
    };
    let piped = check(&[]);
    assert!(
        piped.contains("unknown key `batch_sise`") && !piped.contains('\x1b'),
        "{piped:?}"
    );
    let forced = check(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.contains("\x1b[1m\x1b[31m") || forced.contains("\x1b[31"),
        "{forced:?}"
    );
    let no_color = check(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!no_color.contains('\x1b'), "{no_color:?}");
}
