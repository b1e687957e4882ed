//! `--notify`: the notifier as a member of a consumer group on the completion topic.
//!
//! Up to `concurrency` records are delivered at once, and their offsets are stored in the order the
//! records arrived, each only once its deliveries are done (or dead-lettered): a crash replays from
//! the first unfinished record, so every target gets every event at least once. With concurrency
//! above 1 two events of one application may reach a target out of order; each carries its
//! `attempt` and `history_index`, and 1 keeps the topic's order.

use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use spark_gateway_notify::{Channels, Notifier, NotifyDeadLetters};
use tokio::sync::watch;

use crate::backoff;

/// What became of the records handled until shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifySummary {
    /// Records finished (their offsets stored).
    pub records: u64,
    /// Deliveries that reached their target.
    pub delivered: u64,
    /// Deliveries given up on and dead-lettered.
    pub dead_lettered: u64,
}

/// Delivers the completion topic's events until `shutdown` turns true.
pub async fn run<C, Ch, D>(
    consumer: &StreamConsumer<C>,
    notifier: &Notifier<Ch, D>,
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) -> NotifySummary
where
    C: ConsumerContext + 'static,
    Ch: Channels,
    D: NotifyDeadLetters,
{
    let mut shutdown_changes = shutdown.clone();
    let mut in_flight: FuturesOrdered<BoxFuture<'_, Finished>> = FuturesOrdered::new();
    let mut stopping = *shutdown.borrow();
    let mut summary = NotifySummary::default();
    loop {
        tokio::select! {
            // Finished records first, so offsets are stored as soon as they can be.
            biased;
            Some((topic, partition, offset, handled)) = in_flight.next(), if !in_flight.is_empty() => {
                // Unfinished at shutdown: not stored, so the next member reads it again; what
                // arrived after it is not stored either (the futures complete in arrival order).
                let Some(handled) = handled else { break };
                summary.records += 1;
                summary.delivered += handled.delivered as u64;
                summary.dead_lettered += handled.dead_lettered as u64;
                if let Err(error) = consumer.store_offset(&topic, partition, offset) {
                    tracing::warn!(%error, "could not store the offset; the record may be delivered again");
                }
            }
            message = consumer.recv(), if !stopping && in_flight.len() < concurrency.max(1) => {
                match message {
                    Ok(message) => {
                        let (topic, partition, offset) =
                            (message.topic().to_string(), message.partition(), message.offset());
                        let body = message.payload().unwrap_or_default().to_vec();
                        let shutdown = shutdown.clone();
                        in_flight.push_back(Box::pin(async move {
                            let handled = deliver(notifier, &body, shutdown).await;
                            (topic, partition, offset, handled)
                        }));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Kafka consumer error");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            _ = shutdown_changes.changed(), if !stopping => {
                stopping = *shutdown_changes.borrow();
            }
            else => break,
        }
        if stopping && in_flight.is_empty() {
            break;
        }
    }
    drop(in_flight);
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(%error, "final offset commit");
    }
    summary
}

/// A record's place and what became of it (`None`: unfinished at shutdown).
type Finished = (String, i32, i64, Option<spark_gateway_notify::Handled>);

/// One record's deliveries, retried while its dead-letter copy cannot be stored (an outage of the
/// dead-letter queue); `None` when shutdown comes first.
async fn deliver<Ch: Channels, D: NotifyDeadLetters>(
    notifier: &Notifier<Ch, D>,
    body: &[u8],
    shutdown: watch::Receiver<bool>,
) -> Option<spark_gateway_notify::Handled> {
    let mut attempt = 0;
    loop {
        match notifier.handle(body).await {
            Ok(handled) => return Some(handled),
            Err(error) => {
                attempt += 1;
                tracing::warn!(error = %spark_gateway_core::error_chain(&error), attempt, "event kept for another try");
                if *shutdown.borrow() {
                    return None;
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}
