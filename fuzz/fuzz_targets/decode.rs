//! Any bytes into the decoder (gzip detection, every delivery shape, the
//! broken-document scanner, ECS documents, normalization): no panic, and the
//! counts add up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailguard_ingest::{IngestStats, Normalizer, decode_bytes};

fuzz_target!(|data: &[u8]| {
    let mut stats = IngestStats::default();
    let mut accepted = 0u64;
    decode_bytes("fuzz", data, &Normalizer::new(None), &mut stats, &mut |_| accepted += 1);
    assert_eq!(stats.accepted, accepted);
    assert_eq!(stats.records_read, stats.accepted + stats.rejected_total());
});
