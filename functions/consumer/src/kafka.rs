//! A Kafka consumer group with the request handlers.
//!
//! Replays (after a crash or a rebalance the group re-reads what it had not committed) never undo a
//! later request: the group's committed offset is the replay ledger (see
//! `spark_gateway_handlers::replay`), committed synchronously before a record whose application an
//! earlier uncommitted record changed, and when a record first fails transiently.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use spark_gateway_events::MessageOrigin;
use spark_gateway_handlers::replay::{LedgerError, Partition, PositionLedger, ReplayGuard, Step};
use spark_gateway_handlers::sinks::{DeadLetterSink, EventPublisher};
use spark_gateway_handlers::{InboundMessage, Operations, Processor};
use spark_gateway_kafka::{
    KafkaConsumer, KafkaSettings, KafkaSetupError, SharedCredentialsProvider,
};
use tokio::sync::watch;

use crate::backoff;

/// A member of `group` subscribed to `topic`, built by the Kafka adapter (offsets stored only when told,
/// see [`KafkaSettings::consumer`]).
pub fn consumer(
    settings: &KafkaSettings,
    group: &str,
    topic: &str,
    aws_credentials: Option<SharedCredentialsProvider>,
) -> Result<KafkaConsumer, KafkaSetupError> {
    let consumer = settings.consumer("spark-gateway-consumer", group, aws_credentials)?;
    consumer
        .subscribe(&[topic])
        .map_err(|source| KafkaSetupError::Client {
            role: "consumer subscription",
            source,
        })?;
    Ok(consumer)
}

/// The consumer group's committed offsets as the replay ledger: a replay starts right after them, so
/// nothing before is ever read again and there is nothing to look up.
pub struct GroupCommits<'a, C: ConsumerContext + 'static>(pub &'a StreamConsumer<C>);

impl<C: ConsumerContext + 'static> PositionLedger for GroupCommits<'_, C> {
    async fn done_through(&self, _: &Partition) -> Result<Option<i64>, LedgerError> {
        Ok(None)
    }

    async fn record(&self, partition: &Partition, offset: i64) -> Result<(), LedgerError> {
        let error = |source| LedgerError::Commit {
            topic: partition.topic.clone(),
            partition: partition.partition,
            offset,
            source,
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            &partition.topic,
            partition.partition,
            Offset::Offset(offset + 1),
        )
        .map_err(error)?;
        self.0.commit(&list, CommitMode::Sync).map_err(error)
    }
}

/// Consumes until `shutdown` turns true. Records are handled one at a time in arrival order, which keeps
/// every partition's order; a transient failure is retried in place (back-off 1 s, 2 s, 4 s, ...) until
/// the processor turns it into a final rejection at its last delivery, and its offset is stored only
/// then. Returns how many records were completed.
pub async fn run<C, O, P, D>(
    consumer: &StreamConsumer<C>,
    processor: &Processor<O, P>,
    dead_letters: &D,
    max_deliveries: u32,
    mut shutdown: watch::Receiver<bool>,
) -> u64
where
    C: ConsumerContext + 'static,
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let ledger = GroupCommits(consumer);
    let mut guards: HashMap<Partition, ReplayGuard> = HashMap::new();
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
        let partition = Partition {
            topic: message.topic().to_string(),
            partition: message.partition(),
        };
        let application = inbound.ordering_key();
        let guard = guards.entry(partition.clone()).or_default();
        if let Step::RecordThenApply { through } = guard.next(message.offset(), &application) {
            let mut attempt = 0;
            while let Err(error) = ledger.record(&partition, through).await {
                attempt += 1;
                tracing::warn!(%error, attempt, "cannot commit finished records; a later request for their application waits");
                if *shutdown.borrow() {
                    return completed;
                }
                tokio::time::sleep(backoff(attempt.min(max_deliveries.max(1)))).await;
            }
            guard.recorded(through);
        }
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
            if attempt == 1
                && let Some(through) = guard.unrecorded_done()
            {
                // A crash while this record is retried then replays from it, not from what is done.
                match ledger.record(&partition, through).await {
                    Ok(()) => guard.recorded(through),
                    Err(error) => tracing::debug!(%error, "commit before retrying"),
                }
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
        guard.completed(message.offset(), &application, true);
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
