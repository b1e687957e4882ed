//! The SQS adapter, written once for every SQS caller: the consumer's polling (receive, delete, change
//! visibility) and the dead-letter copies of the Lambda functions and the consumer (send). Each call
//! respects SQS's batch limit and names itself in its error.

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName,
};

/// The most messages one receive returns and one batch call takes (SQS's limit).
pub const SQS_BATCH_LIMIT: usize = 10;

/// An SQS call failed.
#[derive(Debug, thiserror::Error)]
#[error("SQS {operation} failed")]
pub struct SqsError {
    /// The call.
    pub operation: &'static str,
    /// SQS's error code, when the service answered (`AWS.SimpleQueueService.NonExistentQueue`).
    pub code: Option<String>,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// SQS error codes no retry fixes: the queue does not exist, or the caller may not use it.
const PERMANENT_CODES: [&str; 5] = [
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAddress",
];

impl SqsError {
    /// Whether the service refused for good (no such queue, no permission), rather than failed.
    pub fn is_refusal(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| PERMANENT_CODES.contains(&code))
    }
}

fn sqs_error<E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static>(
    operation: &'static str,
) -> impl Fn(E) -> SqsError {
    move |error| SqsError {
        operation,
        code: error.code().map(str::to_string),
        source: error.into(),
    }
}

/// A FIFO queue's ordering and de-duplication of one message.
#[derive(Debug, Clone, Copy)]
pub struct FifoKeys<'a> {
    /// Messages of one group are delivered in order.
    pub group: &'a str,
    /// A second message with this id within five minutes is dropped.
    pub deduplication_id: &'a str,
}

/// One queue and the client that reaches it.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Receives up to [`SQS_BATCH_LIMIT`] messages with their receive counts, waiting up to
    /// `wait_seconds` for the first, each invisible to other consumers for `visibility`.
    pub async fn receive(
        &self,
        wait_seconds: i32,
        visibility: Duration,
    ) -> Result<Vec<Message>, SqsError> {
        Ok(self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(SQS_BATCH_LIMIT as i32)
            .wait_time_seconds(wait_seconds)
            .visibility_timeout(seconds(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_error("ReceiveMessage"))?
            .messages
            .unwrap_or_default())
    }

    /// Deletes the messages of `receipt_handles`, the batch calls at once (nothing orders them, and
    /// each is a round trip).
    pub async fn delete(&self, receipt_handles: &[&str]) -> Result<(), SqsError> {
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*receipt)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        futures::future::try_join_all(entries.chunks(SQS_BATCH_LIMIT).map(|chunk| {
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(chunk.to_vec()))
                .send()
        }))
        .await
        .map(|_| ())
        .map_err(sqs_error("DeleteMessageBatch"))
    }

    /// Makes each message of `receipts` visible again after its duration, the batch calls at once;
    /// returns the first failure after trying every call.
    pub async fn change_visibility(&self, receipts: &[(&str, Duration)]) -> Result<(), SqsError> {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = receipts
            .iter()
            .enumerate()
            .map(|(i, (receipt, visibility))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*receipt)
                    .visibility_timeout(seconds(*visibility))
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let calls = entries.chunks(SQS_BATCH_LIMIT).map(|chunk| {
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(chunk.to_vec()))
                .send()
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), |error| {
                Err(sqs_error("ChangeMessageVisibilityBatch")(error))
            })
    }

    /// Sends one message with its attributes; returns its message id.
    pub async fn send(
        &self,
        body: String,
        attributes: impl IntoIterator<Item = (&'static str, MessageAttributeValue)>,
    ) -> Result<String, SqsError> {
        self.send_keyed(body, attributes, None).await
    }

    /// Sends one message, with its group and de-duplication id when the queue is FIFO.
    pub async fn send_keyed(
        &self,
        body: String,
        attributes: impl IntoIterator<Item = (&'static str, MessageAttributeValue)>,
        fifo: Option<FifoKeys<'_>>,
    ) -> Result<String, SqsError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body);
        if let Some(keys) = fifo {
            send = send
                .message_group_id(keys.group)
                .message_deduplication_id(keys.deduplication_id);
        }
        for (name, value) in attributes {
            send = send.message_attributes(name, value);
        }
        send.send()
            .await
            .map(|sent| sent.message_id.unwrap_or_default())
            .map_err(sqs_error("SendMessage"))
    }
}

/// SQS takes whole seconds; durations beyond `i32` seconds are beyond its 12-hour limit anyway.
fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}
