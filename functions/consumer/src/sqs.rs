//! SQS long polling with the request handlers.

use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use spark_gateway_events::MessageOrigin;
use spark_gateway_handlers::batch::process_batch;
use spark_gateway_handlers::sinks::{DeadLetterSink, EventPublisher};
use spark_gateway_handlers::{InboundMessage, Operations, Processor};
use tokio::sync::watch;

use crate::backoff;

/// Where and how to poll.
#[derive(Debug, Clone)]
pub struct SqsSource {
    /// The SQS client.
    pub client: aws_sdk_sqs::Client,
    /// The request queue.
    pub queue_url: String,
    /// Long-poll wait, seconds (at most 20).
    pub wait_seconds: i32,
    /// How long a received message stays invisible; extended while it is processed.
    pub visibility_timeout: Duration,
    /// Applications processed at once.
    pub max_concurrency: usize,
}

/// An SQS call failed.
#[derive(Debug, thiserror::Error)]
#[error("SQS {operation} failed: {detail}")]
pub struct SqsError {
    /// The call.
    pub operation: &'static str,
    /// Why.
    pub detail: String,
}

fn sqs_error<E: std::error::Error + 'static>(operation: &'static str) -> impl Fn(E) -> SqsError {
    move |error| SqsError {
        operation,
        detail: aws_sdk_sqs::error::DisplayErrorContext(&error).to_string(),
    }
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
    while !*shutdown.borrow() {
        let receive = source
            .client
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(source.wait_seconds)
            .visibility_timeout(source.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let received = tokio::select! {
            received = receive => received.map_err(sqs_error("ReceiveMessage"))?,
            _ = shutdown.changed() => break,
        };
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        completed += process(source, processor, dead_letters, &messages).await?;
    }
    Ok(completed)
}

async fn process<O, P, D>(
    source: &SqsSource,
    processor: &Processor<O, P>,
    dead_letters: &D,
    messages: &[Message],
) -> Result<u64, SqsError>
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let inbound: Vec<InboundMessage> = messages
        .iter()
        .map(|m| inbound(&source.queue_url, m))
        .collect();
    let work = process_batch(
        processor,
        &inbound,
        InboundMessage::ordering_key,
        dead_letters,
        source.max_concurrency,
    );
    let mut work = std::pin::pin!(work);
    // Keep the batch invisible while it is processed: a slow cluster must not let a second consumer pick
    // up the same messages.
    let mut heartbeat = tokio::time::interval(source.visibility_timeout / 2);
    heartbeat.tick().await;
    let outcomes = loop {
        tokio::select! {
            outcomes = &mut work => break outcomes,
            _ = heartbeat.tick() => {
                let entries = messages.iter().enumerate().map(|(i, m)| visibility_entry(i, m, source.visibility_timeout));
                if let Err(error) = source.client.change_message_visibility_batch().queue_url(&source.queue_url)
                    .set_entries(Some(entries.collect())).send().await {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "could not extend visibility");
                }
            }
        }
    };

    let finished: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .zip(&outcomes)
        .enumerate()
        .filter(|(_, (_, outcome))| outcome.is_final())
        .map(|(i, (message, _))| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
                .build()
                .expect("id and receipt handle are set")
        })
        .collect();
    let completed = finished.len() as u64;
    if !finished.is_empty() {
        source
            .client
            .delete_message_batch()
            .queue_url(&source.queue_url)
            .set_entries(Some(finished))
            .send()
            .await
            .map_err(sqs_error("DeleteMessageBatch"))?;
    }
    // Retries come back after a back-off that grows with their delivery count, not after the full
    // visibility timeout.
    let retries: Vec<ChangeMessageVisibilityBatchRequestEntry> = messages
        .iter()
        .zip(&inbound)
        .zip(&outcomes)
        .enumerate()
        .filter(|(_, (_, outcome))| !outcome.is_final())
        .map(|(i, ((message, inbound), _))| {
            visibility_entry(i, message, backoff(inbound.delivery_count.unwrap_or(1)))
        })
        .collect();
    if !retries.is_empty()
        && let Err(error) = source
            .client
            .change_message_visibility_batch()
            .queue_url(&source.queue_url)
            .set_entries(Some(retries))
            .send()
            .await
    {
        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "could not schedule retries");
    }
    Ok(completed)
}

fn visibility_entry(
    index: usize,
    message: &Message,
    timeout: Duration,
) -> ChangeMessageVisibilityBatchRequestEntry {
    ChangeMessageVisibilityBatchRequestEntry::builder()
        .id(index.to_string())
        .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
        .visibility_timeout(timeout.as_secs() as i32)
        .build()
        .expect("id and receipt handle are set")
}
