//! Spark Gateway's one Kafka adapter. The Lambda functions, the consumer, the watcher, the CLI and the
//! test harness build every Kafka client here, from the same settings ([`KafkaSettings`], read from the
//! `KAFKA_*` variables or the matching flags): plaintext (the local default), TLS with an optional client
//! certificate, SASL/PLAIN, SASL/SCRAM and Amazon MSK IAM. The delivery profiles live here too, so no
//! client gets settings the others lack by accident.

#[cfg(feature = "cli")]
pub mod args;
mod context;
pub mod msk_iam;
mod producer;
mod settings;

use std::time::Duration;

/// Signs MSK IAM tokens (pass the process's AWS credentials, e.g. `SdkConfig::credentials_provider()`).
pub use aws_credential_types::provider::SharedCredentialsProvider;
use rdkafka::ClientConfig;
use rdkafka::client::Client;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{FutureRecord, Producer as _};

pub use context::{ConnectionFailure, FailureKind, FailureLog, KafkaContext};
pub use producer::Delivered;
pub use settings::{
    KafkaConfigError, KafkaSettings, KafkaSettingsInput, Pem, Sasl, ScramSha, SecurityProtocol,
    Tls, variables,
};

use context::MskTokenSource;
use producer::ServedProducer;

/// How a producer delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerProfile {
    /// The functions' and the CLI's: every send is awaited until every in-sync replica has it
    /// (`acks=all`) before a message is acknowledged. Not idempotent: its `InitProducerId` handshake held
    /// a cold start's first publish for about a second, and what it prevents (a second copy after a
    /// retried send) subscribers handle anyway by de-duplicating on the events' stable ids. One request
    /// in flight keeps a retry from reordering records, and with every send awaited alone, lingering for
    /// a batch is pure latency.
    AwaitEachSend {
        /// `message.timeout.ms`.
        delivery_timeout: Duration,
    },
    /// The watcher's: a long-lived stream with many records in flight, where idempotence makes
    /// librdkafka's own retries safe (no duplicates, no reordering within a partition).
    Idempotent {
        /// `message.timeout.ms`.
        delivery_timeout: Duration,
    },
}

/// A client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// librdkafka refused the configuration (its message names the property).
    #[error("cannot create the Kafka {role}")]
    Client {
        /// producer, consumer, ...
        role: &'static str,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A producer's delivery reports are served on a Tokio runtime, and none was running.
    #[error("a Kafka producer must be created inside a Tokio runtime")]
    NoRuntime,
}

/// The brokers could not be used: why, as precisely as librdkafka said.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The broker refused the credentials.
    #[error("Kafka authentication with {mechanism} failed at {bootstrap}: {reason}")]
    Authentication {
        /// The SASL mechanism.
        mechanism: &'static str,
        /// `bootstrap.servers`.
        bootstrap: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS to Kafka at {bootstrap} failed: {reason}")]
    Tls {
        /// `bootstrap.servers`.
        bootstrap: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// No broker answered in time, or the topic is unknown.
    #[error("Kafka at {bootstrap} did not answer for {what}")]
    Unavailable {
        /// `bootstrap.servers`.
        bootstrap: String,
        /// What was asked.
        what: String,
        /// librdkafka's error (boxed: it is large, and this is the rare path).
        #[source]
        source: Box<KafkaError>,
    },
}

/// Kafka record headers from `(name, value)` pairs.
pub fn headers(pairs: &[(&str, &str)]) -> rdkafka::message::OwnedHeaders {
    pairs.iter().fold(
        rdkafka::message::OwnedHeaders::new_with_capacity(pairs.len()),
        |headers, (key, value)| {
            headers.insert(rdkafka::message::Header {
                key,
                value: Some(*value),
            })
        },
    )
}

/// The one answer to "may retrying this Kafka failure succeed?" for every Kafka client of the system:
/// outages, timeouts and leader changes are transient; a record or topic the broker refuses, missing
/// authorization and a client that cannot be built are not (an operator has to change something).
pub fn is_transient(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::MessageProduction(code) | KafkaError::Flush(code) => *code,
        KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..) | KafkaError::Canceled => {
            return false;
        }
        _ => return true,
    };
    use rdkafka::types::RDKafkaErrorCode;
    !matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::Fatal
    )
}

impl ConnectError {
    /// Wrong credentials or certificates do not heal by retrying; an unreachable broker may.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A producer and what its connection has reported. Its delivery reports are served on the Tokio
/// runtime it was created on, by a task of its own rather than a polling thread.
#[derive(Clone)]
pub struct KafkaProducer {
    producer: ServedProducer,
    failures: FailureLog,
    settings: KafkaSettings,
}

impl KafkaProducer {
    /// Sends `record` and waits until the brokers acknowledged it (as the profile's `acks` says) or
    /// its delivery failed; while librdkafka's local queue is full it tries again until `queue_timeout`.
    pub async fn send<K, P>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: Duration,
    ) -> Result<Delivered, KafkaError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        self.producer.send(record, queue_timeout).await
    }

    /// Waits until every record sent so far is delivered or failed, for up to `timeout`. Blocks.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.producer().flush(timeout)
    }

    /// Reads `topic`'s metadata: proves the brokers answer, accept the credentials and know the topic.
    /// Blocks for up to `timeout`.
    pub fn check_topic(&self, topic: &str, timeout: Duration) -> Result<(), ConnectError> {
        check_topic(
            self.producer.producer().client(),
            &self.failures,
            &self.settings,
            topic,
            timeout,
        )
        .map(|_| ())
    }

    /// Explains a failed send: the connection failure behind it, if one was reported.
    pub fn explain(&self, error: KafkaError) -> ConnectError {
        explain(&self.failures, &self.settings, "a send".into(), error)
    }
}

