//! Many messages at once: messages that share an ordering key (the application, or the Kafka partition)
//! run one after another in their original order; different keys run concurrently up to a bound. After a
//! message must be retried, later messages with its key are not attempted, so a delete can never overtake
//! the submit it follows.

use std::collections::BTreeMap;

use futures::StreamExt;

use crate::message::InboundMessage;
use crate::processor::{Operations, Outcome, Processor};
use crate::sinks::{DeadLetterSink, EventPublisher};

/// Outcome of a message not attempted because an earlier one with the same key must be retried first.
pub const HELD_BACK: &str = "an earlier message for the same application must be applied first";

/// Processes `messages`, returning one outcome per message in input order.
pub async fn process_batch<O, P, D>(
    processor: &Processor<O, P>,
    messages: &[InboundMessage],
    ordering_key: impl Fn(&InboundMessage) -> String,
    dead_letters: &D,
    max_concurrency: usize,
) -> Vec<Outcome>
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, message) in messages.iter().enumerate() {
        groups.entry(ordering_key(message)).or_default().push(index);
    }
    let results: Vec<Vec<(usize, Outcome)>> = futures::stream::iter(groups.into_values())
        .map(|indexes| async move {
            let mut outcomes = Vec::with_capacity(indexes.len());
            let mut blocked = false;
            for index in indexes {
                let outcome = if blocked {
                    Outcome::Retry(HELD_BACK.to_string())
                } else {
                    processor.process(&messages[index], dead_letters).await
                };
                blocked |= !outcome.is_final();
                outcomes.push((index, outcome));
            }
            outcomes
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await;
    let mut ordered: Vec<Option<Outcome>> = vec![None; messages.len()];
    for (index, outcome) in results.into_iter().flatten() {
        ordered[index] = Some(outcome);
    }
    ordered
        .into_iter()
        .map(|o| o.expect("every message has an outcome"))
        .collect()
}
