//! Where the handlers' output goes: the completion topic (rejection events) and the dead-letter queue or
//! topic (a copy of the refused message). Narrow traits, so handlers run with fakes in unit tests and
//! with SQS and Kafka in system tests.

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use rdkafka::producer::FutureRecord;
use spark_gateway_events::{CloudEvent, KafkaRecord, RequestApplied, RequestRejected};
use spark_gateway_kafka::{KafkaProducer, KafkaSettings, KafkaSetupError, ProducerProfile};

use crate::message::InboundMessage;
use crate::sqs::{SqsError, SqsQueue};

/// A sink could not take the message; the request must be retried, not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Kafka did not acknowledge the record (with the connection failure behind it when librdkafka
    /// reported one).
    #[error("Kafka did not acknowledge the record on {topic}")]
    Kafka {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: spark_gateway_kafka::ConnectError,
    },
    /// SQS refused or could not be reached.
    #[error("SQS did not accept the dead-letter copy")]
    Sqs(#[source] SqsError),
    /// No dead-letter destination is configured for this transport.
    #[error("no dead-letter destination configured (set {0})")]
    NotConfigured(&'static str),
}

/// Publishes rejection events to the completion topic.
pub trait EventPublisher: Send + Sync {
    /// Publishes a rejection; returns once the broker acknowledged it.
    fn publish_rejection(
        &self,
        event: &CloudEvent<RequestRejected>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Publishes what an applied request did; returns once the broker acknowledged it.
    fn publish_applied(
        &self,
        event: &CloudEvent<RequestApplied>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

impl<T: EventPublisher> EventPublisher for &T {
    fn publish_rejection(
        &self,
        event: &CloudEvent<RequestRejected>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).publish_rejection(event)
    }

    fn publish_applied(
        &self,
        event: &CloudEvent<RequestApplied>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).publish_applied(event)
    }
}

/// Keeps a copy of a refused message where people can find it.
pub trait DeadLetterSink: Send + Sync {
    /// Stores the copy.
    fn dead_letter(
        &self,
        copy: &DeadLetterCopy<'_>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// A refused message as every dead-letter destination stores it.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterCopy<'a> {
    /// The refused message.
    pub message: &'a InboundMessage,
    /// Why it was refused.
    pub rejection: &'a RequestRejected,
    /// Whether its `RequestRejected` reached the completion topic.
    pub event_published: bool,
}

/// The most of a refused message's body a dead-letter copy holds: under SQS's 256 KiB message limit with
/// room for the attributes, and under Kafka's default 1 MB record limit. A longer body (one refused for
/// its size) is cut there and its copy says how long it was.
pub const DEAD_LETTER_MAX_BODY_BYTES: usize = 240 * 1024;

/// The body of a dead-letter copy, and the original length when it had to be cut.
fn dead_letter_body(body: &[u8]) -> (&[u8], Option<usize>) {
    if body.len() <= DEAD_LETTER_MAX_BODY_BYTES {
        return (body, None);
    }
    // Cut at a UTF-8 boundary, so an SQS copy stays text.
    let mut end = DEAD_LETTER_MAX_BODY_BYTES;
    while end > 0 && (body[end] & 0b1100_0000) == 0b1000_0000 {
        end -= 1;
    }
    (&body[..end], Some(body.len()))
}

/// An SQS dead-letter queue that may be unconfigured: then refused messages are not acknowledged, and
/// SQS's own redrive policy moves them to its dead-letter queue after `maxReceiveCount` deliveries.
impl DeadLetterSink for Option<SqsDeadLetter> {
    async fn dead_letter(&self, copy: &DeadLetterCopy<'_>) -> Result<(), SinkError> {
        match self {
            Some(sink) => sink.dead_letter(copy).await,
            None => Err(SinkError::NotConfigured("SPARK_GATEWAY_DLQ_URL")),
        }
    }
}

/// Header and attribute names of dead-letter copies (see the AsyncAPI document).
pub mod attributes {
    /// The rejection reason code.
    pub const REASON: &str = "spark-gateway-rejection-reason";
    /// The rejection message.
    pub const MESSAGE: &str = "spark-gateway-rejection-message";
    /// The request id, when readable.
    pub const REQUEST_ID: &str = "spark-gateway-request-id";
    /// Where the message was read.
    pub const ORIGIN: &str = "spark-gateway-origin";
    /// `false` when the rejection event could not be published (only at the last delivery).
    pub const EVENT_PUBLISHED: &str = "spark-gateway-event-published";
    /// The original body's length in bytes, when the copy holds only its beginning.
    pub const ORIGINAL_BYTES: &str = "spark-gateway-original-bytes";
}

impl<'a> DeadLetterCopy<'a> {
    /// What the copy says about itself, the same for SQS attributes and Kafka headers: its body (cut
    /// at [`DEAD_LETTER_MAX_BODY_BYTES`]) and `(name, value)` pairs, the original length last when the
    /// body was cut.
    fn body_and_attributes(&self) -> (&'a [u8], Vec<(&'static str, String)>) {
        let Self {
            message,
            rejection,
            event_published,
        } = *self;
        let (body, original_bytes) = dead_letter_body(&message.body);
        let mut pairs = vec![
            (attributes::REASON, reason_code(rejection)),
            (attributes::MESSAGE, rejection.message.clone()),
            (attributes::ORIGIN, rejection.origin.locator()),
        ];
        if let Some(request_id) = &rejection.request_id {
            pairs.push((attributes::REQUEST_ID, request_id.clone()));
        }
        if !event_published {
            pairs.push((attributes::EVENT_PUBLISHED, "false".into()));
        }
        if let Some(bytes) = original_bytes {
            pairs.push((attributes::ORIGINAL_BYTES, bytes.to_string()));
        }
        (body, pairs)
    }
}

fn reason_code(rejection: &RequestRejected) -> String {
    serde_json::to_value(rejection.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The Kafka producer both the completion topic and the dead-letter topic use: every send awaited until
/// every in-sync replica has it, so a message is acknowledged only after its outcome is on the broker
/// (the profile's reasons are in [`ProducerProfile::AwaitEachSend`]).
pub fn kafka_producer(
    settings: &KafkaSettings,
    aws_credentials: Option<spark_gateway_kafka::SharedCredentialsProvider>,
) -> Result<KafkaProducer, KafkaSetupError> {
    settings.producer(
        "spark-gateway-functions",
        ProducerProfile::AwaitEachSend {
            delivery_timeout: SEND_TIMEOUT,
        },
        aws_credentials,
    )
}

/// How long one send may take, librdkafka's retries included.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Rejection events to a Kafka topic, keyed by request id (or the message's place when it has none).
#[derive(Clone)]
pub struct KafkaEventPublisher {
    producer: KafkaProducer,
    topic: String,
}

impl KafkaEventPublisher {
    /// Publishes to `topic` with `producer`.
    pub fn new(producer: KafkaProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }
}

impl KafkaEventPublisher {
    /// Connects to the brokers and reads the topic's metadata in the background, so the first publish
    /// does not wait for either.
    pub fn warm_up(&self) -> tokio::task::JoinHandle<()> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            // Wrong credentials or certificates show here first, by name, rather than as a send timeout.
            if let Err(error) = producer.check_topic(&topic, Duration::from_secs(5)) {
                tracing::warn!(%error, topic, "Kafka warm-up failed; the first publish will retry it");
            }
        })
    }
}

impl KafkaEventPublisher {
    /// Proves the brokers answer, accept the credentials and know the completion topic.
    pub async fn check(&self, timeout: Duration) -> Result<(), spark_gateway_kafka::ConnectError> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || producer.check_topic(&topic, timeout))
            .await
            .expect("the metadata request does not panic")
    }
}

