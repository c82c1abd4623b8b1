//! A worker of a consumer group: per-partition engines whose state follows
//! the partitions.
//!
//! The order of a checkpoint is what makes failover exact: (1) the
//! partition's engine flushes and captures its state, (2) every alert so far
//! is flushed to its sink, (3) the state is written to the state topic and
//! acknowledged, (4) only then is the offset committed. A new owner reads
//! the newest complete checkpoint and resumes at the offset stored in it
//! (seeking back if the committed offset ran ahead, skipping messages the
//! state already holds), so every event counts exactly once in the state;
//! alerts emitted after the last checkpoint by a worker that died are
//! emitted again, with the same deterministic ids.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use trailguard_format::{AlertDocument, Format, field};
use trailguard_host::{CompiledRule, Engine, EngineOptions, EngineState, Runtime};
use trailguard_ingest::NormalizedEvent;

use crate::auth::{Auth, Control, ControlCheck, ControlMessage};
use crate::error::Context;
use crate::store::CheckpointStore;
use crate::topics::{ensure_topic, partition_count};
use crate::{CONTROL_HEADER, Error, MAC_HEADER, Refusal, Refusals, SEQUENCE_HEADER};

/// Where a worker's alerts go.
pub trait AlertSink: Send {
    /// Takes alerts (they may be buffered).
    fn write(&mut self, alerts: &[AlertDocument]) -> Result<(), String>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), String>;
}

/// Alerts to a Kafka topic, keyed by their deterministic id (so a compacted
/// alerts topic keeps one copy of an alert replayed after a failover).
pub struct AlertsTopic {
    producer: FutureProducer,
    topic: String,
    format: Format,
    pending: Vec<DeliveryFuture>,
    line: Vec<u8>,
}

impl AlertsTopic {
    /// Alerts to `topic` on `brokers`, created (3 partitions) if missing.
    pub fn new(brokers: &str, topic: &str, format: Format) -> Result<AlertsTopic, Error> {
        ensure_topic(brokers, topic, 3, &[])?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .create()
            .context(|| format!("cannot create a producer for {brokers}"))?;
        Ok(AlertsTopic {
            producer,
            topic: topic.to_owned(),
            format,
            pending: Vec::new(),
            line: Vec::new(),
        })
    }
}

impl AlertSink for AlertsTopic {
    fn write(&mut self, alerts: &[AlertDocument]) -> Result<(), String> {
        for alert in alerts {
            self.line.clear();
            self.format.write(alert, &mut self.line);
            let key = alert
                .get(field::UUID)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            // One message per alert; for the bulk format both lines together.
            let payload = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            let record = FutureRecord::to(&self.topic)
                .key(key.as_bytes())
                .payload(payload);
            let future = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| format!("cannot produce to {}: {e}", self.topic))?;
            self.pending.push(future);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        for future in self.pending.drain(..) {
            futures_executor::block_on(future)
                .map_err(|_| "the producer went away".to_owned())?
                .map_err(|(e, _)| format!("an alert was not delivered to {}: {e}", self.topic))?;
        }
        Ok(())
    }
}

/// How a worker runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// The input topic (events published by [`crate::publish`]).
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// Where checkpoints go (default `TOPIC.trailguard-state`; created with
    /// the input topic's partition count if missing).
    pub state_topic: String,
    /// Checkpoint a partition after this many messages...
    pub checkpoint_events: u64,
    /// ... or this long after its last checkpoint.
    pub checkpoint_interval: Duration,
    /// The group session timeout: how soon a dead worker's partitions move.
    pub session_timeout: Duration,
    /// For failure tests: abort the process (as a crash would, nothing
    /// flushed or committed) once this many events were processed.
    pub abort_after_events: Option<u64>,
    /// How control messages and checkpoints are authenticated.
    pub auth: Auth,
    /// The largest checkpoint written or restored, in bytes (the CLI: every
    /// rule's snapshot limit, plus one for the host's state).
    pub max_checkpoint_bytes: usize,
    /// A `progress` further ahead of this worker's clock is refused: event
    /// time comes from the past, and a watermark in the future would make
    /// every later event late.
    pub max_progress_ahead: Duration,
}

