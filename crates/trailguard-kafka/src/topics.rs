//! Topic metadata and creation.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::Error;
use crate::error::Context;

/// How long metadata requests may take.
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Partitions of `topic`, or `None` if it does not exist.
pub(crate) fn partition_count<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
) -> Result<Option<i32>, Error> {
    // All topics: asking for one by name can make a broker create it.
    let metadata = client
        .fetch_metadata(None, METADATA_TIMEOUT)
        .context(|| format!("cannot read the metadata of topic {topic}"))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len() as i32))
}

/// Creates `topic` with `partitions` unless it exists; returns its
/// partition count.
pub(crate) fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    config: &[(&str, &str)],
) -> Result<i32, Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context(|| format!("cannot connect to Kafka at {brokers}"))?;
    if let Some(n) = partition_count(admin.inner(), topic)? {
        return Ok(n);
    }
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in config {
        new = new.set(key, value);
    }
    let results = futures_executor::block_on(admin.create_topics([&new], &AdminOptions::new()))
        .context(|| format!("cannot create topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::Setup(format!(
                    "cannot create topic {name} on {brokers}: {code}"
                )));
            }
        }
    }
    // Metadata can lag creation by a moment.
    for _ in 0..50 {
        if let Some(n) = partition_count(admin.inner(), topic)? {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Error::Setup(format!(
        "topic {topic} was created on {brokers} but does not show in its metadata"
    )))
}
