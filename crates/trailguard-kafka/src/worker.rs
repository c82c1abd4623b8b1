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

use crate::error::Context;
use crate::store::CheckpointStore;
use crate::topics::{ensure_topic, partition_count};
use crate::{CONTROL_END, CONTROL_HEADER, CONTROL_PROGRESS, Error};

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
}

impl WorkerOptions {
    /// A worker of `group` on `topic` at `brokers`, with the defaults.
    pub fn new(brokers: &str, topic: &str, group: &str) -> WorkerOptions {
        WorkerOptions {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            state_topic: crate::default_state_topic(topic),
            checkpoint_events: 50_000,
            checkpoint_interval: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
            abort_after_events: None,
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
}

/// What a worker did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerReport {
    /// Per input partition.
    pub partitions: BTreeMap<i32, PartitionReport>,
    /// Alerts written.
    pub alerts: u64,
    /// Seconds from start to stop.
    pub elapsed_seconds: f64,
}

/// What a checkpoint holds for one partition.
#[derive(Serialize, Deserialize)]
struct PartitionCheckpoint {
    /// The offset of the first message not in the state.
    next_offset: i64,
    engine: EngineState,
}

/// One owned partition.
struct Owned {
    engine: Engine,
    /// The first offset not in the state; `None` before the first message
    /// when there was no checkpoint (the state is empty: any offset fits).
    next_offset: Option<i64>,
    /// Restored, and no message handled yet.
    just_restored: bool,
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
    /// The engine of `partition`, restored from its checkpoint on first use.
    fn owned(&mut self, partition: i32) -> Result<&mut Owned, Error> {
        if !self.owned.contains_key(&partition) {
            let started = Instant::now();
            let mut engine = Engine::new(&self.runtime, &self.rules, self.engine_options.clone())?;
            let mut next_offset = None;
            let report = self.report.partitions.entry(partition).or_default();
            if let Some(bytes) = self.store.load(partition)? {
                let saved: PartitionCheckpoint =
                    postcard::from_bytes(&bytes).map_err(|e| Error::State {
                        partition,
                        message: format!("unreadable (another trailguard version?): {e}"),
                    })?;
                engine.load_state(saved.engine)?;
                next_offset = Some(saved.next_offset);
                report.restores += 1;
                report.restore_bytes = bytes.len() as u64;
                report.restore_ms = started.elapsed().as_millis() as u64;
            }
            self.owned.insert(
                partition,
                Owned {
                    engine,
                    just_restored: next_offset.is_some(),
                    next_offset,
                    since_checkpoint: 0,
                    checkpointed_at: Instant::now(),
                },
            );
        }
        self.owned.get_mut(&partition).ok_or_else(|| Error::State {
            partition,
            message: "vanished".into(),
        })
    }

    /// Processes one message.
    fn handle(&mut self, message: &BorrowedMessage<'_>) -> Result<Next, Error> {
        let partition = message.partition();
        let offset = message.offset();
        let (every, interval) = (
            self.options.checkpoint_events,
            self.options.checkpoint_interval,
        );
        let owned = self.owned(partition)?;
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
        let control = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == CONTROL_HEADER)
                .map(|h| h.value.unwrap_or_default().to_vec())
        });
        let payload = message.payload().unwrap_or_default();
        let mut rejected = false;
        let alerts = match control.as_deref() {
            Some(kind) if kind == CONTROL_PROGRESS.as_bytes() => {
                match std::str::from_utf8(payload)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok())
                {
                    Some(ms) if ms > i64::MIN => owned.engine.note_progress(ms),
                    _ => Vec::new(),
                }
            }
            Some(kind) if kind == CONTROL_END.as_bytes() => owned.engine.finish(),
            Some(_) => Vec::new(),
            None => match NormalizedEvent::from_ecs_json(payload).ok() {
                Some(event) => owned.engine.push(event),
                None => {
                    rejected = true;
                    Vec::new()
                }
            },
        };
        owned.next_offset = Some(offset + 1);
        owned.since_checkpoint += 1;
        let due = owned.since_checkpoint >= every || owned.checkpointed_at.elapsed() >= interval;
        let report = self.report.partitions.entry(partition).or_default();
        if rejected {
            report.rejected += 1;
        } else if control.is_none() {
            report.events += 1;
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
        let started = Instant::now();
        let (alerts, state) = owned.engine.checkpoint();
        self.report.alerts += alerts.len() as u64;
        self.sink.write(&alerts).map_err(Error::Sink)?;
        self.sink.flush().map_err(Error::Sink)?;
        let saved = PartitionCheckpoint {
            next_offset,
            engine: state,
        };
        let bytes = postcard::to_allocvec(&saved).map_err(|e| Error::State {
            partition,
            message: e.to_string(),
        })?;
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
        let store = CheckpointStore::new(&options.brokers, &options.state_topic, &options.group)?;
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
