//! The handlers wired to the real world: the gateway, the completion topic and the dead-letter queue and
//! topic, configured from the environment. Shared by the Lambda functions and the consumer, so both run
//! the same code with the same settings.
//!
//! # Environment (besides the gateway's, see `spark_gateway::config`)
//! - `KAFKA_BOOTSTRAP_SERVERS` and the other `KAFKA_*` settings of `spark_gateway_kafka` (TLS, SASL,
//!   MSK IAM): the Kafka cluster of the completion and dead-letter topics. `KAFKA_SASL_SECRET_ID` names a
//!   Secrets Manager secret `{"username", "password"}` read at start instead of `KAFKA_SASL_PASSWORD`.
//! - `SPARK_GATEWAY_EVENTS_TOPIC` (default `spark-gateway.events`): the completion topic.
//! - `SPARK_GATEWAY_DLQ_URL`: the SQS dead-letter queue for refused SQS messages.
//! - `SPARK_GATEWAY_DLQ_TOPIC` (default `spark-gateway.requests.dlq`): the dead-letter topic for refused
//!   Kafka records.
//! - `SPARK_GATEWAY_MAX_DELIVERIES` (default 5): the delivery at which a transient failure becomes a
//!   `retries_exhausted` rejection; keep it equal to the queue's `maxReceiveCount`.
//! - `SPARK_GATEWAY_MAX_CONCURRENCY` (default 8): applications processed at once per batch.
//! - `SPARK_GATEWAY_MAX_MESSAGE_BYTES` (default 262144): larger request messages are rejected unread.
//! - `SPARK_GATEWAY_REPLAY_LEDGER_BUCKET`: the S3 bucket of the Lambda function's replay ledger (see
//!   [`crate::replay`]); without it a replayed Kafka batch re-applies what it carries.
//! - `SPARK_GATEWAY_REPLAY_LEDGER_PREFIX` (default `kafka/<AWS_LAMBDA_FUNCTION_NAME>/`, or
//!   `kafka/spark-gateway/` outside Lambda): where in it; one per reader of a topic.
//! - `SPARK_GATEWAY_RECORDS_BUCKET`, `SPARK_GATEWAY_RECORDS_PREFIX` (default `job-records/`): the job
//!   records the watcher writes (see `spark_gateway_records`); the status function answers from them
//!   once an application is gone from the cluster.

use std::sync::Arc;

use spark_gateway::{ConfigError, GatewayConfig, LiveGateway, live_gateway};
use spark_gateway_events::{DEFAULT_MAX_MESSAGE_BYTES, DecodeLimits};

use crate::processor::Processor;
use crate::replay::S3PositionLedger;
use crate::sinks::{KafkaDeadLetter, KafkaEventPublisher, SqsDeadLetter, kafka_producer};
use spark_gateway_kafka::{KafkaSettings, KafkaSettingsInput, KafkaSetupError};
use spark_gateway_records::{RecordsConfig, S3Records, s3_client};

/// Settings of the request handlers.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// The gateway's own settings.
    pub gateway: GatewayConfig,
    /// How to reach and authenticate to Kafka.
    pub kafka: KafkaSettings,
    /// A Secrets Manager secret with the SASL user and password, read by [`LiveHandlers::new`].
    pub kafka_sasl_secret_id: Option<String>,
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
    /// Where the Lambda function's replay ledger is kept, when it is.
    pub replay_ledger: Option<ReplayLedgerConfig>,
    /// Where the job records are, when they are kept.
    pub records: Option<RecordsConfig>,
}

/// The replay ledger's place in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayLedgerConfig {
    /// Bucket.
    pub bucket: String,
    /// Key prefix, ending in `/`.
    pub prefix: String,
}

