//! The notifier wired to the real channels: SQS (through the one SQS adapter), HTTPS webhooks
//! (rustls with ring, the system's roots plus an optional extra CA, no redirects) and Secrets
//! Manager, configured from the environment.
//!
//! # Environment
//! - `SPARK_GATEWAY_NOTIFY_DLQ_URL` (required): the SQS queue that keeps deliveries given up on.
//! - `SPARK_GATEWAY_WEBHOOK_SECRET_PREFIX`: cluster `c`'s signing secret is `<prefix>c`
//!   (default `spark-gateway/webhook-signing/`).
//! - `SPARK_GATEWAY_NOTIFY_CA_FILE`: a PEM bundle trusted for webhooks besides the system's roots.
//! - `SPARK_GATEWAY_NOTIFY_ATTEMPTS` (default 5), `SPARK_GATEWAY_NOTIFY_TIMEOUT_SECONDS` (default 10).
//! - The clusters' policies: `SPARK_GATEWAY_CLUSTERS` or `SPARK_GATEWAY_CLUSTERS_FILE`, as the
//!   gateway reads them (read by the binary, which passes the policies in).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use spark_gateway_events::{CLOUDEVENTS_JSON_CONTENT_TYPE, NotifyTarget, truncate_chars};
use spark_gateway_handlers::sqs::{FifoKeys, SqsQueue};

use crate::deliver::{
    Channels, DeadLetterError, Delivery, DeliveryError, FailedDelivery, Notifier,
    NotifyDeadLetters, RetryPolicy,
};
use crate::secrets::{DEFAULT_SECRET_PREFIX, SecretsManagerSecrets};
use crate::signature::{self, headers};

/// Configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    /// A required variable is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("{name} is invalid: {message}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The CA file cannot be used.
    #[error("cannot use the CA bundle {path}: {message}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// What the live notifier is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// The dead-letter queue's URL.
    pub dead_letter_queue_url: String,
    /// Where signing secrets are (`<prefix><cluster>`).
    pub secret_prefix: String,
    /// Extra CA bundle for webhooks.
    pub ca_file: Option<PathBuf>,
    /// Retries.
    pub retry: RetryPolicy,
    /// Timeout of one webhook request.
    pub timeout: Duration,
}

