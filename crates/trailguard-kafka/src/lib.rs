//! trailguard on Kafka: scale-out with consumer groups.
//!
//! - [`publish`] reads CloudTrail in any shape, normalizes and enriches it,
//!   and produces one message per event: the event as a flat ECS document,
//!   keyed by [`partition_key`] (identity name and type, so every rule's
//!   group of events lands in one partition), with the event time as the
//!   message timestamp, through librdkafka's Java-compatible `murmur2`
//!   partitioner. It ends with control messages on every partition: the
//!   newest event time published, and (unless more input follows) the end
//!   of input.
//! - [`Worker`] joins a consumer group. Each assigned partition gets its
//!   own [`trailguard_host::Engine`] (one detector per rule and partition),
//!   restored from the partition's last checkpoint in the state topic
//!   ([`CheckpointStore`]) on first use. Checkpoints are written every N
//!   events or T seconds and when the partition is revoked: alerts flushed,
//!   state durable in Kafka, *then* the offset committed.
//!
//! See `docs/scaling.md` for the guarantees.

mod auth;
mod error;
mod publish;
mod store;
mod topics;
mod worker;

pub use auth::{Auth, CheckpointScope, Control, KafkaKey, MIN_KEY_BYTES};
pub use error::Error;
pub use publish::{PublishOptions, PublishReport, publish};
pub use store::{CHUNK_BYTES, CheckpointStore, ChunkAssembler, ChunkHeaders, MAX_SCAN, Restored};
pub use worker::{
    AlertSink, AlertsTopic, PartitionCheckpoint, PartitionReport, Worker, WorkerOptions,
    WorkerReport,
};

use serde::Serialize;

use trailguard_ingest::NormalizedEvent;

/// Header naming a control message (no event): its value is
/// [`CONTROL_PROGRESS`] or [`CONTROL_END`].
pub const CONTROL_HEADER: &str = "trailguard-control";
/// Control: the payload is the newest event time published (ms since the
/// epoch, decimal): the partition's watermark may advance to it.
pub const CONTROL_PROGRESS: &str = "progress";
/// Control: the input has ended; every evaluation runs.
pub const CONTROL_END: &str = "end";
/// Header of a signed control message: its sequence (decimal), which grows
/// from one control of a partition to the next.
pub const SEQUENCE_HEADER: &str = "trailguard-seq";
/// Header of a signed control message or checkpoint chunk: its
/// HMAC-SHA256 (32 bytes, see [`Auth`]).
pub const MAC_HEADER: &str = "trailguard-mac";

/// A message a worker refused: a control or checkpoint that is not
/// authentic, malformed, out of bounds, or replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The topic it is in.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Why it was refused.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}] offset {}: {}",
            self.topic, self.partition, self.offset, self.reason
        )
    }
}

/// Refusals: all counted, the first [`Refusals::KEPT`] kept with their
/// offsets and reasons (so a flood of forged messages costs no memory).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Refusals {
    /// How many there were.
    pub total: u64,
    /// The first ones.
    pub first: Vec<Refusal>,
}

impl Refusals {
    /// How many refusals are kept in full.
    pub const KEPT: usize = 100;

    /// Counts `refusal`, keeping it if there is room; returns whether it
    /// was kept.
    pub fn push(&mut self, refusal: Refusal) -> bool {
        self.total += 1;
        let keep = self.first.len() < Self::KEPT;
        if keep {
            self.first.push(refusal);
        }
        keep
    }
}

/// The message key of an event: `user.name`, a unit separator, and the
/// identity type. Rule A groups by name and type, rule B by account, name
/// and type, deduplication by eventID (one event, one identity): all are
/// refinements of this key, so each group of each shipped rule is whole in
/// one partition.
pub fn partition_key(event: &NormalizedEvent) -> String {
    event.group_key()
}

/// The state topic of an input topic, unless named otherwise.
pub fn default_state_topic(topic: &str) -> String {
    format!("{topic}.trailguard-state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_identity_name_and_type() {
        let mut e = NormalizedEvent::at(0);
        e.user_name = Some("ci-deploy".into());
        e.identity_type = Some("AssumedRole".into());
        e.cloud_account_id = Some("123".into());
        let mut other_account = e.clone();
        other_account.cloud_account_id = Some("456".into());
        assert_eq!(partition_key(&e), "ci-deploy\u{1f}AssumedRole");
        assert_eq!(partition_key(&e), partition_key(&other_account));
        let mut other_type = e.clone();
        other_type.identity_type = Some("IAMUser".into());
        assert_ne!(partition_key(&e), partition_key(&other_type));
    }
}
