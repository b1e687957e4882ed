//! The Kafka [`EventSink`]: the Kafka adapter's idempotent producer (`acks=all`), whatever the
//! connection's security (TLS, SASL, MSK IAM: `spark_gateway_kafka`).
//!
//! Idempotence makes librdkafka's own retries safe (no duplicates, no reordering within a partition),
//! and `acks=all` means "acknowledged" is "on every in-sync replica", the condition for moving the
//! checkpoint. What the producer cannot retry within `message.timeout.ms` comes back as an error, and
//! the publishing loop retries it (a duplicate at worst, with the same CloudEvent id).

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use spark_gateway_kafka::{KafkaProducer, KafkaSetupError, ProducerProfile};

use crate::envelope::OutgoingRecord;
use crate::sink::{EventSink, SinkError};

/// Where events go and how long one may take.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// How to reach and authenticate to the brokers.
    pub connection: spark_gateway_kafka::KafkaSettings,
    /// The completion topic.
    pub topic: String,
    /// `message.timeout.ms`: how long librdkafka keeps retrying one record before giving it back.
    pub delivery_timeout: Duration,
}

/// Publishes to one topic.
#[derive(Clone)]
pub struct KafkaSink {
    producer: KafkaProducer,
    topic: String,
}

impl KafkaSink {
    /// Creates the producer (no connection is made until the first record or metadata request). MSK
    /// IAM tokens are signed with the AWS SDK's default credentials (the pod's web identity on EKS).
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaSetupError> {
        let producer = settings.connection.producer(
            "spark-gateway-watcher",
            ProducerProfile::Idempotent {
                delivery_timeout: settings.delivery_timeout,
            },
            None,
        )?;
        Ok(Self {
            producer,
            topic: settings.topic.clone(),
        })
    }

    /// The topic events go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Asks the broker for the topic's metadata: the readiness check. Wrong credentials or an
    /// untrusted certificate are named in the error.
    pub async fn check_topic(&self, timeout: Duration) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || producer.check_topic(&topic, timeout))
            .await
            .map_err(|_| SinkError::Unavailable("the metadata request was cancelled".into()))?
            .map_err(SinkError::Connect)
    }
}

impl EventSink for KafkaSink {
    async fn publish(&self, record: &OutgoingRecord) -> Result<(), SinkError> {
        let structured = &record.record;
        let kafka_record = FutureRecord::to(&self.topic)
            .key(&structured.key)
            .payload(&structured.payload)
            .headers(spark_gateway_kafka::headers(&structured.headers()));
        // The local queue being full is back-pressure, not failure: wait for room as long as a
        // delivery may take.
        let queue_timeout = Duration::from_secs(30);
        match self.producer.send(kafka_record, queue_timeout).await {
            Ok(_) => Ok(()),
            Err(source) => Err(SinkError::Delivery {
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