impl WorkerOptions {
    /// A worker of `group` on `topic` at `brokers`, with the defaults.
    pub fn new(brokers: &str, topic: &str, group: &str, auth: Auth) -> WorkerOptions {
        WorkerOptions {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            state_topic: crate::default_state_topic(topic),
            checkpoint_events: 50_000,
            checkpoint_interval: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
            abort_after_events: None,
            auth,
            max_checkpoint_bytes: 1 << 30,
            max_progress_ahead: Duration::from_secs(15 * 60),
        }
    }
}

/// What one partition did while this worker owned it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionReport {
    /// Events processed (not counting skipped replays).
    pub events: u64,
    /// Events whose message was not an event (counted, skipped).
    pub rejected: u64,
    /// Times its state was restored from a checkpoint.
    pub restores: u64,
    /// Bytes and milliseconds of the last restore.
    pub restore_bytes: u64,
    /// Milliseconds the last restore took (read and load).
    pub restore_ms: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Bytes of the last checkpoint.
    pub checkpoint_bytes: u64,
    /// Milliseconds all checkpoints took (flush, write, commit).
    pub checkpoint_ms: u64,
    /// Control messages refused (not authentic, replayed, malformed, or a
    /// progress too far ahead).
    pub refused_controls: u64,
    /// State-topic messages and checkpoints refused while restoring.
    pub refused_checkpoints: u64,
    /// Events the time guard refused (dated past the wall clock, or far
    /// ahead of the partition's stream).
    pub refused_events: u64,
}

/// What kind of message a worker refused.
#[derive(Clone, Copy, Debug)]
enum Refused {
    Control,
    Checkpoint,
    Event,
}

/// What a worker did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerReport {
    /// Per input partition.
    pub partitions: BTreeMap<i32, PartitionReport>,
    /// Alerts written.
    pub alerts: u64,
    /// Every message refused (counted; the first ones with their topic,
    /// partition, offset and reason).
    pub refusals: Refusals,
    /// Seconds from start to stop.
    pub elapsed_seconds: f64,
}

/// What a checkpoint holds for one partition: the payload of the state
/// topic's chunks, in postcard.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionCheckpoint {
    /// The offset of the first message not in the state.
    pub next_offset: i64,
    /// The sequence of the last control message the partition accepted.
    pub last_control_sequence: Option<u64>,
    /// The engine's state.
    pub engine: EngineState,
}

/// Starts a checkpoint of format 2 or later, followed by the format (u32,
/// little-endian). Format 1 (before checkpoints named their format) cannot
/// start so: its first byte, a one-byte offset, would be followed by `G`,
/// which is no `Option` tag.
const FORMAT_TAG: &[u8; 4] = b"TGCP";

/// The format of the partition checkpoints this build writes. Format 1 has
/// format 2's layout, without the tag.
pub const CHECKPOINT_FORMAT: u32 = 2;

impl PartitionCheckpoint {
    /// The bytes of this checkpoint, tagged with [`CHECKPOINT_FORMAT`].
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut bytes = FORMAT_TAG.to_vec();
        bytes.extend_from_slice(&CHECKPOINT_FORMAT.to_le_bytes());
        postcard::to_extend(self, bytes).map_err(|e| e.to_string())
    }

    /// A checkpoint from its bytes, all of them, in any format up to
    /// [`CHECKPOINT_FORMAT`]; a newer one is refused by name (the worker
    /// then reports the refusal, like any unreadable checkpoint).
    /// Never panics; allocates in proportion to `bytes` (collection lengths
    /// in the bytes only cap preallocation), whatever the bytes are.
    pub fn decode(bytes: &[u8]) -> Result<PartitionCheckpoint, String> {
        let (format, body) = match bytes.strip_prefix(FORMAT_TAG) {
            Some(tagged) => {
                let (format, body) = tagged
                    .split_first_chunk::<4>()
                    .ok_or("unreadable checkpoint: its format is cut off")?;
                (u32::from_le_bytes(*format), body)
            }
            None => (1, bytes),
        };
        if format > CHECKPOINT_FORMAT {
            return Err(format!(
                "the checkpoint is in format {format}, written by a newer trailguard; this worker reads formats 1 to {CHECKPOINT_FORMAT}: upgrade it"
            ));
        }
        // Formats 1 and 2 have the same layout.
        let (checkpoint, rest) = postcard::take_from_bytes::<PartitionCheckpoint>(body)
            .map_err(|e| format!("unreadable checkpoint (format {format}): {e}"))?;
        if !rest.is_empty() {
            return Err(format!(
                "unreadable checkpoint: {} byte(s) after its end",
                rest.len()
            ));
        }
        Ok(checkpoint)
    }

    /// Checks the checkpoint's offset against the input partition's `high`
    /// watermark, fetched before reading the checkpoint: every offset a
    /// worker saved was at most the high watermark then.
    pub fn check_offset(&self, topic: &str, partition: i32, high: i64) -> Result<(), String> {
        if (0..=high).contains(&self.next_offset) {
            return Ok(());
        }
        Err(format!(
            "the checkpoint resumes at offset {} but {topic}[{partition}] ends at {high}: refused (forged, or the input topic was recreated: then delete the state topic)",
            self.next_offset
        ))
    }
}

