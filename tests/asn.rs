//! `trailguard asn import` and `asn lookup` on real rows of the
//! ip-location-db table (tests/data/asn, CC BY 4.0: DB-IP.com, routeviews.org).

mod common;

use common::{fixture_mmdb, root, stderr, trailguard};

#[test]
fn import_then_lookup_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_db = dir.path().join("asn.mmdb");
    let data = root().join("tests/data/asn");
    let import = trailguard(dir.path())
        .args(["asn", "import", "--ipv4"])
        .arg(data.join("asn-ipv4.csv"))
        .arg("--ipv6")
        .arg(data.join("asn-ipv6.csv"))
        .arg("-o")
        .arg(&out_db)
        .output()
        .expect("runs");
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(
        stderr(&import).contains("11 IPv4 and 3 IPv6 ranges"),
        "{}",
        stderr(&import)
    );

    let lookup = trailguard(dir.path())
        .args(["asn", "lookup", "--asn-db"])
        .arg(&out_db)
        .args(["3.80.17.4", "2600:1f10:5000::1", "73.162.41.17", "8.8.8.8"])
        .output()
        .expect("runs");
    assert!(lookup.status.success(), "{}", stderr(&lookup));
    let text = String::from_utf8_lossy(&lookup.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "3.80.17.4\tAS14618\tAmazon.com, Inc.",
            "2600:1f10:5000::1\tAS16509\tAmazon.com, Inc.",
            "73.162.41.17\tAS7922\tComcast Cable Communications, LLC",
            "8.8.8.8\tAS15169\tGoogle LLC",
        ]
    );
}

#[test]
fn lookup_says_what_is_not_found_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = trailguard(dir.path())
        .args(["asn", "lookup", "--asn-db"])
        .arg(fixture_mmdb())
        .args(["075.050.255.67", "10.1.2.3", "2601::9"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("075.050.255.67\tnot a literal IP address"),
        "{text}"
    );
    assert!(text.contains("10.1.2.3\tnot found"), "{text}");
    assert!(
        text.contains("2601::9\tAS7922\tComcast Cable Communications, LLC"),
        "{text}"
    );
}

#[test]
fn a_file_that_is_not_an_asn_database_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bogus.mmdb");
    std::fs::write(&bogus, b"not an mmdb").expect("write");
    let out = trailguard(dir.path())
        .args(["asn", "lookup", "--asn-db"])
        .arg(&bogus)
        .arg("1.1.1.1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bogus.mmdb"), "{}", stderr(&out));
}