impl HandlerConfig {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests), the configuration
    /// style of every library of the system: an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            var(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| ConfigError::Invalid {
                    what: name.into(),
                    message: format!("{v:?} is not a whole number"),
                })
            })
        };
        Ok(Self {
            gateway: GatewayConfig::from_lookup(&lookup)?,
            kafka: KafkaSettingsInput::from_lookup(&lookup)
                .into_settings()
                .map_err(|error| ConfigError::Invalid {
                    what: "the Kafka settings".into(),
                    message: error.to_string(),
                })?,
            kafka_sasl_secret_id: var(spark_gateway_kafka::variables::SASL_SECRET_ID),
            events_topic: var("SPARK_GATEWAY_EVENTS_TOPIC")
                .unwrap_or_else(|| spark_gateway_events::topics::EVENTS.into()),
            dlq_url: var("SPARK_GATEWAY_DLQ_URL"),
            dlq_topic: var("SPARK_GATEWAY_DLQ_TOPIC")
                .unwrap_or_else(|| spark_gateway_events::topics::DEAD_LETTERS.into()),
            max_deliveries: number("SPARK_GATEWAY_MAX_DELIVERIES", 5)?,
            max_concurrency: number("SPARK_GATEWAY_MAX_CONCURRENCY", 8)? as usize,
            max_message_bytes: number(
                "SPARK_GATEWAY_MAX_MESSAGE_BYTES",
                DEFAULT_MAX_MESSAGE_BYTES as u32,
            )? as usize,
            replay_ledger: var("SPARK_GATEWAY_REPLAY_LEDGER_BUCKET").map(|bucket| {
                ReplayLedgerConfig {
                    bucket,
                    prefix: var("SPARK_GATEWAY_REPLAY_LEDGER_PREFIX").unwrap_or_else(|| {
                        let reader = var("AWS_LAMBDA_FUNCTION_NAME");
                        format!("kafka/{}/", reader.as_deref().unwrap_or("spark-gateway"))
                    }),
                }
            }),
            records: RecordsConfig::from_lookup(&lookup),
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
    /// The replay ledger of Kafka batches, when configured.
    pub replay_ledger: Option<S3PositionLedger>,
    /// The job records, when configured.
    pub records: Option<S3Records>,
    /// The Kafka settings the producer uses, SASL credentials from the secret included: the consumer's
    /// group member connects with the same.
    pub kafka: KafkaSettings,
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
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    /// The SASL secret could not be read or used.
    #[error("cannot use the Kafka SASL secret {secret_id}: {message}")]
    KafkaSecret {
        /// The secret's id.
        secret_id: String,
        /// What went wrong (never the secret's content).
        message: String,
    },
}

impl LiveHandlers {
    /// Builds the clients; nothing is contacted until the first message (the Kafka producer connects in
    /// the background).
    pub async fn new(config: HandlerConfig) -> Result<Self, SetupError> {
        Self::connect(config, &spark_gateway::aws_sdk_config().await).await
    }

    /// Like [`LiveHandlers::new`] with AWS SDK configuration the caller already has (the consumer
    /// shares its own): reads the Kafka SASL secret when one is named, then builds the clients.
    pub async fn connect(
        mut config: HandlerConfig,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, SetupError> {
        if let Some(secret_id) = config.kafka_sasl_secret_id.take() {
            config.kafka = kafka_with_secret(config.kafka, &secret_id, aws).await?;
        }
        Self::with_aws(config, aws)
    }

    /// Like [`LiveHandlers::new`], with AWS SDK configuration chosen by the caller (tests point it at
    /// LocalStack explicitly).
    pub fn with_aws(
        config: HandlerConfig,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, SetupError> {
        let gateway = Arc::new(live_gateway(config.gateway, aws));
        let producer = kafka_producer(&config.kafka, aws.credentials_provider())?;
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
            replay_ledger: config
                .replay_ledger
                .map(|ledger| S3PositionLedger::new(s3_client(aws), ledger.bucket, ledger.prefix)),
            records: config.records.map(|records| records.s3(aws)),
            kafka: config.kafka,
        })
    }
}

/// The Kafka settings from `lookup`, with the SASL credentials read from `KAFKA_SASL_SECRET_ID` when
/// it names a secret: for a Kafka client of the system that is not the request handlers (the
/// notifier).
pub async fn kafka_settings(
    lookup: impl Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<KafkaSettings, SetupError> {
    let settings = KafkaSettingsInput::from_lookup(&lookup)
        .into_settings()
        .map_err(|error| ConfigError::Invalid {
            what: "the Kafka settings".into(),
            message: error.to_string(),
        })?;
    match lookup(spark_gateway_kafka::variables::SASL_SECRET_ID).filter(|v| !v.is_empty()) {
        Some(secret_id) => kafka_with_secret(settings, &secret_id, aws).await,
        None => Ok(settings),
    }
}

/// The SASL user and password from a Secrets Manager secret in the format Lambda's Kafka event sources
/// use (`{"username": "...", "password": "..."}`), so the function and its event source share one secret.
async fn kafka_with_secret(
    settings: KafkaSettings,
    secret_id: &str,
    aws: &aws_config::SdkConfig,
) -> Result<KafkaSettings, SetupError> {
    #[derive(serde::Deserialize)]
    struct SaslSecret {
        username: String,
        password: secrecy::SecretString,
    }
    let failed = |message: String| SetupError::KafkaSecret {
        secret_id: secret_id.to_string(),
        message,
    };
    let text =
        spark_gateway_aws::secret_string(&aws_sdk_secretsmanager::Client::new(aws), secret_id)
            .await
            .map_err(|error| failed(spark_gateway_core::error_chain(&error)))?;
    // serde_json's message would quote the offending text: say only which shape was expected.
    let secret: SaslSecret = serde_json::from_str(&text).map_err(|_| {
        failed("expected a JSON object with string fields username and password".into())
    })?;
    settings
        .with_sasl_credentials(secret.username, secret.password)
        .map_err(|error| failed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<HandlerConfig, ConfigError> {
        let base = [
            ("SPARK_GATEWAY_CLUSTER_URL", "https://proxy"),
            ("SPARK_GATEWAY_ALLOWED_NAMESPACES", "spark-jobs"),
            ("SPARK_GATEWAY_ALLOW_ANY_IMAGE", "true"),
            ("SPARK_GATEWAY_APPROLE_FILE", "/etc/approle.json"),
            ("VAULT_ADDR", "https://vault"),
            ("KAFKA_BOOTSTRAP_SERVERS", "broker:9092"),
        ];
        let vars: HashMap<String, String> = base
            .iter()
            .chain(pairs)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HandlerConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_fill_what_is_unset_or_empty() {
        let config = config(&[("SPARK_GATEWAY_DLQ_URL", "")]).unwrap();
        assert_eq!(config.events_topic, spark_gateway_events::topics::EVENTS);
        assert_eq!(config.dlq_topic, spark_gateway_events::topics::DEAD_LETTERS);
        assert_eq!(config.dlq_url, None, "an empty value is unset");
        assert_eq!((config.max_deliveries, config.max_concurrency), (5, 8));
        assert_eq!(config.replay_ledger, None);
    }

    #[test]
    fn the_replay_ledger_prefix_defaults_to_the_function() {
        let config = config(&[
            ("SPARK_GATEWAY_REPLAY_LEDGER_BUCKET", "ledger"),
            ("AWS_LAMBDA_FUNCTION_NAME", "job-requests"),
        ])
        .unwrap();
        assert_eq!(
            config.replay_ledger,
            Some(ReplayLedgerConfig {
                bucket: "ledger".into(),
                prefix: "kafka/job-requests/".into()
            })
        );
    }

    #[test]
    fn a_bad_number_is_refused_by_name() {
        let error = config(&[("SPARK_GATEWAY_MAX_DELIVERIES", "five")]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("SPARK_GATEWAY_MAX_DELIVERIES"),
            "{message}"
        );
        assert!(message.contains("\"five\""), "{message}");
    }
}
