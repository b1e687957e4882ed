//! Per-test Kafka topics on the local broker (Tansu), and a reader that waits for the records a test
//! expects.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureRecord;
use spark_gateway_kafka::{KafkaContext, KafkaProducer, KafkaSettings, ProducerProfile};
use tokio::time::Instant;

use crate::names::unique_name;

/// A record as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The key, as text.
    pub key: Option<String>,
    /// The value, as text.
    pub value: String,
    /// Headers as `(name, value)` text pairs.
    pub headers: Vec<(String, String)>,
}

impl Record {
    fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), text(h.value).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: text(message.key()),
            value: text(message.payload()).unwrap_or_default(),
            headers,
        }
    }

    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Creates a topic named `<prefix>-<random>` on the plaintext broker at `bootstrap`.
pub async fn create_topic(bootstrap: &str, prefix: &str, partitions: i32) -> Result<String> {
    create_topic_with(&KafkaSettings::plaintext(bootstrap), prefix, partitions).await
}

/// Creates a topic named `<prefix>-<random>` and returns its name.
pub async fn create_topic_with(
    settings: &KafkaSettings,
    prefix: &str,
    partitions: i32,
) -> Result<String> {
    let name = unique_name(prefix);
    let admin: AdminClient<KafkaContext> = settings
        .create(&settings.client_config("test-admin"), "admin client", None)
        .context("creating a Kafka admin client")?;
    let results = admin
        .create_topics(
            &[NewTopic::new(&name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .context("creating a Kafka topic")?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic} failed: {code}");
        }
    }
    Ok(name)
}

/// An idempotent producer (acks=all) for the plaintext broker at `bootstrap`.
pub fn producer(bootstrap: &str) -> Result<KafkaProducer> {
    producer_with(&KafkaSettings::plaintext(bootstrap))
}

/// An idempotent producer (acks=all), the watcher's profile.
pub fn producer_with(settings: &KafkaSettings) -> Result<KafkaProducer> {
    let mut settings = settings.clone();
    // Tests send oversized requests on purpose: the gateway's bound is what they check, not the client's.
    settings
        .properties
        .push(("message.max.bytes".into(), "4000000".into()));
    settings
        .producer(
            "test-producer",
            ProducerProfile::Idempotent {
                delivery_timeout: Duration::from_secs(10),
            },
            None,
        )
        .context("creating a Kafka producer")
}

/// Sends one record and waits for the broker's acknowledgement.
pub async fn produce(
    producer: &KafkaProducer,
    topic: &str,
    key: &str,
    value: &str,
) -> Result<(i32, i64)> {
    let delivery = producer
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(10),
        )
        .await
        .map_err(|error| producer.explain(error))
        .context("producing a Kafka record")?;
    Ok((delivery.partition, delivery.offset))
}

/// Reads a topic from the beginning in a group of its own.
pub struct TopicReader {
    consumer: StreamConsumer<KafkaContext>,
}

impl TopicReader {
    /// Subscribes to `topic` on the plaintext broker at `bootstrap` from its earliest offset.
    pub fn new(bootstrap: &str, topic: &str) -> Result<Self> {
        Self::with_settings(&KafkaSettings::plaintext(bootstrap), topic)
    }

    /// Subscribes to `topic` from its earliest offset.
    pub fn with_settings(settings: &KafkaSettings, topic: &str) -> Result<Self> {
        let mut config = settings.client_config("test-reader");
        config
            .set("group.id", unique_name("test-reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        let consumer: StreamConsumer<KafkaContext> = settings
            .create(&config, "consumer", None)
            .context("creating a Kafka consumer")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        Ok(Self { consumer })
    }

    /// Every record that arrives within `window` (for asserting that something did *not* arrive: give
    /// the producer side time to have sent it first).
    pub async fn read_for(&self, window: Duration) -> Vec<Record> {
        let deadline = Instant::now() + window;
        let mut records = Vec::new();
        while let Some(remaining) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(Ok(message)) = tokio::time::timeout(remaining, self.consumer.recv()).await {
                records.push(Record::from_message(&message));
            }
        }
        records
    }

    /// Reads records until `done` says the collected ones suffice, or fails after `timeout` listing what
    /// arrived.
    pub async fn read_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Record]) -> bool,
    ) -> Result<Vec<Record>> {
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        while !done(&records) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                // Values are cut: a test of large records would otherwise print megabytes.
                let shown: Vec<String> = records
                    .iter()
                    .map(|r| {
                        let value: String = r.value.chars().take(300).collect();
                        format!("{}/{} key {:?}: {value}", r.partition, r.offset, r.key)
                    })
                    .collect();
                bail!(
                    "timed out after {timeout:?}; {} records arrived: {shown:#?}",
                    records.len()
                );
            }
            match tokio::time::timeout(remaining, self.consumer.recv()).await {
                Ok(Ok(message)) => records.push(Record::from_message(&message)),
                Ok(Err(error)) => tracing::debug!(%error, "kafka consumer error (retrying)"),
                Err(_) => continue,
            }
        }
        Ok(records)
    }
}