impl EventPublisher for KafkaEventPublisher {
    async fn publish_rejection(
        &self,
        event: &CloudEvent<RequestRejected>,
    ) -> Result<(), SinkError> {
        self.publish(event).await
    }

    async fn publish_applied(&self, event: &CloudEvent<RequestApplied>) -> Result<(), SinkError> {
        self.publish(event).await
    }
}

impl KafkaEventPublisher {
    /// The event as a structured-mode record of the CloudEvents Kafka binding, keyed by its partition
    /// key.
    async fn publish<T: serde::Serialize>(&self, event: &CloudEvent<T>) -> Result<(), SinkError> {
        let record = KafkaRecord::structured(event);
        let kafka_record = FutureRecord::to(&self.topic)
            .key(&record.key)
            .payload(&record.payload)
            .headers(spark_gateway_kafka::headers(&record.headers()));
        send_acknowledged(&self.producer, kafka_record).await
    }
}

/// Dead-letter copies to an SQS queue, the reason in message attributes.
#[derive(Debug, Clone)]
pub struct SqsDeadLetter {
    queue: SqsQueue,
}

impl SqsDeadLetter {
    /// Sends copies to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            queue: SqsQueue::new(client, queue_url),
        }
    }
}

/// An SQS string attribute. SQS refuses characters outside XML's (control characters among them),
/// and a rejection message may quote a hostile request's text: those become U+FFFD rather than a send
/// that fails on every delivery.
fn text_attribute(value: &str) -> MessageAttributeValue {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
    };
    let value: String = value
        .chars()
        .map(|c| {
            if allowed(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect();
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

impl DeadLetterSink for SqsDeadLetter {
    async fn dead_letter(&self, copy: &DeadLetterCopy<'_>) -> Result<(), SinkError> {
        let (body, pairs) = copy.body_and_attributes();
        let attributes = pairs.into_iter().map(|(name, value)| {
            let attribute = if name == attributes::ORIGINAL_BYTES {
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(value)
                    .build()
                    .expect("data type is set")
            } else {
                text_attribute(&value)
            };
            (name, attribute)
        });
        self.queue
            // SQS bodies are text; a body that was not UTF-8 could not have arrived through SQS.
            .send(String::from_utf8_lossy(body).into_owned(), attributes)
            .await
            .map(|_| ())
            .map_err(SinkError::Sqs)
    }
}

/// Dead-letter copies to a Kafka topic: the original key and value, the reason in headers.
#[derive(Clone)]
pub struct KafkaDeadLetter {
    producer: KafkaProducer,
    topic: String,
}

impl KafkaDeadLetter {
    /// Sends copies to `topic`.
    pub fn new(producer: KafkaProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }
}

impl DeadLetterSink for KafkaDeadLetter {
    async fn dead_letter(&self, copy: &DeadLetterCopy<'_>) -> Result<(), SinkError> {
        let (body, pairs) = copy.body_and_attributes();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let headers = spark_gateway_kafka::headers(&pairs);
        let mut record = FutureRecord::<Vec<u8>, [u8]>::to(&self.topic)
            .payload(body)
            .headers(headers);
        if let Some(key) = &copy.message.key {
            record = record.key(key);
        }
        send_acknowledged(&self.producer, record).await
    }
}

/// Sends `record` and waits for the broker's acknowledgement (acks=all). A failure names the
/// authentication or TLS problem behind it when librdkafka reported one.
async fn send_acknowledged<K, P>(
    producer: &KafkaProducer,
    record: FutureRecord<'_, K, P>,
) -> Result<(), SinkError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let topic = record.topic.to_string();
    producer
        .send(record, SEND_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|error| SinkError::Kafka {
            topic,
            source: producer.explain(error),
        })
}
