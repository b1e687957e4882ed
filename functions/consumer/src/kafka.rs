//! A Kafka consumer group with the request handlers.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use spark_gateway_events::MessageOrigin;
use spark_gateway_handlers::sinks::{DeadLetterSink, EventPublisher};
use spark_gateway_handlers::{InboundMessage, Operations, Processor};
use tokio::sync::watch;

use crate::backoff;

/// A consumer that stores offsets only when told: `enable.auto.offset.store=false` with auto-commit of
/// stored offsets, so a crash replays at most the records whose outcome was not final.
pub fn consumer(
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Consumes until `shutdown` turns true. Records are handled one at a time in arrival order, which keeps
/// every partition's order; a transient failure is retried in place (back-off 1 s, 2 s, 4 s, ...) until
/// the processor turns it into a final rejection at its last delivery, and its offset is stored only
/// then. Returns how many records were completed.
pub async fn run<O, P, D>(
    consumer: &StreamConsumer,
    processor: &Processor<O, P>,
    dead_letters: &D,
    max_deliveries: u32,
    mut shutdown: watch::Receiver<bool>,
) -> u64
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let mut completed = 0;
    while !*shutdown.borrow() {
        let message = tokio::select! {
            message = consumer.recv() => message,
            _ = shutdown.changed() => break,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "Kafka consumer error");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut inbound = InboundMessage {
            body: message.payload().unwrap_or_default().to_vec(),
            key: message.key().map(<[u8]>::to_vec),
            origin: MessageOrigin::Kafka {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
            },
            delivery_count: Some(1),
        };
        // Until its outcome is final the record is not passed: by the last delivery every request has
        // one (a rejection is dead-lettered even when its event cannot be published), so only an outage
        // of the dead-letter topic itself keeps it here, retried at the longest back-off, offset unstored.
        let mut attempt = 0;
        loop {
            attempt += 1;
            inbound.delivery_count = Some(attempt.min(max_deliveries.max(1)));
            if processor.process(&inbound, dead_letters).await.is_final() {
                break;
            }
            if *shutdown.borrow() {
                tracing::warn!(
                    attempt,
                    "shutting down with a record unfinished; it will be read again"
                );
                return completed;
            }
            tokio::time::sleep(backoff(attempt.min(max_deliveries.max(1)))).await;
        }
        if let Err(error) = consumer.store_offset_from_message(&message) {
            tracing::warn!(%error, "could not store the offset; the record may be replayed");
        }
        completed += 1;
    }
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(%error, "final offset commit");
    }
    completed
}
