//! The handlers wired to the real world: the gateway, the completion topic and the dead-letter queue and
//! topic, configured from the environment. Shared by the Lambda functions and the consumer, so both run
//! the same code with the same settings.
//!
//! # Environment (besides the gateway's, see `spark_gateway::config`)
//! - `KAFKA_BOOTSTRAP_SERVERS`: the Kafka cluster of the completion and dead-letter topics.
//! - `SPARK_GATEWAY_EVENTS_TOPIC` (default `spark-gateway.events`): the completion topic.
//! - `SPARK_GATEWAY_DLQ_URL`: the SQS dead-letter queue for refused SQS messages.
//! - `SPARK_GATEWAY_DLQ_TOPIC` (default `spark-gateway.requests.dlq`): the dead-letter topic for refused
//!   Kafka records.
//! - `SPARK_GATEWAY_MAX_DELIVERIES` (default 5): the delivery at which a transient failure becomes a
//!   `retries_exhausted` rejection; keep it equal to the queue's `maxReceiveCount`.
//! - `SPARK_GATEWAY_MAX_CONCURRENCY` (default 8): applications processed at once per batch.
//! - `SPARK_GATEWAY_MAX_MESSAGE_BYTES` (default 262144): larger request messages are rejected unread.

use std::sync::Arc;

use spark_gateway::{ConfigError, GatewayConfig, LiveGateway, live_gateway};
use spark_gateway_events::{DEFAULT_MAX_MESSAGE_BYTES, DecodeLimits};

use crate::processor::Processor;
use crate::sinks::{KafkaDeadLetter, KafkaEventPublisher, SqsDeadLetter, kafka_producer};

/// Settings of the request handlers.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// The gateway's own settings.
    pub gateway: GatewayConfig,
    /// Kafka bootstrap servers.
    pub kafka_bootstrap: String,
    /// The completion topic.
    pub events_topic: String,
    /// The SQS dead-letter queue.
    pub dlq_url: Option<String>,
    /// The Kafka dead-letter topic.
    pub dlq_topic: String,
    /// See the module docs.
    pub max_deliveries: u32,
    /// See the module docs.
    pub max_concurrency: usize,
    /// See the module docs.
    pub max_message_bytes: usize,
}

impl HandlerConfig {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            var(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| ConfigError::Invalid {
                    what: name.into(),
                    message: format!("{v:?} is not a whole number"),
                })
            })
        };
        Ok(Self {
            gateway: GatewayConfig::from_env()?,
            kafka_bootstrap: var("KAFKA_BOOTSTRAP_SERVERS")
                .ok_or(ConfigError::Missing("KAFKA_BOOTSTRAP_SERVERS"))?,
            events_topic: var("SPARK_GATEWAY_EVENTS_TOPIC")
                .unwrap_or_else(|| "spark-gateway.events".into()),
            dlq_url: var("SPARK_GATEWAY_DLQ_URL"),
            dlq_topic: var("SPARK_GATEWAY_DLQ_TOPIC")
                .unwrap_or_else(|| "spark-gateway.requests.dlq".into()),
            max_deliveries: number("SPARK_GATEWAY_MAX_DELIVERIES", 5)?,
            max_concurrency: number("SPARK_GATEWAY_MAX_CONCURRENCY", 8)? as usize,
            max_message_bytes: number(
                "SPARK_GATEWAY_MAX_MESSAGE_BYTES",
                DEFAULT_MAX_MESSAGE_BYTES as u32,
            )? as usize,
        })
    }
}

/// Everything a request handler needs, built once per process and reused across invocations.
pub struct LiveHandlers {
    /// The processor.
    pub processor: Processor<Arc<LiveGateway>, KafkaEventPublisher>,
    /// The gateway (also answers status queries).
    pub gateway: Arc<LiveGateway>,
    /// Dead-letter copies of SQS messages, when a DLQ is configured.
    pub sqs_dead_letter: Option<SqsDeadLetter>,
    /// Dead-letter copies of Kafka records.
    pub kafka_dead_letter: KafkaDeadLetter,
    /// Applications processed at once.
    pub max_concurrency: usize,
}

impl LiveHandlers {
    /// Starts, in the background and in parallel, what the first message would otherwise wait for: the
    /// default cluster's token and connection, and the completion topic's broker connection and
    /// metadata. The first message joins whatever is still under way (the token cache's lock).
    pub fn warm_up(&self) {
        let gateway = Arc::clone(&self.gateway);
        tokio::spawn(async move { gateway.warm_up().await });
        drop(self.processor.publisher().warm_up());
    }
}

/// The handlers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Kafka producer could not be created.
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

impl LiveHandlers {
    /// Builds the clients; nothing is contacted until the first message (the Kafka producer connects in
    /// the background).
    pub async fn new(config: HandlerConfig) -> Result<Self, SetupError> {
        Self::with_aws(config, &spark_gateway::aws_sdk_config().await)
    }

    /// Like [`LiveHandlers::new`], with AWS SDK configuration chosen by the caller (tests point it at
    /// LocalStack explicitly).
    pub fn with_aws(
        config: HandlerConfig,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, SetupError> {
        let gateway = Arc::new(live_gateway(config.gateway, aws));
        let producer = kafka_producer(&config.kafka_bootstrap)?;
        let publisher = KafkaEventPublisher::new(producer.clone(), config.events_topic);
        let sqs_dead_letter = config
            .dlq_url
            .map(|url| SqsDeadLetter::new(aws_sdk_sqs::Client::new(aws), url));
        Ok(Self {
            processor: Processor::new(Arc::clone(&gateway), publisher, config.max_deliveries)
                .with_limits(DecodeLimits {
                    max_message_bytes: config.max_message_bytes,
                }),
            gateway,
            sqs_dead_letter,
            kafka_dead_letter: KafkaDeadLetter::new(producer, config.dlq_topic),
            max_concurrency: config.max_concurrency,
        })
    }
}