/// One owned partition.
struct Owned {
    engine: Engine,
    /// The first offset not in the state; `None` before the first message
    /// when there was no checkpoint (the state is empty: any offset fits).
    next_offset: Option<i64>,
    /// Restored, and no message handled yet.
    just_restored: bool,
    /// The sequence of the last control message accepted.
    last_control_sequence: Option<u64>,
    since_checkpoint: u64,
    checkpointed_at: Instant,
}

/// What the loop does after a message.
enum Next {
    Continue,
    Checkpoint,
    /// The state ends before this message: read again from this offset.
    SeekBack(i64),
}

/// Everything the consumer loop and the rebalance callback share.
struct Core {
    runtime: Arc<Runtime>,
    rules: Vec<CompiledRule>,
    engine_options: EngineOptions,
    options: WorkerOptions,
    store: CheckpointStore,
    sink: Box<dyn AlertSink>,
    owned: BTreeMap<i32, Owned>,
    report: WorkerReport,
    /// A failure inside the rebalance callback, reported by the loop.
    failure: Option<Error>,
}

struct WorkerContext {
    core: Mutex<Core>,
}

impl WorkerContext {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug; the state is still ours.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for WorkerContext {}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut core = self.lock();
            for element in list.elements() {
                if let Err(e) = core.release(element.partition(), consumer) {
                    core.failure.get_or_insert(e);
                }
            }
        }
    }
}

impl Core {
    /// Counts a refused message of `partition` and warns of the first ones.
    fn refuse(&mut self, refusal: Refusal, kind: Refused) {
        let report = self.report.partitions.entry(refusal.partition).or_default();
        match kind {
            Refused::Control => report.refused_controls += 1,
            Refused::Checkpoint => report.refused_checkpoints += 1,
            Refused::Event => report.refused_events += 1,
        }
        let shown = refusal.to_string();
        if self.report.refusals.push(refusal) {
            eprintln!("trailguard: warning: refused {shown}");
        } else if self.report.refusals.total == Refusals::KEPT as u64 + 1 {
            eprintln!("trailguard: warning: more refused messages: counted only");
        }
    }

