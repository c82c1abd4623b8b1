//! The HTML report end to end: written by `run --report` and by `report`,
//! rendered by a real headless Chromium, whose screenshot must show the
//! timeline's bars and the attacker's highlighted events.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, stderr, trailguard};
use trailguard_gen::{StolenCiCredentials, write_deliveries};

/// Debian's Chromium (the CI script installs it).
fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("the report tests render the page in a headless Chromium: `apt-get install chromium` (.ci/run installs it)")
}

/// Runs headless Chromium on `page` with `args` (a fresh profile, no
/// network chatter); returns standard output.
fn chromium_on(page: &Path, profile: &Path, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,1300",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pixels of the screenshot within a small distance of `rgb`.
fn pixels_near(png_path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "colour screenshot");
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| {
            p.iter()
                .zip(rgb)
                .all(|(have, want)| have.abs_diff(want) <= 12)
        })
        .count()
}

#[test]
fn the_report_renders_the_timeline_and_highlights_the_attack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = d.join("logs");
    std::fs::create_dir_all(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::long_history().calls(), 50).expect("write");
    let page = d.join("report.html");
    let alerts_file = d.join("alerts.ndjson");
    let out = run(
        d,
        &[&input],
        &[
            "--report",
            page.to_str().expect("UTF-8"),
            "-o",
            alerts_file.to_str().expect("UTF-8"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).expect("report written");
    // Both detections, each with the identity's timeline; the attacker's
    // network and calls flagged; nothing fetched from anywhere.
    assert_eq!(html.matches("<section class=\"alert\"").count(), 2);
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 2);
    assert!(
        html.contains("<text class=\"label flagged\""),
        "attacker's network flagged"
    );
    assert!(html.contains("Comcast Cable Communications, LLC"));
    assert!(html.contains("GetCallerIdentity"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"));

    // The same page from the alerts file, in the ECS and OCSF formats.
    let again = d.join("again.html");
    let out = trailguard(d)
        .arg("report")
        .arg(&alerts_file)
        .arg("--input")
        .arg(&input)
        .arg("--asn-db")
        .arg(common::fixture_mmdb())
        .arg("-o")
        .arg(&again)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&again).expect("page"), html);

    // Chromium parses it into the DOM we wrote ...
    let profile = tempfile::tempdir().expect("tempdir");
    let dom = chromium_on(&page, profile.path(), &["--dump-dom"]);
    assert_eq!(
        dom.matches("<svg class=\"timeline\"").count(),
        2,
        "{dom:.2000}"
    );
    assert!(dom.matches("<rect class=\"bar usual\"").count() > 50);
    // ... and paints it: usual traffic as blue bars, the attacker's calls as
    // red dots.
    let shot = d.join("report.png");
    chromium_on(
        &page,
        profile.path(),
        &[&format!("--screenshot={}", shot.display())],
    );
    let blue = pixels_near(&shot, [0x2f, 0x6f, 0xb3]);
    let red = pixels_near(&shot, [0xff, 0x00, 0x00]);
    assert!(blue > 1000, "timeline bars painted: {blue} pixels");
    assert!(red > 20, "highlighted events painted: {red} pixels");
}

#[test]
fn the_report_reads_ocsf_and_says_when_it_has_no_timelines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let input = d.join("logs");
    std::fs::create_dir_all(&input).expect("mkdir");
    write_deliveries(&input, &StolenCiCredentials::default().calls(), 50).expect("write");
    let findings = d.join("findings.ndjson");
    let out = run(
        d,
        &[&input],
        &["--format", "ocsf", "-o", findings.to_str().expect("UTF-8")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = d.join("report.html");
    let out = trailguard(d)
        .arg("report")
        .arg(&findings)
        .arg("-o")
        .arg(&page)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no --input, so no timelines"));
    let html = std::fs::read_to_string(&page).expect("page");
    assert_eq!(html.matches("<section class=\"alert\"").count(), 1);
    assert!(html.contains("AWS Sensitive API Actions from Untrusted ASN"));
    assert!(html.contains("Timelines need the CloudTrail input"));

    // Not an alerts file: a clear error naming it.
    let not_alerts = d.join("delivery.json");
    std::fs::write(&not_alerts, "{\"Records\": []}\n").expect("write");
    let out = trailguard(d)
        .arg("report")
        .arg(&not_alerts)
        .arg("-o")
        .arg(&page)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not an alerts file"),
        "{}",
        stderr(&out)
    );
}