/// A consumer group member (the consumer binary).
pub type KafkaConsumer = StreamConsumer<KafkaContext>;

impl KafkaSettings {
    fn context(&self, credentials: Option<SharedCredentialsProvider>) -> KafkaContext {
        let msk = match &self.sasl {
            Some(Sasl::AwsMskIam { region }) => Some(MskTokenSource {
                region: region.clone(),
                credentials,
            }),
            _ => None,
        };
        KafkaContext::new(msk)
    }

    /// The configuration every client starts from: connection, security and extra properties.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("client.id", client_id);
        self.apply(&mut config);
        config
    }

    /// Creates any client type from `config` (which came from [`KafkaSettings::client_config`]) with the
    /// adapter's context. `credentials` sign MSK IAM tokens (default: the AWS SDK's chain).
    pub fn create<T>(
        &self,
        config: &ClientConfig,
        role: &'static str,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<T, KafkaSetupError>
    where
        T: FromClientConfigAndContext<KafkaContext>,
    {
        config
            .create_with_context(self.context(credentials))
            .map_err(|source| KafkaSetupError::Client { role, source })
    }

    /// A producer with `profile`'s delivery settings.
    pub fn producer(
        &self,
        client_id: &str,
        profile: ProducerProfile,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<KafkaProducer, KafkaSetupError> {
        let mut config = self.client_config(client_id);
        config.set("acks", "all");
        match profile {
            ProducerProfile::AwaitEachSend { delivery_timeout } => {
                config
                    .set("enable.idempotence", "false")
                    .set("max.in.flight.requests.per.connection", "1")
                    .set("linger.ms", "0")
                    .set(
                        "message.timeout.ms",
                        delivery_timeout.as_millis().to_string(),
                    );
            }
            ProducerProfile::Idempotent { delivery_timeout } => {
                config.set("enable.idempotence", "true").set(
                    "message.timeout.ms",
                    delivery_timeout.as_millis().to_string(),
                );
            }
        }
        let context = self.context(credentials);
        let failures = context.failures.clone();
        let producer = ServedProducer::create(&config, context)?;
        Ok(KafkaProducer {
            producer,
            failures,
            settings: self.clone(),
        })
    }

    /// A consumer-group member that stores offsets only when told (`enable.auto.offset.store=false`,
    /// stored offsets auto-committed), so a crash replays at most the records whose outcome was not final.
    pub fn consumer(
        &self,
        client_id: &str,
        group: &str,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<KafkaConsumer, KafkaSetupError> {
        let mut config = self.client_config(client_id);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000");
        self.create(&config, "consumer", credentials)
    }

    /// A consumer without a group for reading partitions by hand (the CLI's `follow`, tests).
    pub fn reader(&self, client_id: &str) -> Result<BaseConsumer<KafkaContext>, KafkaSetupError> {
        let mut config = self.client_config(client_id);
        // librdkafka wants a group id even for assign(); nothing is committed under it.
        config
            .set("group.id", format!("{client_id}-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        self.create(&config, "reader", None)
    }
}

/// Reads `topic`'s metadata through `client` (see [`KafkaProducer::check_topic`]); returns how many
/// partitions it has.
pub fn check_topic<C: rdkafka::ClientContext>(
    client: &Client<C>,
    failures: &FailureLog,
    settings: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<usize, ConnectError> {
    let result = client
        .fetch_metadata(Some(topic), timeout)
        .and_then(|metadata| {
            metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
                .map(|t| t.partitions().len())
                .ok_or(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
                ))
        });
    result.map_err(|error| {
        explain(
            failures,
            settings,
            format!("the metadata of {topic}"),
            error,
        )
    })
}

fn explain(
    failures: &FailureLog,
    settings: &KafkaSettings,
    what: String,
    source: KafkaError,
) -> ConnectError {
    let bootstrap = settings.bootstrap_servers.clone();
    match failures.lock().ok().and_then(|f| f.clone()) {
        Some(ConnectionFailure {
            kind: FailureKind::Authentication,
            reason,
        }) => ConnectError::Authentication {
            mechanism: settings.mechanism().unwrap_or("none"),
            bootstrap,
            reason,
        },
        Some(ConnectionFailure {
            kind: FailureKind::Tls,
            reason,
        }) => ConnectError::Tls { bootstrap, reason },
        None => ConnectError::Unavailable {
            bootstrap,
            what,
            source: Box::new(source),
        },
    }
}