    /// Creates the engine of `partition` on first use, restored from its
    /// newest checkpoint that is authentic and sane.
    fn ensure_owned(&mut self, partition: i32) -> Result<(), Error> {
        if self.owned.contains_key(&partition) {
            return Ok(());
        }
        let started = Instant::now();
        let mut engine = Engine::new(&self.runtime, &self.rules, self.engine_options.clone())?;
        // Before the checkpoint: a saved offset was at most this then.
        let (_, high) = self.store.input_offsets(partition)?;
        let topic = &self.options.topic;
        let restored = self.store.load(partition, |bytes| {
            let saved = PartitionCheckpoint::decode(bytes)?;
            saved.check_offset(topic, partition, high)?;
            Ok(saved)
        })?;
        for refusal in restored.refusals {
            self.refuse(refusal, Refused::Checkpoint);
        }
        let report = self.report.partitions.entry(partition).or_default();
        let (mut next_offset, mut last_control_sequence) = (None, None);
        if let Some((saved, bytes)) = restored.checkpoint {
            engine.load_state(saved.engine)?;
            next_offset = Some(saved.next_offset);
            last_control_sequence = saved.last_control_sequence;
            report.restores += 1;
            report.restore_bytes = bytes as u64;
            report.restore_ms = started.elapsed().as_millis() as u64;
        }
        self.owned.insert(
            partition,
            Owned {
                engine,
                just_restored: next_offset.is_some(),
                next_offset,
                last_control_sequence,
                since_checkpoint: 0,
                checkpointed_at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Processes one message.
    fn handle(&mut self, message: &BorrowedMessage<'_>) -> Result<Next, Error> {
        let partition = message.partition();
        let offset = message.offset();
        let (every, interval) = (
            self.options.checkpoint_events,
            self.options.checkpoint_interval,
        );
        self.ensure_owned(partition)?;
        let Some(owned) = self.owned.get_mut(&partition) else {
            return Err(Error::State {
                partition,
                message: "its engine vanished".into(),
            });
        };
        if let Some(next) = owned.next_offset {
            if offset < next {
                // Already in the restored state.
                return Ok(Next::Continue);
            }
            if offset > next && owned.just_restored {
                // The committed offset ran ahead of the newest checkpoint:
                // go back to where the state ends.
                owned.just_restored = false;
                return Ok(Next::SeekBack(next));
            }
        }
        owned.just_restored = false;
        let header = |name: &str| -> Option<&[u8]> {
            message
                .headers()?
                .iter()
                .find(|h| h.key == name)
                .map(|h| h.value.unwrap_or_default())
        };
        let control = header(CONTROL_HEADER);
        let payload = message.payload().unwrap_or_default();
        let mut rejected = false;
        let mut refused = None;
        let alerts = match control {
            Some(kind) => {
                let check = ControlCheck {
                    auth: &self.options.auth,
                    topic: &self.options.topic,
                    partition,
                    last_sequence: owned.last_control_sequence,
                    now_ms: now_ms(),
                    max_ahead_ms: i64::try_from(self.options.max_progress_ahead.as_millis())
                        .unwrap_or(i64::MAX),
                };
                let read = ControlMessage {
                    kind,
                    sequence: header(SEQUENCE_HEADER),
                    mac: header(MAC_HEADER),
                    payload,
                };
                match check.verify(&read) {
                    Ok((control, sequence)) => {
                        if sequence.is_some() {
                            owned.last_control_sequence = sequence;
                        }
                        match control {
                            Control::Progress(ms) => owned.engine.note_progress(ms),
                            Control::End => owned.engine.finish(),
                        }
                    }
                    Err(reason) => {
                        refused = Some(reason);
                        Vec::new()
                    }
                }
            }
            None => match NormalizedEvent::from_ecs_json(payload, owned.engine.record_paths()).ok()
            {
                Some(event) => {
                    let topic = &self.options.topic;
                    owned
                        .engine
                        .push_from(event, &|| format!("{topic}[{partition}] offset {offset}"))
                }
                None => {
                    rejected = true;
                    Vec::new()
                }
            },
        };
        let refused_events = owned.engine.take_refused();
        owned.next_offset = Some(offset + 1);
        owned.since_checkpoint += 1;
        let due = owned.since_checkpoint >= every || owned.checkpointed_at.elapsed() >= interval;
        let is_event = control.is_none();
        let report = self.report.partitions.entry(partition).or_default();
        if rejected {
            report.rejected += 1;
        } else if is_event {
            report.events += 1;
        }
        if let Some(reason) = refused {
            let refusal = Refusal {
                topic: self.options.topic.clone(),
                partition,
                offset,
                reason,
            };
            self.refuse(refusal, Refused::Control);
        }
        // Events the engine's time guard refused (dated past the clock, or
        // far ahead of the partition's stream), each naming its own offset.
        for event in refused_events {
            let refusal = Refusal {
                topic: self.options.topic.clone(),
                partition,
                offset,
                reason: format!("event refused: {event}"),
            };
            self.refuse(refusal, Refused::Event);
        }
        self.report.alerts += alerts.len() as u64;
        self.sink.write(&alerts).map_err(Error::Sink)?;
        if let Some(limit) = self.options.abort_after_events
            && self
                .report
                .partitions
                .values()
                .map(|p| p.events)
                .sum::<u64>()
                >= limit
        {
            std::process::abort();
        }
        Ok(if due {
            Next::Checkpoint
        } else {
            Next::Continue
        })
    }

    /// Checkpoints `partition`: state captured, alerts durable, state in
    /// Kafka, offset committed, in that order.
    fn checkpoint(
        &mut self,
        partition: i32,
        consumer: &BaseConsumer<WorkerContext>,
    ) -> Result<(), Error> {
        let Some(owned) = self.owned.get_mut(&partition) else {
            return Ok(());
        };
        let Some(next_offset) = owned.next_offset else {
            return Ok(());
        };
        let last_control_sequence = owned.last_control_sequence;
        let started = Instant::now();
        let (alerts, state) = owned.engine.checkpoint();
        self.report.alerts += alerts.len() as u64;
        self.sink.write(&alerts).map_err(Error::Sink)?;
        self.sink.flush().map_err(Error::Sink)?;
        let saved = PartitionCheckpoint {
            next_offset,
            last_control_sequence,
            engine: state,
        };
        let bytes = saved
            .encode()
            .map_err(|message| Error::State { partition, message })?;
        self.store.save(partition, &bytes)?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.options.topic, partition, Offset::Offset(next_offset))
            .context(|| format!("bad offset for {}[{partition}]", self.options.topic))?;
        consumer
            .commit(&offsets, CommitMode::Sync)
            .context(|| format!("cannot commit {}[{partition}]", self.options.topic))?;
        owned.since_checkpoint = 0;
        owned.checkpointed_at = Instant::now();
        let report = self.report.partitions.entry(partition).or_default();
        report.checkpoints += 1;
        report.checkpoint_bytes = bytes.len() as u64;
        report.checkpoint_ms += started.elapsed().as_millis() as u64;
        Ok(())
    }

    /// The partition goes elsewhere: checkpoint it and drop its engine.
    fn release(
        &mut self,
        partition: i32,
        consumer: &BaseConsumer<WorkerContext>,
    ) -> Result<(), Error> {
        let result = match self.owned.get(&partition) {
            Some(owned) if owned.since_checkpoint > 0 => self.checkpoint(partition, consumer),
            _ => Ok(()),
        };
        self.owned.remove(&partition);
        result
    }

    /// Checkpoints every partition whose interval has passed.
    fn tick(&mut self, consumer: &BaseConsumer<WorkerContext>) -> Result<(), Error> {
        let due: Vec<i32> = self
            .owned
            .iter()
            .filter(|(_, o)| {
                o.since_checkpoint > 0
                    && o.checkpointed_at.elapsed() >= self.options.checkpoint_interval
            })
            .map(|(p, _)| *p)
            .collect();
        for partition in due {
            self.checkpoint(partition, consumer)?;
        }
        Ok(())
    }
}

/// The wall clock, ms since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A member of a consumer group running every rule on its partitions.
pub struct Worker {
    consumer: BaseConsumer<WorkerContext>,
    started: Instant,
}

impl Worker {
    /// Connects, creates the state topic if needed, and joins the group.
    pub fn new(
        runtime: Arc<Runtime>,
        rules: Vec<CompiledRule>,
        engine_options: EngineOptions,
        options: WorkerOptions,
        sink: Box<dyn AlertSink>,
    ) -> Result<Worker, Error> {
        let timeout_ms = options.session_timeout.as_millis().max(1000);
        let config = ClientConfig::new()
            .set("bootstrap.servers", &options.brokers)
            .set("group.id", &options.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (timeout_ms / 4).max(250).to_string(),
            )
            // Large fetches: events are small and many.
            .set("max.partition.fetch.bytes", (8 << 20).to_string())
            .set("fetch.max.bytes", (64 << 20).to_string())
            .clone();
        let probe: BaseConsumer = config
            .create()
            .context(|| format!("cannot connect to Kafka at {}", options.brokers))?;
        let partitions = partition_count(probe.client(), &options.topic)?.ok_or_else(|| {
            Error::Setup(format!(
                "topic {} does not exist on {}: publish to it first (`trailguard publish --partitions N`)",
                options.topic, options.brokers
            ))
        })?;
        let state_partitions =
            ensure_topic(&options.brokers, &options.state_topic, partitions, &[])?;
        if state_partitions != partitions {
            return Err(Error::Setup(format!(
                "state topic {} has {state_partitions} partitions but {} has {partitions}: they must match (delete the state topic or name another with --state-topic)",
                options.state_topic, options.topic
            )));
        }
        let store = CheckpointStore::new(&options)?;
        let context = WorkerContext {
            core: Mutex::new(Core {
                runtime,
                rules,
                engine_options,
                options: options.clone(),
                store,
                sink,
                owned: BTreeMap::new(),
                report: WorkerReport::default(),
                failure: None,
            }),
        };
        let consumer: BaseConsumer<WorkerContext> = config
            .create_with_context(context)
            .context(|| format!("cannot connect to Kafka at {}", options.brokers))?;
        consumer
            .subscribe(&[&options.topic])
            .context(|| format!("cannot subscribe to {}", options.topic))?;
        Ok(Worker {
            consumer,
            started: Instant::now(),
        })
    }

    /// Consumes until `stop` is set, then checkpoints every owned partition
    /// and leaves the group.
    pub fn run(self, stop: &AtomicBool) -> Result<WorkerReport, Error> {
        let consumer = &self.consumer;
        while !stop.load(Ordering::Relaxed) {
            let polled = consumer.poll(Duration::from_millis(100));
            let mut core = consumer.context().lock();
            if let Some(e) = core.failure.take() {
                return Err(e);
            }
            match polled {
                None => core.tick(consumer)?,
                Some(Err(e)) => {
                    // Transient (a broker restarting, a rebalance): librdkafka
                    // retries; say so and go on.
                    eprintln!("trailguard: kafka: {e}");
                }
                Some(Ok(message)) => {
                    let partition = message.partition();
                    match core.handle(&message)? {
                        Next::Continue => {}
                        Next::Checkpoint => core.checkpoint(partition, consumer)?,
                        Next::SeekBack(back) => {
                            drop(message);
                            consumer
                                .seek(
                                    &core.options.topic,
                                    partition,
                                    Offset::Offset(back),
                                    Duration::from_secs(10),
                                )
                                .context(|| {
                                    format!(
                                        "cannot seek back to offset {back} of partition {partition}"
                                    )
                                })?;
                        }
                    }
                }
            }
        }
        let mut core = consumer.context().lock();
        let owned: Vec<i32> = core.owned.keys().copied().collect();
        for partition in owned {
            core.release(partition, consumer)?;
        }
        core.sink.flush().map_err(Error::Sink)?;
        let mut report = std::mem::take(&mut core.report);
        report.elapsed_seconds = self.started.elapsed().as_secs_f64();
        drop(core);
        consumer.unsubscribe();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use trailguard_host::RuntimeOptions;

    use super::*;
    use crate::{CheckpointScope, ChunkAssembler, ChunkHeaders};

    /// A real checkpoint: an engine (no rules, deduplication on) that saw
    /// a few events.
    fn checkpoint() -> PartitionCheckpoint {
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: None,
            ..RuntimeOptions::default()
        })
        .expect("a runtime");
        let mut engine = Engine::new(&runtime, &[], EngineOptions::default()).expect("an engine");
        for i in 0..20 {
            let mut event = NormalizedEvent::at(1_775_001_600_000 + i * 60_000);
            event.event_id = Some(format!("event-{i}").as_str().into());
            event.user_name = Some("ci".into());
            engine.push(event);
        }
        let (_, state) = engine.checkpoint();
        PartitionCheckpoint {
            next_offset: 20,
            last_control_sequence: Some(7),
            engine: state,
        }
    }

    #[test]
    fn a_checkpoint_decodes_to_itself_and_trailing_bytes_are_refused() {
        let saved = checkpoint();
        let bytes = saved.encode().expect("encodes");
        let back = PartitionCheckpoint::decode(&bytes).expect("decodes");
        // (The dedup set is a hash map: the same content, in another order.)
        assert_eq!(back.encode().expect("encodes").len(), bytes.len());
        assert_eq!(
            (back.next_offset, back.last_control_sequence),
            (20, Some(7))
        );
        let mut longer = bytes.clone();
        longer.push(0);
        let err = PartitionCheckpoint::decode(&longer).expect_err("trailing");
        assert!(err.contains("after its end"), "{err}");
        assert!(PartitionCheckpoint::decode(&[]).is_err());
    }

    /// A partition checkpoint written by the previous format (1, untagged;
    /// `tests/data/partition-checkpoint-format-1.bin`, the bytes
    /// [`checkpoint`] encoded to then) is read by this one.
    #[test]
    fn a_checkpoint_of_the_previous_format_is_read() {
        let old = include_bytes!("../tests/data/partition-checkpoint-format-1.bin");
        assert!(!old.starts_with(FORMAT_TAG));
        let back = PartitionCheckpoint::decode(old).expect("format 1 decodes");
        assert_eq!(
            (back.next_offset, back.last_control_sequence),
            (20, Some(7))
        );
        // All of it was read: re-encoded, it is the old bytes behind this
        // format's tag, as long as a checkpoint of the same engine today.
        let again = back.encode().expect("encodes");
        assert_eq!(again.len(), old.len() + 8);
        assert_eq!(checkpoint().encode().expect("encodes").len(), old.len() + 8);
        // And an engine takes it.
        let mut engine = Engine::new(
            &Runtime::new(RuntimeOptions {
                cache_dir: None,
                ..RuntimeOptions::default()
            })
            .expect("a runtime"),
            &[],
            EngineOptions::default(),
        )
        .expect("an engine");
        engine.load_state(back.engine).expect("restores");
        assert_eq!(&again[..4], FORMAT_TAG);
        assert_eq!(again[4..8], CHECKPOINT_FORMAT.to_le_bytes());
    }

    #[test]
    fn a_checkpoint_of_a_newer_format_is_refused_by_name() {
        let mut bytes = checkpoint().encode().expect("encodes");
        bytes[4..8].copy_from_slice(&(CHECKPOINT_FORMAT + 1).to_le_bytes());
        let err = PartitionCheckpoint::decode(&bytes).expect_err("newer");
        assert!(
            err.contains(&format!("format {}", CHECKPOINT_FORMAT + 1))
                && err.contains(&format!("formats 1 to {CHECKPOINT_FORMAT}")),
            "{err}"
        );
        assert!(PartitionCheckpoint::decode(b"TGCP\x02").is_err());
    }

    #[test]
    fn a_checkpoint_beyond_the_end_of_its_partition_is_refused() {
        let mut saved = checkpoint();
        for (next, high, ok) in [
            (20, 20, true),
            (0, 0, true),
            (20, 5_000, true),
            (21, 20, false),
            (i64::MAX, 20, false),
            (i64::MAX, i64::MAX - 1, false),
            (-1, 20, false),
            (i64::MIN, 20, false),
        ] {
            saved.next_offset = next;
            let result = saved.check_offset("ct", 4, high);
            assert_eq!(result.is_ok(), ok, "next {next}, high {high}: {result:?}");
            if let Err(e) = result {
                assert!(e.contains("ct[4]") && e.contains(&next.to_string()), "{e}");
            }
        }
    }

    /// xorshift64*: the same "random" bytes on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// What the fuzz target does, over truncated, mutated and random
    /// bytes: decoding and reassembly return an error or a value, never
    /// panic. (Run by CI; `fuzz/` explores further.)
    #[test]
    fn decoding_and_reassembly_are_total_on_hostile_bytes() {
        let bytes = checkpoint().encode().expect("encodes");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut decoded = 0;
        for cut in 0..bytes.len() {
            decoded += usize::from(PartitionCheckpoint::decode(&bytes[..cut]).is_ok());
        }
        assert_eq!(decoded, 0, "no strict prefix is a whole checkpoint");
        let scope = CheckpointScope {
            input_topic: "ct".into(),
            state_topic: "ct.trailguard-state".into(),
            group: "g".into(),
            partition: 0,
        };
        for round in 0..3_000 {
            let mut mutated = if round % 10 == 0 {
                (0..rng.below(4096)).map(|_| rng.next() as u8).collect()
            } else {
                bytes.clone()
            };
            for _ in 0..=rng.below(8) {
                let at = rng.below(mutated.len());
                match rng.below(4) {
                    0 if !mutated.is_empty() => mutated[at] = rng.next() as u8,
                    1 if !mutated.is_empty() => mutated[at] = 0xff,
                    2 => mutated.insert(at, rng.next() as u8),
                    _ => mutated.truncate(at),
                }
            }
            if let Ok(c) = PartitionCheckpoint::decode(&mutated) {
                // Whatever decodes must be checked before it is trusted.
                let _ = c.check_offset("ct", 0, 20);
            }
            let mut assembler = ChunkAssembler::new(Auth::Insecure, scope.clone(), 4096);
            let position = format!(
                "{}/{}",
                rng.below(3),
                rng.below(3) + rng.below(2) * 1_000_000
            );
            let headers = ChunkHeaders {
                checkpoint: Some(b"id"),
                chunk: Some(position.as_bytes()),
                mac: None,
            };
            if let Ok(Some(whole)) = assembler.push(&headers, &mutated) {
                assert!(whole.len() <= 4096);
                let _ = PartitionCheckpoint::decode(&whole);
            }
        }
    }
}
