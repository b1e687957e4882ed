//! SQS long polling with the request handlers.

use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use spark_gateway_events::MessageOrigin;
use spark_gateway_handlers::batch::BatchRunner;
use spark_gateway_handlers::sinks::{DeadLetterSink, EventPublisher};
use spark_gateway_handlers::sqs::{SQS_BATCH_LIMIT, SqsError, SqsQueue};
use spark_gateway_handlers::{InboundMessage, Operations, Processor};
use tokio::sync::watch;

use crate::backoff;

/// Where and how to poll.
#[derive(Debug, Clone)]
pub struct SqsSource {
    /// The request queue.
    pub queue: SqsQueue,
    /// Long-poll wait, seconds (at most 20).
    pub wait_seconds: i32,
    /// How long a received message stays invisible; extended while it is processed.
    pub visibility_timeout: Duration,
    /// Applications processed at once.
    pub max_concurrency: usize,
}

fn inbound(queue_url: &str, message: &Message) -> InboundMessage {
    InboundMessage {
        body: message.body.clone().unwrap_or_default().into_bytes(),
        origin: MessageOrigin::Sqs {
            queue: queue_url.to_string(),
            message_id: message.message_id.clone().unwrap_or_default(),
        },
        key: None,
        delivery_count: message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok()),
    }
}

/// Polls until `shutdown` turns true, then finishes the batch in hand. Returns how many messages were
/// completed (applied or rejected).
///
/// Batches are processed one after another, in the order they were received, so one application's
/// messages in consecutive batches keep their order; what need not wait does not: the next batch is
/// received while this one is processed, and a settled batch is deleted while the next one is processed.
pub async fn run<O, P, D>(
    source: &SqsSource,
    processor: &Processor<O, P>,
    dead_letters: &D,
    mut shutdown: watch::Receiver<bool>,
) -> Result<u64, SqsError>
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let mut completed = 0;
    let mut in_hand: Option<Vec<Message>> = None;
    let mut settling: Option<tokio::task::JoinHandle<Result<u64, SqsError>>> = None;
    loop {
        let messages = match in_hand.take() {
            Some(messages) => messages,
            None if *shutdown.borrow() => break,
            None => match receive(source, &mut shutdown).await? {
                Some(messages) => messages,
                None => break,
            },
        };
        if messages.is_empty() {
            continue;
        }
        let mut next_shutdown = shutdown.clone();
        let prefetch = async {
            if *next_shutdown.borrow() {
                return Ok(None);
            }
            receive(source, &mut next_shutdown).await
        };
        let previous = settling.take();
        let work = async move {
            let outcomes = settle(source, processor, dead_letters, &messages).await;
            // Deleted as soon as it is settled, not after the next long poll; one batch's deletes in
            // flight at a time (the previous batch's finish first).
            let done = match previous {
                Some(previous) => joined(previous).await?,
                None => 0,
            };
            Ok::<_, SqsError>((
                done,
                tokio::spawn(finish(source.clone(), messages, outcomes)),
            ))
        };
        let (work, next) = tokio::join!(work, prefetch);
        let (done, finishing) = work?;
        completed += done;
        settling = Some(finishing);
        in_hand = next?;
    }
    if let Some(previous) = settling {
        completed += joined(previous).await?;
    }
    Ok(completed)
}

async fn joined(
    finishing: tokio::task::JoinHandle<Result<u64, SqsError>>,
) -> Result<u64, SqsError> {
    // The task only fails by panicking inside the delete calls.
    finishing.await.map_err(|error| SqsError {
        operation: "DeleteMessageBatch",
        code: None,
        source: error.into(),
    })?
}

/// Short polls that top up a full long poll.
const TOP_UPS: usize = 4;

