//! Bench input: realistic normalized events, decoded and enriched by the real
//! pipeline from generated CloudTrail records.

#![allow(dead_code)]

use std::path::PathBuf;

use trailguard_asn::AsnDb;
use trailguard_gen::StolenCiCredentials;
use trailguard_ingest::{IngestStats, NormalizedEvent, Normalizer, decode_bytes};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A component built by `cargo xtask build`.
pub fn component(dir: &str, name: &str) -> PathBuf {
    let path = root().join("target").join(dir).join(name);
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask build` first",
        path.display()
    );
    path
}

/// `n` events of the stolen-credentials scenario (repeated), normalized and
/// enriched with the fixture ASN database.
pub fn events(n: usize) -> Vec<NormalizedEvent> {
    let db =
        AsnDb::open(&root().join("tests/data/asn/asn-fixture.mmdb")).expect("fixture ASN database");
    let normalizer = Normalizer::new(Some(&db));
    let scenario = StolenCiCredentials {
        trusted_calls: 2000,
        background_user_calls: 200,
        ..StolenCiCredentials::default()
    };
    let ndjson: String = scenario
        .calls()
        .iter()
        .map(|c| c.to_json().to_string() + "\n")
        .collect();
    let mut all = Vec::new();
    let mut stats = IngestStats::default();
    decode_bytes(
        "bench",
        ndjson.as_bytes(),
        &normalizer,
        &mut stats,
        &mut |e| all.push(e),
    );
    all.iter().cycle().take(n).cloned().collect()
}
