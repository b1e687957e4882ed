//! The Kafka [`EventSink`]: an idempotent rdkafka producer with `acks=all`.
//!
//! Idempotence makes librdkafka's own retries safe (no duplicates, no reordering within a partition),
//! and `acks=all` means "acknowledged" is "on every in-sync replica", the condition for moving the
//! checkpoint. What the producer cannot retry within `message.timeout.ms` comes back as an error, and
//! the publishing loop retries it (a duplicate at worst, with the same CloudEvent id).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::envelope::OutgoingRecord;
use crate::sink::{EventSink, SinkError};

/// Producer settings the watcher insists on; `--kafka-property` may not change them.
const FIXED_PROPERTIES: [(&str, &str); 2] = [("enable.idempotence", "true"), ("acks", "all")];

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// The completion topic.
    pub topic: String,
    /// `message.timeout.ms`: how long librdkafka keeps retrying one record before giving it back.
    pub delivery_timeout: Duration,
    /// Further librdkafka properties (TLS, SASL); values may be secrets and are never logged.
    pub properties: Vec<(String, String)>,
}

/// A Kafka setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// A property would weaken delivery guarantees.
    #[error("the Kafka property {0} is fixed by the watcher (enable.idempotence=true, acks=all)")]
    FixedProperty(String),
    /// librdkafka refused the configuration.
    #[error("cannot create the Kafka producer")]
    Client(#[source] KafkaError),
}

impl KafkaSetupError {
    /// Configuration errors do not go away by retrying.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// Publishes to one topic.
#[derive(Clone)]
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    /// Creates the producer (no connection is made until the first record or metadata request).
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaSetupError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "spark-gateway-watcher")
            .set(
                "message.timeout.ms",
                settings.delivery_timeout.as_millis().to_string(),
            );
        for (key, value) in &settings.properties {
            if FIXED_PROPERTIES.iter().any(|(fixed, _)| fixed == key) {
                return Err(KafkaSetupError::FixedProperty(key.clone()));
            }
            config.set(key, value);
        }
        for (key, value) in FIXED_PROPERTIES {
            config.set(key, value);
        }
        let producer = config.create().map_err(KafkaSetupError::Client)?;
        Ok(Self {
            producer,
            topic: settings.topic.clone(),
        })
    }

    /// The topic events go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Asks the broker for the topic's metadata: the readiness check.
    pub async fn check_topic(&self, timeout: Duration) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let result = tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(Some(&topic), timeout)?;
            let known = metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if known {
                Ok(())
            } else {
                Err(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
                ))
            }
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled));
        result.map_err(|source| SinkError::Delivery {
            event_id: format!("metadata of {}", self.topic),
            source,
        })
    }
}

impl EventSink for KafkaSink {
    async fn publish(&self, record: &OutgoingRecord) -> Result<(), SinkError> {
        let headers =
            record
                .headers()
                .into_iter()
                .fold(OwnedHeaders::new(), |headers, (key, value)| {
                    headers.insert(Header {
                        key,
                        value: Some(value),
                    })
                });
        let kafka_record = FutureRecord::to(&self.topic)
            .key(&record.key)
            .payload(&record.payload)
            .headers(headers);
        // The local queue being full is back-pressure, not failure: wait for room as long as a
        // delivery may take.
        let queue_timeout = Timeout::After(Duration::from_secs(30));
        match self.producer.send(kafka_record, queue_timeout).await {
            Ok(_) => Ok(()),
            Err((source, _)) => Err(SinkError::Delivery {
                event_id: record.event_id.clone(),
                source,
            }),
        }
    }

    async fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
            .map_err(SinkError::Flush)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_guarantees_cannot_be_overridden() {
        let settings = KafkaSettings {
            bootstrap_servers: "127.0.0.1:1".into(),
            topic: "t".into(),
            delivery_timeout: Duration::from_secs(5),
            properties: vec![("acks".into(), "1".into())],
        };
        assert!(
            matches!(KafkaSink::new(&settings), Err(KafkaSetupError::FixedProperty(p)) if p == "acks")
        );
    }
}
