//! Many messages at once: messages that share an ordering key (the application, or the Kafka partition)
//! run one after another in their original order; different keys run concurrently up to a bound. After a
//! message must be retried, later messages with its key are not attempted, so a delete can never overtake
//! the submit it follows.
//!
//! Kafka records go through [`BatchRunner::process_partitions`] instead: the same per-partition order, with the
//! replay ledger consulted and kept (see [`crate::replay`]) so that a replayed batch never undoes what
//! a later record of it already did.

use std::collections::BTreeMap;

use futures::StreamExt;

use spark_gateway_events::MessageOrigin;

use spark_gateway_core::error_chain;

use crate::message::InboundMessage;
use crate::processor::{Operations, Outcome, Processor};
use crate::replay::{Partition, PositionLedger, ReplayGuard, Step};
use crate::sinks::{DeadLetterSink, EventPublisher};

/// Outcome of a message not attempted because an earlier one with the same key must be retried first.
pub const HELD_BACK: &str = "an earlier message for the same application must be applied first";

/// What every batch of one transport runs with: the processor, that transport's dead-letter
/// destination and the bound on messages in flight.
pub struct BatchRunner<'a, O, P, D> {
    /// Takes each message to its outcome.
    pub processor: &'a Processor<O, P>,
    /// Where refused messages of this transport are copied.
    pub dead_letters: &'a D,
    /// How many ordering keys (or partitions) run at once.
    pub max_concurrency: usize,
}

impl<O: Operations, P: EventPublisher, D: DeadLetterSink> BatchRunner<'_, O, P, D> {
    /// Processes `messages`, returning one outcome per message in input order.
    pub async fn process_batch(
        &self,
        messages: &[InboundMessage],
        ordering_key: impl Fn(&InboundMessage) -> String,
    ) -> Vec<Outcome> {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, message) in messages.iter().enumerate() {
            groups.entry(ordering_key(message)).or_default().push(index);
        }
        let results: Vec<Vec<(usize, Outcome)>> = futures::stream::iter(groups.into_values())
            .map(|indexes| self.in_order(messages, indexes))
            .buffer_unordered(self.max_concurrency.max(1))
            .collect()
            .await;
        in_input_order(results, messages.len())
    }

    /// Runs the messages at `indexes` one after another; after the first that must be retried, the
    /// rest are held back without being attempted.
    async fn in_order(
        &self,
        messages: &[InboundMessage],
        indexes: Vec<usize>,
    ) -> Vec<(usize, Outcome)> {
        let mut outcomes = Vec::with_capacity(indexes.len());
        let mut blocked = false;
        for index in indexes {
            let outcome = if blocked {
                Outcome::Retry(HELD_BACK.to_string())
            } else {
                self.processor
                    .process(&messages[index], self.dead_letters)
                    .await
            };
            blocked |= !outcome.is_final();
            outcomes.push((index, outcome));
        }
        outcomes
    }

    /// Processes Kafka records, returning one outcome per record in input order: partitions run
    /// concurrently (up to `max_concurrency`), each in offset order, stopping at its first record that must
    /// be retried. Each partition's ledger entry is read first (records it covers end as
    /// [`Outcome::Replayed`]); a record whose application an earlier record of the partition changed waits
    /// until that one is recorded; and when a partition must be retried, what it finished is recorded so the
    /// replay skips it. A ledger that cannot be read or written makes the records it guards retries: never
    /// applied without it.
    pub async fn process_partitions<L: PositionLedger>(
        &self,
        messages: &[InboundMessage],
        ledger: &L,
    ) -> Vec<Outcome> {
        let mut groups: BTreeMap<Option<Partition>, Vec<usize>> = BTreeMap::new();
        for (index, message) in messages.iter().enumerate() {
            groups
                .entry(kafka_position(message).map(|(p, _)| p))
                .or_default()
                .push(index);
        }
        let results: Vec<Vec<(usize, Outcome)>> = futures::stream::iter(groups)
            .map(|(partition, indexes)| async move {
                let Some(partition) = partition else {
                    // Not Kafka records: no positions to guard; order and hold-back as for any batch.
                    return self.in_order(messages, indexes).await;
                };
                self.process_partition(messages, &partition, indexes, ledger)
                    .await
            })
            .buffer_unordered(self.max_concurrency.max(1))
            .collect()
            .await;
        in_input_order(results, messages.len())
    }

    async fn process_partition<L: PositionLedger>(
        &self,
        messages: &[InboundMessage],
        partition: &Partition,
        indexes: Vec<usize>,
        ledger: &L,
    ) -> Vec<(usize, Outcome)> {
        let done_through = match ledger.done_through(partition).await {
            Ok(done) => done,
            Err(error) => {
                let reason = error_chain(&error);
                tracing::warn!(error = %reason, topic = partition.topic, partition = partition.partition,
                    "cannot read the replay ledger; the partition's records will be delivered again");
                return indexes
                    .into_iter()
                    .map(|i| (i, Outcome::Retry(reason.clone())))
                    .collect();
            }
        };
        let mut guard = ReplayGuard::new(done_through);
        let mut outcomes = Vec::with_capacity(indexes.len());
        for index in indexes {
            let message = &messages[index];
            let offset = kafka_position(message).map_or(0, |(_, offset)| offset);
            let application = message.ordering_key();
            let outcome = match guard.next(offset, &application) {
                Step::Skip => {
                    tracing::info!(origin = %message.origin.locator(),
                        "an earlier delivery already took this record to its outcome; not applied again");
                    outcomes.push((index, Outcome::Replayed));
                    continue;
                }
                Step::HoldBack => Outcome::Retry(HELD_BACK.to_string()),
                Step::Apply => self.processor.process(message, self.dead_letters).await,
                Step::RecordThenApply { through } => {
                    match ledger.record(partition, through).await {
                        Ok(()) => {
                            guard.recorded(through);
                            self.processor.process(message, self.dead_letters).await
                        }
                        Err(error) => {
                            let reason = error_chain(&error);
                            tracing::warn!(error = %reason, "cannot record finished records in the replay ledger; \
                            a later request for their application waits");
                            Outcome::Retry(reason)
                        }
                    }
                }
            };
            guard.completed(offset, &application, outcome.is_final());
            outcomes.push((index, outcome));
        }
        if let Some(through) = guard.to_record_before_replay() {
            // Without it the replay re-applies the finished records: harmless unless one of them is followed
            // by a later change of its application, which was recorded before that change was applied.
            if let Err(error) = ledger.record(partition, through).await {
                tracing::warn!(error = %error_chain(&error), "cannot record finished records before the replay; it will apply them again");
            }
        }
        outcomes
    }
}

/// The groups' `(index, outcome)` pairs as one outcome per message, in input order.
fn in_input_order(results: Vec<Vec<(usize, Outcome)>>, len: usize) -> Vec<Outcome> {
    let mut ordered: Vec<Option<Outcome>> = vec![None; len];
    for (index, outcome) in results.into_iter().flatten() {
        ordered[index] = Some(outcome);
    }
    ordered
        .into_iter()
        .map(|o| o.expect("every message has an outcome"))
        .collect()
}

fn kafka_position(message: &InboundMessage) -> Option<(Partition, i64)> {
    match &message.origin {
        MessageOrigin::Kafka {
            topic,
            partition,
            offset,
        } => Some((
            Partition {
                topic: topic.clone(),
                partition: *partition,
            },
            *offset,
        )),
        _ => None,
    }
}
