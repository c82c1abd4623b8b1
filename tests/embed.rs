//! The embedding example (crates/trailguard-host/examples/embed.rs) builds
//! with the tests and, run on real delivery files, gives exactly the alerts
//! of `trailguard run`, across its checkpoint and resume.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{alerts, fixture_mmdb, modules_dir, run, stderr};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

/// target/<profile>/examples/embed, next to this test's own directory.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples/embed");
    assert!(
        path.is_file(),
        "{} not built (cargo test --workspace builds it)",
        path.display()
    );
    path
}

#[test]
fn the_embedding_example_gives_the_clis_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("logs");
    std::fs::create_dir_all(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::long_history().calls(), 50).expect("write");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&input)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();

    let out = Command::new(example())
        .arg(modules_dir())
        .arg(fixture_mmdb())
        .args(&files)
        .output()
        .expect("the example runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let embedded = alerts(&out);
    assert!(stderr(&out).contains("checkpoint of"), "{}", stderr(&out));

    let cli = run(dir.path(), &[&input], &[]);
    assert!(cli.status.success(), "{}", stderr(&cli));
    let expected = alerts(&cli);
    assert_eq!(expected.len(), 2, "both rules alert");
    assert_eq!(embedded, expected);
}
