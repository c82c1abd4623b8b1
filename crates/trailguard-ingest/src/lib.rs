//! From CloudTrail deliveries to normalized, enriched events.
//!
//! The flow inside this crate follows the pipeline's names:
//! [`source`] (files, directories, stdin) → [`decode`] (gzip, S3 delivery
//! objects, JSON arrays, NDJSON, EventBridge envelopes) → [`normalize`] (ECS
//! fields per `cloudtrail-mapping.md`) → enrich (source AS via
//! [`trailguard_asn`]).
//!
//! A bad record never costs a good one: it becomes a [`Rejection`] naming the
//! file and position, and decoding goes on with the next record.

pub mod decode;
mod dedup;
mod ecs;
pub mod normalize;
pub mod read;
pub mod record;
mod scan;
pub mod source;
mod stats;

pub use compact_str::CompactString;
pub use decode::{decode_bytes, parse_only};
pub use dedup::Deduplicator;
pub use normalize::{NormalizedEvent, Normalizer, WallClock};
pub use read::{PieceInfo, ReadOptions, Resume, read_sources};
pub use record::{EventTest, RecordPaths, RecordValues};
pub use source::{Source, expand_inputs};
pub use stats::{Counts, IngestStats, NoAsnReason, RejectReason, Rejection};