impl NotifyConfig {
    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, NotifyConfigError> {
        let number = |name: &'static str, default: u64| -> Result<u64, NotifyConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(NotifyConfigError::Invalid {
                        name,
                        message: format!("{text:?} is not a positive whole number"),
                    }),
                },
            }
        };
        let attempts = number("SPARK_GATEWAY_NOTIFY_ATTEMPTS", 5)?;
        Ok(Self {
            dead_letter_queue_url: lookup("SPARK_GATEWAY_NOTIFY_DLQ_URL")
                .ok_or(NotifyConfigError::Missing("SPARK_GATEWAY_NOTIFY_DLQ_URL"))?,
            secret_prefix: lookup("SPARK_GATEWAY_WEBHOOK_SECRET_PREFIX")
                .unwrap_or_else(|| DEFAULT_SECRET_PREFIX.to_string()),
            ca_file: lookup("SPARK_GATEWAY_NOTIFY_CA_FILE").map(PathBuf::from),
            retry: RetryPolicy {
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                ..RetryPolicy::default()
            },
            timeout: Duration::from_secs(number("SPARK_GATEWAY_NOTIFY_TIMEOUT_SECONDS", 10)?),
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, NotifyConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The notifier as it runs: live channels, the SQS dead-letter queue, the clusters' policies.
pub type LiveNotifier = Notifier<LiveChannels, SqsNotifyDeadLetters>;

/// A notifier that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum NotifySetupError {
    /// The notifier's own settings.
    #[error(transparent)]
    Notify(#[from] NotifyConfigError),
    /// The clusters and their policies.
    #[error(transparent)]
    Clusters(#[from] spark_gateway::ConfigError),
}

/// Builds the notifier from `lookup` (the environment): its settings, and the clusters' policies as
/// the gateway reads them, so the allow-list checked at delivery is the one checked at submit.
pub fn live_notifier(
    lookup: impl Fn(&str) -> Option<String>,
    aws: &spark_gateway_aws::SdkConfig,
) -> Result<LiveNotifier, NotifySetupError> {
    let config = NotifyConfig::from_lookup(&lookup)?;
    let clusters = spark_gateway::ClustersConfig::from_lookup(&lookup)?;
    let policies = clusters
        .clusters
        .iter()
        .map(|(name, cluster)| (name.clone(), cluster.policy.notify.clone()))
        .collect();
    Ok(Notifier::new(
        LiveChannels::new(&config, aws)?,
        SqsNotifyDeadLetters(SqsQueue::new(
            aws_sdk_sqs::Client::new(aws),
            config.dead_letter_queue_url.clone(),
        )),
        policies,
        clusters.default_cluster,
        config.retry,
    ))
}

/// SQS and HTTPS, for real.
pub struct LiveChannels {
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    secrets: SecretsManagerSecrets,
}

impl LiveChannels {
    /// The channels for `config`, from one AWS configuration.
    pub fn new(
        config: &NotifyConfig,
        aws: &spark_gateway_aws::SdkConfig,
    ) -> Result<Self, NotifyConfigError> {
        Ok(Self {
            sqs: aws_sdk_sqs::Client::new(aws),
            http: webhook_client(config)?,
            secrets: SecretsManagerSecrets::new(
                aws_sdk_secretsmanager::Client::new(aws),
                config.secret_prefix.clone(),
            ),
        })
    }
}

/// The webhook HTTP client: no redirects (a redirect's target was never checked against the
/// allow-list), a timeout per request, and the system's roots plus the configured CA.
fn webhook_client(config: &NotifyConfig) -> Result<reqwest::Client, NotifyConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &config.ca_file {
        let ca_error = |message: String| NotifyConfigError::CaFile {
            path: path.clone(),
            message,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NotifyConfigError::Invalid {
            name: "TLS",
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .user_agent(concat!(
            "spark-gateway-notifier/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| NotifyConfigError::Invalid {
            name: "webhook client",
            message: e.to_string(),
        })
}

/// SQS message attribute names of notifications and dead-letter copies.
pub mod attributes {
    /// The CloudEvent id, to de-duplicate on without parsing the body.
    pub const EVENT_ID: &str = "spark-gateway-event-id";
    /// The target kind (`sqs`, `webhook`) of a dead-letter copy.
    pub const TARGET_TYPE: &str = "spark-gateway-notify-target-type";
    /// The target's URL.
    pub const TARGET: &str = "spark-gateway-notify-target";
    /// Why delivery was given up.
    pub const ERROR: &str = "spark-gateway-notify-error";
    /// Attempts made.
    pub const ATTEMPTS: &str = "spark-gateway-notify-attempts";
}

fn text_attribute(value: impl Into<String>) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

impl Channels for LiveChannels {
    async fn send_to_queue(
        &self,
        queue_url: &str,
        delivery: &Delivery<'_>,
    ) -> Result<(), DeliveryError> {
        let body = String::from_utf8_lossy(delivery.body).into_owned();
        // FIFO queues keep one application's events in order and drop a redelivery within their
        // five-minute window by this id (both at most 128 characters).
        let (group, deduplication_id) = (
            truncate_chars(delivery.group, 128),
            truncate_chars(delivery.event_id, 128),
        );
        let fifo = queue_url.ends_with(".fifo").then_some(FifoKeys {
            group: &group,
            deduplication_id: &deduplication_id,
        });
        SqsQueue::new(self.sqs.clone(), queue_url)
            .send_keyed(
                body,
                [(attributes::EVENT_ID, text_attribute(delivery.event_id))],
                fifo,
            )
            .await
            .map(|_| ())
            .map_err(|error| {
                if error.is_refusal() {
                    DeliveryError::QueueRefused(error)
                } else {
                    DeliveryError::QueueUnavailable(error)
                }
            })
    }

    async fn post_to_webhook(
        &self,
        url: &str,
        delivery: &Delivery<'_>,
    ) -> Result<(), DeliveryError> {
        let secret = self.secrets.secret(delivery.cluster).await?;
        // A fresh timestamp and signature per attempt, as Standard Webhooks ask, so a retry after a
        // long outage is not refused as stale.
        let timestamp = jiff::Timestamp::now().as_second();
        let signature = signature::sign(&secret, delivery.event_id, timestamp, delivery.body);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, CLOUDEVENTS_JSON_CONTENT_TYPE)
            .header(headers::ID, delivery.event_id)
            .header(headers::TIMESTAMP, timestamp.to_string())
            .header(headers::SIGNATURE, signature)
            .body(delivery.body.to_vec())
            .send()
            .await
            .map_err(|error| DeliveryError::Unreachable(error.without_url().into()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let code = status.as_u16();
        if status.is_redirection() {
            return Err(DeliveryError::Redirected { status: code });
        }
        if code == 408 || code == 429 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(DeliveryError::Unavailable {
                status: code,
                retry_after,
            });
        }
        Err(DeliveryError::Refused { status: code })
    }
}

/// The dead-letter queue: the event as the body, what failed as attributes.
pub struct SqsNotifyDeadLetters(pub SqsQueue);

impl NotifyDeadLetters for SqsNotifyDeadLetters {
    async fn dead_letter(&self, failed: &FailedDelivery<'_>) -> Result<(), DeadLetterError> {
        let target: &NotifyTarget = failed.target;
        self.0
            .send(
                String::from_utf8_lossy(failed.delivery.body).into_owned(),
                [
                    (
                        attributes::EVENT_ID,
                        text_attribute(failed.delivery.event_id),
                    ),
                    (attributes::TARGET_TYPE, text_attribute(target.kind())),
                    (attributes::TARGET, text_attribute(target.address())),
                    (
                        attributes::ERROR,
                        text_attribute(truncate_chars(failed.error, 1024)),
                    ),
                    (
                        attributes::ATTEMPTS,
                        text_attribute(failed.attempts.to_string()),
                    ),
                ],
            )
            .await
            .map(|_| ())
            .map_err(|error| DeadLetterError(error.into()))
    }
}
