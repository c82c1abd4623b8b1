//! Errors of the Kafka side.

use trailguard_host::HostError;

/// What went wrong, with what it concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kafka operation failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done (brokers, topic, partition).
        context: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Loading or running rules failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A checkpoint could not be read or written.
    #[error("checkpoint of partition {partition}: {message}")]
    State {
        /// Input partition.
        partition: i32,
        /// What is wrong.
        message: String,
    },
    /// Alerts could not be written.
    #[error("cannot write alerts: {0}")]
    Sink(String),
    /// Something about the topics or options is wrong.
    #[error("{0}")]
    Setup(String),
}

/// Adds context to a Kafka result.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, rdkafka::error::KafkaError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Kafka {
            context: what(),
            source,
        })
    }
}
