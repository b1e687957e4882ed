//! The job-requests function's events: the Lambda event shapes (SQS and Kafka event source mappings)
//! told apart by their `eventSource` and turned into [`InboundMessage`]s, and the batch outcome turned
//! back into what Lambda expects: a partial-batch response for SQS, success or a failed invocation for
//! Kafka.

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use spark_gateway_events::MessageOrigin;
use spark_gateway_handlers::batch::BatchRunner;
use spark_gateway_handlers::replay::PositionLedger;
use spark_gateway_handlers::sinks::{DeadLetterSink, EventPublisher};
use spark_gateway_handlers::{InboundMessage, Operations, Outcome, Processor};

/// What the job-requests function needs to handle an event, borrowed from wherever it lives
/// ([`spark_gateway_handlers::live::LiveHandlers`] in the function, fakes in tests).
pub struct RequestFunction<'a, O, P, S, K, L> {
    /// Applies and announces each request.
    pub processor: &'a Processor<O, P>,
    /// Dead-letter copies of refused SQS messages.
    pub sqs_dead_letter: &'a S,
    /// Dead-letter copies of refused Kafka records.
    pub kafka_dead_letter: &'a K,
    /// Keeps Kafka replays from re-applying what an earlier delivery finished.
    pub replay_ledger: &'a L,
    /// Applications processed at once.
    pub max_concurrency: usize,
}

