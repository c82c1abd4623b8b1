//! `trailguard publish`: CloudTrail in, one keyed message per event out.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use trailguard_ingest::{IngestStats, Normalizer, ReadOptions, Resume, Source, read_sources};

use crate::error::Context;
use crate::topics::{METADATA_TIMEOUT, ensure_topic, partition_count};
use crate::{Auth, Control, Error, partition_key};

/// Where and how to publish.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PublishOptions {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic events go to.
    pub topic: String,
    /// Partitions to create the topic with if it does not exist (`None`:
    /// it must exist).
    pub create_partitions: Option<i32>,
    /// After the input, tell every partition the input has ended (so the
    /// workers run every remaining evaluation). Off when more input will
    /// be published later: then only the newest event time is sent.
    pub end_of_input: bool,
    /// How control messages are signed (the workers' key).
    pub auth: Auth,
}

impl PublishOptions {
    /// Publishing to `topic` on `brokers`, ending the input.
    pub fn new(brokers: &str, topic: &str, auth: Auth) -> PublishOptions {
        PublishOptions {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            create_partitions: None,
            end_of_input: true,
            auth,
        }
    }
}

/// What was published.
#[derive(Clone, Debug, Default)]
pub struct PublishReport {
    /// Events produced (and acknowledged).
    pub events: u64,
    /// Events per partition.
    pub per_partition: Vec<u64>,
    /// The newest event time published.
    pub newest_ms: Option<i64>,
    /// What reading the input counted (records, rejections, ...).
    pub ingest: IngestStats,
}

/// Outstanding deliveries are awaited in bunches of this many.
const IN_FLIGHT: usize = 20_000;

/// Reads `sources`, produces every event, then the control messages.
pub fn publish(
    options: &PublishOptions,
    sources: &[Source],
    normalizer: &Normalizer<'_>,
    read: &ReadOptions,
) -> Result<PublishReport, Error> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        // Java's partitioner (murmur2 of the key), so other producers agree.
        .set("partitioner", "murmur2_random")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .context(|| format!("cannot create a producer for {}", options.brokers))?;
    let partitions = match options.create_partitions {
        Some(n) => ensure_topic(&options.brokers, &options.topic, n, &[])?,
        None => partition_count(producer.client(), &options.topic)?.ok_or_else(|| {
            Error::Setup(format!(
                "topic {} does not exist on {}: create it (e.g. with 6 partitions) or pass --partitions N",
                options.topic, options.brokers
            ))
        })?,
    };
    let mut report = PublishReport {
        per_partition: vec![0; partitions as usize],
        ..PublishReport::default()
    };
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    let mut failed: Option<Error> = None;
    let ingest = read_sources(
        sources,
        normalizer,
        read,
        &Resume::default(),
        IngestStats::default(),
        &mut |_, events, _| {
            for event in events {
                let key = partition_key(&event);
                let payload = event.to_ecs().to_string();
                let mut record = FutureRecord::to(&options.topic)
                    .key(key.as_bytes())
                    .payload(payload.as_bytes())
                    .timestamp(event.timestamp_ms);
                loop {
                    match producer.send_result(record) {
                        Ok(future) => {
                            pending.push(future);
                            break;
                        }
                        Err((
                            rdkafka::error::KafkaError::MessageProduction(
                                RDKafkaErrorCode::QueueFull,
                            ),
                            back,
                        )) => {
                            // Wait for what is in flight, then try again.
                            if let Err(e) = settle(&mut pending, &mut report) {
                                failed.get_or_insert(e);
                                return false;
                            }
                            record = back;
                        }
                        Err((e, _)) => {
                            failed.get_or_insert(Error::Kafka {
                                context: format!("cannot produce to {}", options.topic),
                                source: e,
                            });
                            return false;
                        }
                    }
                }
                report.newest_ms = Some(
                    report
                        .newest_ms
                        .map_or(event.timestamp_ms, |n| n.max(event.timestamp_ms)),
                );
                if pending.len() >= IN_FLIGHT
                    && let Err(e) = settle(&mut pending, &mut report)
                {
                    failed.get_or_insert(e);
                    return false;
                }
            }
            true
        },
    );
    report.ingest = ingest;
    if let Some(e) = failed {
        return Err(e);
    }
    settle(&mut pending, &mut report)?;
    // Every partition learns how far event time went (never beyond this
    // clock: workers refuse a progress from the future), and that the input
    // ended: workers advance idle partitions and finish. The sequence is
    // this clock in microseconds, so it grows from one publish to the next.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let sequence = u64::try_from(now.as_micros()).unwrap_or(u64::MAX - 1);
    let mut controls = Vec::new();
    if let Some(newest) = report.newest_ms {
        controls.push(Control::Progress(newest.min(now_ms)));
    }
    if options.end_of_input {
        controls.push(Control::End);
    }
    for partition in 0..partitions {
        for (control, sequence) in controls.iter().zip(sequence..) {
            let (headers, payload) =
                control.encode(&options.auth, &options.topic, partition, sequence);
            let record = FutureRecord::<(), _>::to(&options.topic)
                .partition(partition)
                .payload(&payload)
                .headers(headers);
            let future = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .context(|| format!("cannot produce to {}", options.topic))?;
            futures_executor::block_on(future)
                .map_err(|_| Error::Setup("the producer went away".into()))?
                .map_err(|(e, _)| e)
                .context(|| {
                    format!(
                        "control message to {}[{partition}] not delivered",
                        options.topic
                    )
                })?;
        }
    }
    producer
        .flush(METADATA_TIMEOUT)
        .context(|| format!("cannot flush the producer for {}", options.topic))?;
    Ok(report)
}

/// Waits for every outstanding delivery; counts them per partition.
fn settle(pending: &mut Vec<DeliveryFuture>, report: &mut PublishReport) -> Result<(), Error> {
    for future in pending.drain(..) {
        let delivery = futures_executor::block_on(future)
            .map_err(|_| Error::Setup("the producer went away before a delivery report".into()))?
            .map_err(|(e, _)| e)
            .context(|| "an event was not delivered".to_owned())?;
        report.events += 1;
        if let Some(n) = report.per_partition.get_mut(delivery.partition as usize) {
            *n += 1;
        }
    }
    Ok(())
}
