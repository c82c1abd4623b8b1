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

mod error;
mod publish;
mod store;
mod topics;
mod worker;

pub use error::Error;
pub use publish::{PublishOptions, PublishReport, publish};
pub use store::CheckpointStore;
pub use worker::{AlertSink, AlertsTopic, PartitionReport, Worker, WorkerOptions, WorkerReport};

use trailguard_ingest::NormalizedEvent;

/// Header naming a control message (no event): its value is
/// [`CONTROL_PROGRESS`] or [`CONTROL_END`].
pub const CONTROL_HEADER: &str = "trailguard-control";
/// Control: the payload is the newest event time published (ms since the
/// epoch, decimal): the partition's watermark may advance to it.
pub const CONTROL_PROGRESS: &str = "progress";
/// Control: the input has ended; every evaluation runs.
pub const CONTROL_END: &str = "end";

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
