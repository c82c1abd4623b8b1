//! Checkpoints in Kafka: partition `p` of the state topic holds the
//! checkpoints of input partition `p`, so rebuilding a partition's state
//! on any machine is reading the tail of one partition.
//!
//! A checkpoint is a run of messages keyed by the consumer group, each a
//! chunk of at most [`CHUNK_BYTES`] (brokers cap message sizes), with
//! headers naming the checkpoint and the chunk (`i/n`). Chunks of one
//! checkpoint are produced in order by one producer to one partition; a
//! checkpoint whose chunks are not all there (its writer died) is ignored
//! and the one before it is used. Only the newest checkpoint matters, so the
//! topic may be compacted or have a short retention.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::Error;
use crate::error::Context;

/// Largest chunk of a checkpoint, in bytes.
pub const CHUNK_BYTES: usize = 512 * 1024;
const HEADER_CHECKPOINT: &str = "trailguard-checkpoint";
const HEADER_CHUNK: &str = "trailguard-chunk";
/// How long reading the tail of the state partition may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and writes checkpoints of one consumer group.
pub struct CheckpointStore {
    brokers: String,
    topic: String,
    group: String,
    producer: FutureProducer,
    reader: BaseConsumer,
    nonce: u64,
    sequence: u64,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish()
    }
}

impl CheckpointStore {
    /// A store in `topic` (which must exist) for consumer group `group`.
    pub fn new(brokers: &str, topic: &str, group: &str) -> Result<CheckpointStore, Error> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("message.max.bytes", (2 * CHUNK_BYTES).to_string())
            .set("linger.ms", "0")
            .create()
            .context(|| format!("cannot create a producer for {brokers}"))?;
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("{group}.state-reader"))
            .set("enable.auto.commit", "false")
            .set("fetch.message.max.bytes", (2 * CHUNK_BYTES).to_string())
            // A restore waits on this read: do not let the broker hold it.
            .set("fetch.wait.max.ms", "10")
            .create()
            .context(|| format!("cannot create a consumer for {brokers}"))?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Ok(CheckpointStore {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            producer,
            reader,
            nonce,
            sequence: 0,
        })
    }

    /// Writes a checkpoint of `partition` and waits until Kafka has it all.
    pub fn save(&mut self, partition: i32, payload: &[u8]) -> Result<(), Error> {
        self.sequence += 1;
        let id = format!("{:x}-{}", self.nonce, self.sequence);
        let chunks: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(CHUNK_BYTES).collect()
        };
        let n = chunks.len();
        let mut pending = Vec::with_capacity(n);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let position = format!("{i}/{n}");
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_CHECKPOINT,
                    value: Some(id.as_str()),
                })
                .insert(Header {
                    key: HEADER_CHUNK,
                    value: Some(position.as_str()),
                });
            let record = FutureRecord::to(&self.topic)
                .partition(partition)
                .key(self.group.as_bytes())
                .payload(chunk)
                .headers(headers);
            let future = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .context(|| format!("cannot write a checkpoint to {}", self.topic))?;
            pending.push(future);
        }
        for future in pending {
            match futures_executor::block_on(future) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(Error::Kafka {
                        context: format!(
                            "checkpoint of partition {partition} not written to {}",
                            self.topic
                        ),
                        source: e,
                    });
                }
                Err(_) => {
                    return Err(Error::State {
                        partition,
                        message: "the producer went away before Kafka acknowledged it".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The newest complete checkpoint of `partition` for this group.
    pub fn load(&self, partition: i32) -> Result<Option<Vec<u8>>, Error> {
        let (low, high) = self
            .reader
            .fetch_watermarks(&self.topic, partition, READ_TIMEOUT)
            .context(|| {
                format!(
                    "cannot read the offsets of {}[{partition}] on {}",
                    self.topic, self.brokers
                )
            })?;
        let mut window: i64 = 64;
        loop {
            let start = (high - window).max(low);
            let messages = self.read(partition, start, high)?;
            if let Some(payload) = newest_complete(&messages) {
                return Ok(Some(payload));
            }
            if start <= low {
                return Ok(None);
            }
            window = window.saturating_mul(4);
        }
    }

    /// (checkpoint id, chunk index, chunk count, payload) of this group's
    /// messages in `[start, end)`, in order.
    fn read(&self, partition: i32, start: i64, end: i64) -> Result<Vec<Chunk>, Error> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, partition, Offset::Offset(start))
            .context(|| format!("bad offset {start} of {}[{partition}]", self.topic))?;
        self.reader
            .assign(&assignment)
            .context(|| format!("cannot read {}[{partition}]", self.topic))?;
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut next = start;
        while next < end {
            if Instant::now() > deadline {
                return Err(Error::State {
                    partition,
                    message: format!(
                        "timed out reading {}[{partition}] at offset {next} of {end}",
                        self.topic
                    ),
                });
            }
            let Some(message) = self.reader.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.context(|| format!("cannot read {}[{partition}]", self.topic))?;
            next = message.offset() + 1;
            if message.key() != Some(self.group.as_bytes()) {
                continue;
            }
            let header = |name: &str| -> Option<String> {
                let headers = message.headers()?;
                headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            let (Some(id), Some(position)) = (header(HEADER_CHECKPOINT), header(HEADER_CHUNK))
            else {
                continue;
            };
            let Some((i, n)) = position
                .split_once('/')
                .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            else {
                continue;
            };
            out.push((id, i, n, message.payload().unwrap_or_default().to_vec()));
        }
        self.reader
            .unassign()
            .context(|| format!("cannot stop reading {}", self.topic))?;
        Ok(out)
    }
}

/// One chunk as read: (checkpoint id, chunk index, chunk count, payload).
type Chunk = (String, usize, usize, Vec<u8>);

/// The newest checkpoint whose chunks are all in `messages` (in order).
fn newest_complete(messages: &[Chunk]) -> Option<Vec<u8>> {
    for (last, (id, i, n, _)) in messages.iter().enumerate().rev() {
        if i + 1 != *n || last + 1 < *n {
            continue;
        }
        let run = &messages[last + 1 - n..=last];
        let whole = run
            .iter()
            .enumerate()
            .all(|(k, (cid, ci, cn, _))| cid == id && *ci == k && cn == n);
        if whole {
            return Some(run.iter().flat_map(|c| c.3.iter().copied()).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_whole_checkpoint_is_taken_a_torn_one_skipped() {
        let chunk = |id: &str, i: usize, n: usize, b: u8| -> Chunk { (id.into(), i, n, vec![b]) };
        let torn = vec![
            chunk("a", 0, 2, 1),
            chunk("a", 1, 2, 2),
            chunk("b", 0, 3, 3),
            chunk("b", 1, 3, 4),
        ];
        assert_eq!(newest_complete(&torn), Some(vec![1, 2]), "b is torn");
        let mut whole = torn.clone();
        whole.push(chunk("b", 2, 3, 5));
        assert_eq!(newest_complete(&whole), Some(vec![3, 4, 5]));
        assert_eq!(newest_complete(&torn[2..]), None);
        assert_eq!(newest_complete(&[]), None);
    }
}