/// An event the function cannot handle, or a Kafka batch that must be delivered again; either way the
/// invocation fails (for SQS, Lambda then retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum RequestEventError {
    /// Neither SQS nor Kafka.
    #[error("unsupported event source {0:?}: expected aws:sqs, aws:kafka or aws:SelfManagedKafka")]
    UnsupportedSource(String),
    /// The event says SQS or Kafka but does not have that shape.
    #[error("not a valid {source_name} event")]
    Shape {
        /// The event source.
        source_name: String,
        /// What does not fit.
        #[source]
        source: serde_json::Error,
    },
    /// A Kafka record is not valid base64.
    #[error(transparent)]
    Encoding(#[from] RecordEncodingError),
    /// Some Kafka records must be retried.
    #[error(transparent)]
    Retry(#[from] KafkaBatchFailed),
}

impl<O, P, S, K, L> RequestFunction<'_, O, P, S, K, L>
where
    O: Operations,
    P: EventPublisher,
    S: DeadLetterSink,
    K: DeadLetterSink,
    L: PositionLedger,
{
    /// Handles one invocation: an SQS event answers with its partial-batch response, a Kafka event with
    /// `{"processed": n}` or, when records must be retried, an error.
    pub async fn handle(&self, payload: Value) -> Result<Value, RequestEventError> {
        let source = payload
            .get("eventSource")
            .or_else(|| payload.pointer("/Records/0/eventSource"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let shape = |error: serde_json::Error| RequestEventError::Shape {
            source_name: source.clone(),
            source: error,
        };
        match source.as_str() {
            "aws:sqs" => {
                let event: SqsEvent = serde_json::from_value(payload).map_err(shape)?;
                let response = handle_sqs_event(
                    self.processor,
                    &event,
                    self.sqs_dead_letter,
                    self.max_concurrency,
                )
                .await;
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
            "aws:kafka" | "aws:SelfManagedKafka" => {
                let event: KafkaEvent = serde_json::from_value(payload).map_err(shape)?;
                let messages = kafka_messages(&event)?;
                let processed = handle_kafka_event(
                    self.processor,
                    &messages,
                    self.replay_ledger,
                    self.kafka_dead_letter,
                    self.max_concurrency,
                )
                .await?;
                Ok(serde_json::json!({ "processed": processed }))
            }
            _ => Err(RequestEventError::UnsupportedSource(source)),
        }
    }
}

/// SQS records as messages, paired with their message ids.
pub fn sqs_messages(event: &SqsEvent) -> Vec<(String, InboundMessage)> {
    event
        .records
        .iter()
        .map(|record| {
            let message_id = record.message_id.clone().unwrap_or_default();
            let message = InboundMessage {
                body: record.body.clone().unwrap_or_default().into_bytes(),
                origin: MessageOrigin::Sqs {
                    queue: record.event_source_arn.clone().unwrap_or_default(),
                    message_id: message_id.clone(),
                },
                key: None,
                delivery_count: record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok()),
            };
            (message_id, message)
        })
        .collect()
}

/// Handles an SQS event: every message that must be retried is reported in `batchItemFailures`; the
/// others (applied or rejected) are acknowledged by Lambda.
pub async fn handle_sqs_event<O, P, D>(
    processor: &Processor<O, P>,
    event: &SqsEvent,
    dead_letters: &D,
    max_concurrency: usize,
) -> SqsBatchResponse
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
{
    let (ids, messages): (Vec<String>, Vec<InboundMessage>) =
        sqs_messages(event).into_iter().unzip();
    let runner = BatchRunner {
        processor,
        dead_letters,
        max_concurrency,
    };
    let outcomes = runner
        .process_batch(&messages, InboundMessage::ordering_key)
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        if !outcome.is_final() {
            response.add_failure(id);
        }
    }
    response
}

/// A Kafka record whose key or value is not valid base64 (the event source mapping always encodes them).
#[derive(Debug, thiserror::Error)]
#[error("Kafka record {topic}/{partition}/{offset} has invalid base64 in its {field}")]
pub struct RecordEncodingError {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i64,
    /// Offset.
    pub offset: i64,
    /// `key` or `value`.
    pub field: &'static str,
}

fn kafka_message(record: &KafkaRecord) -> Result<InboundMessage, RecordEncodingError> {
    let topic = record.topic.clone().unwrap_or_default();
    let decode = |text: &Option<String>, field| {
        text.as_deref()
            .map(|t| BASE64.decode(t))
            .transpose()
            .map_err(|_| RecordEncodingError {
                topic: topic.clone(),
                partition: record.partition,
                offset: record.offset,
                field,
            })
    };
    Ok(InboundMessage {
        body: decode(&record.value, "value")?.unwrap_or_default(),
        key: decode(&record.key, "key")?,
        origin: MessageOrigin::Kafka {
            topic: topic.clone(),
            partition: i32::try_from(record.partition).unwrap_or(i32::MAX),
            offset: record.offset,
        },
        delivery_count: None,
    })
}

/// Kafka records as messages, each partition in offset order.
pub fn kafka_messages(event: &KafkaEvent) -> Result<Vec<InboundMessage>, RecordEncodingError> {
    let mut records: Vec<&KafkaRecord> = event.records.values().flatten().collect();
    records
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    records.into_iter().map(kafka_message).collect()
}

/// The ordering key of Kafka records: their partition, whose order producers rely on.
pub fn partition_key(message: &InboundMessage) -> String {
    match &message.origin {
        MessageOrigin::Kafka {
            topic, partition, ..
        } => format!("{topic}/{partition}"),
        other => other.locator(),
    }
}

/// A Kafka batch with records that must be retried: the invocation fails and Lambda redelivers the batch.
#[derive(Debug, thiserror::Error)]
#[error("{retry} of {total} Kafka records must be retried (first: {first})")]
pub struct KafkaBatchFailed {
    /// Records to retry.
    pub retry: usize,
    /// Records in the batch.
    pub total: usize,
    /// The first reason.
    pub first: String,
}

/// Handles a Kafka event; partitions run concurrently, each in order, and a partition stops at its first
/// record that must be retried. Lambda then replays the batch (whole, or bisected); `ledger` makes
/// that replay skip what this invocation finished (see [`spark_gateway_handlers::replay`]), so it never undoes a later
/// record, e.g. re-creates an application a later record of the batch deleted.
pub async fn handle_kafka_event<O, P, D, L>(
    processor: &Processor<O, P>,
    messages: &[InboundMessage],
    ledger: &L,
    dead_letters: &D,
    max_concurrency: usize,
) -> Result<usize, KafkaBatchFailed>
where
    O: Operations,
    P: EventPublisher,
    D: DeadLetterSink,
    L: PositionLedger,
{
    let runner = BatchRunner {
        processor,
        dead_letters,
        max_concurrency,
    };
    let outcomes = runner.process_partitions(messages, ledger).await;
    let retries: Vec<&Outcome> = outcomes.iter().filter(|o| !o.is_final()).collect();
    match retries.first() {
        None => Ok(outcomes.len()),
        Some(Outcome::Retry(first)) => Err(KafkaBatchFailed {
            retry: retries.len(),
            total: outcomes.len(),
            first: first.clone(),
        }),
        Some(_) => unreachable!("only retries are not final"),
    }
}
