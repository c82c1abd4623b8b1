//! The rule on real CloudTrail records (tests/data/README.md), natively and
//! as the built component. Needs `cargo xtask build` first (`cargo xtask
//! test` does it).

use std::path::Path;

use rule_s3_public_bucket::S3PublicBucket;
use trailguard_host::testing::{assert_component_agrees, built_component};
use trailguard_ingest::{IngestStats, Normalizer, RecordPaths, decode_bytes};
use trailguard_rule_sdk::Rule;

#[test]
fn real_records_alert_exactly_where_a_bucket_is_made_public() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/put-bucket.ndjson");
    let bytes = std::fs::read(&path).expect("fixture");
    let rule = S3PublicBucket::create("").expect("defaults");
    let paths = RecordPaths::new(rule.fields());
    let normalizer = Normalizer::new(None).with_paths(paths);
    let mut stats = IngestStats::default();
    let mut events = Vec::new();
    decode_bytes(
        "put-bucket.ndjson",
        &bytes,
        &normalizer,
        &mut stats,
        &mut |e| events.push(e),
    );
    assert_eq!(events.len(), 6, "{stats:?}");
    let alerts = assert_component_agrees::<S3PublicBucket>(
        &built_component("rule-s3-public-bucket"),
        "",
        &events,
    );
    let ids: Vec<_> = alerts
        .iter()
        .map(|a| a["event.id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "1111",
            "synthetic-canned-public-read",
            "synthetic-acl-body-allusers"
        ]
    );
    assert_eq!(alerts[0]["aws.s3.bucket.name"], "example-bucket");
    assert_eq!(
        alerts[2]["kibana.alert.reason"],
        "AWS S3 bucket made public: bucket bucket: its ACL grants READ to http://acs.amazonaws.com/groups/global/AllUsers"
    );
}