/// One long poll, topped up by [`TOP_UPS`] short polls at once when it came back full, so one batch of
/// work holds up to 50 messages: a receive costs about as long as processing a few messages, and the
/// next batch is received while this one is processed, so a batch must hold enough work to cover it.
/// `None` when `shutdown` turned true first.
async fn receive(
    source: &SqsSource,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Vec<Message>>, SqsError> {
    let mut messages = tokio::select! {
        received = receive_once(source, source.wait_seconds) => received?,
        _ = shutdown.changed() => return Ok(None),
    };
    if messages.len() == SQS_BATCH_LIMIT {
        let top_ups = (0..TOP_UPS).map(|_| receive_once(source, 0));
        for top_up in futures::future::join_all(top_ups).await {
            match top_up {
                Ok(more) => messages.extend(more),
                // A failed top-up only makes this batch smaller.
                Err(error) => tracing::debug!(%error, "SQS top-up receive failed"),
            }
        }
    }
    Ok(Some(messages))
}

async fn receive_once(source: &SqsSource, wait_seconds: i32) -> Result<Vec<Message>, SqsError> {
    source
        .queue
        .receive(wait_seconds, source.visibility_timeout)
        .await
}

/// Sets the visibility of each message; a failure only logs (the message then comes back when its
/// current visibility ends).
async fn change_visibility(
    source: &SqsSource,
    receipts: Vec<(&str, Duration)>,
    purpose: &'static str,
) {
    if let Err(error) = source.queue.change_visibility(&receipts).await {
        tracing::warn!(error = %spark_gateway_core::error_chain(&error), purpose, "could not change message visibility");
    }
}

fn receipt(message: &Message) -> &str {
    message.receipt_handle.as_deref().unwrap_or_default()
}

/// Each message's outcome, its batch kept invisible meanwhile.
async fn settle<O, P, D>(
    source: &SqsSource,
    processor: &Processor<O, P>,
    dead_letters: &D,
    messages: &[Message],
) -> Vec<(u32, bool)>
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let inbound: Vec<InboundMessage> = messages
        .iter()
        .map(|m| inbound(source.queue.url(), m))
        .collect();
    let runner = BatchRunner {
        processor,
        dead_letters,
        max_concurrency: source.max_concurrency,
    };
    let work = runner.process_batch(&inbound, InboundMessage::ordering_key);
    let mut work = std::pin::pin!(work);
    // Keep the batch invisible while it is processed: a slow cluster must not let a second consumer pick
    // up the same messages.
    let mut heartbeat = tokio::time::interval(source.visibility_timeout / 2);
    heartbeat.tick().await;
    let outcomes = loop {
        tokio::select! {
            outcomes = &mut work => break outcomes,
            _ = heartbeat.tick() => {
                let receipts = messages.iter().map(|m| (receipt(m), source.visibility_timeout));
                change_visibility(source, receipts.collect(), "extend while in flight").await;
            }
        }
    };
    inbound
        .iter()
        .zip(&outcomes)
        .map(|(inbound, outcome)| (inbound.delivery_count.unwrap_or(1), outcome.is_final()))
        .collect()
}

/// Deletes the batch's final messages and schedules its retries; returns how many were final.
async fn finish(
    source: SqsSource,
    messages: Vec<Message>,
    outcomes: Vec<(u32, bool)>,
) -> Result<u64, SqsError> {
    let finished: Vec<&str> = messages
        .iter()
        .zip(&outcomes)
        .filter(|(_, (_, is_final))| *is_final)
        .map(|(message, _)| receipt(message))
        .collect();
    let completed = finished.len() as u64;
    source.queue.delete(&finished).await?;
    // Retries come back after a back-off that grows with their delivery count, not after the full
    // visibility timeout.
    let retries: Vec<(&str, Duration)> = messages
        .iter()
        .zip(&outcomes)
        .filter(|(_, (_, is_final))| !*is_final)
        .map(|(message, (deliveries, _))| (receipt(message), backoff(*deliveries)))
        .collect();
    change_visibility(&source, retries, "schedule retries").await;
    Ok(completed)
}
