//! The Kafka settings as command-line flags for the binaries (consumer, watcher, CLI). Every flag also
//! reads its `KAFKA_*` variable, so a binary and a Lambda function configured from one environment
//! connect the same way.

use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::{KafkaConfigError, KafkaSettings, KafkaSettingsInput};

/// Where the brokers are and how to authenticate (README: Kafka connection).
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long = "kafka-bootstrap-servers", env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// plaintext (default), ssl, sasl_plaintext or sasl_ssl.
    #[arg(long = "kafka-security-protocol", env = "KAFKA_SECURITY_PROTOCOL")]
    pub security_protocol: Option<String>,
    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM.
    #[arg(long = "kafka-sasl-mechanism", env = "KAFKA_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name (PLAIN, SCRAM).
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL password (PLAIN, SCRAM); prefer the variable to the flag, which `ps` shows.
    #[arg(
        long = "kafka-sasl-password",
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<String>,
    /// PEM file of the CAs to trust (default: the system's store).
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<PathBuf>,
    /// The CAs as PEM text.
    #[arg(
        long = "kafka-ssl-ca-pem",
        env = "KAFKA_SSL_CA_PEM",
        hide_env_values = true
    )]
    pub ssl_ca_pem: Option<String>,
    /// PEM file of the client certificate (mutual TLS).
    #[arg(
        long = "kafka-ssl-certificate-location",
        env = "KAFKA_SSL_CERTIFICATE_LOCATION"
    )]
    pub ssl_certificate_location: Option<PathBuf>,
    /// The client certificate as PEM text.
    #[arg(
        long = "kafka-ssl-certificate-pem",
        env = "KAFKA_SSL_CERTIFICATE_PEM",
        hide_env_values = true
    )]
    pub ssl_certificate_pem: Option<String>,
    /// PEM file of the client key.
    #[arg(long = "kafka-ssl-key-location", env = "KAFKA_SSL_KEY_LOCATION")]
    pub ssl_key_location: Option<PathBuf>,
    /// The client key as PEM text.
    #[arg(
        long = "kafka-ssl-key-pem",
        env = "KAFKA_SSL_KEY_PEM",
        hide_env_values = true
    )]
    pub ssl_key_pem: Option<String>,
    /// Password of an encrypted client key.
    #[arg(
        long = "kafka-ssl-key-password",
        env = "KAFKA_SSL_KEY_PASSWORD",
        hide_env_values = true
    )]
    pub ssl_key_password: Option<String>,
    /// https (default: the certificate must name the host) or none.
    #[arg(
        long = "kafka-ssl-endpoint-identification",
        env = "KAFKA_SSL_ENDPOINT_IDENTIFICATION"
    )]
    pub ssl_endpoint_identification: Option<String>,
    /// The MSK cluster's region for AWS_MSK_IAM (default: AWS_REGION).
    #[arg(long = "kafka-aws-region", env = "KAFKA_AWS_REGION")]
    pub aws_region: Option<String>,
    /// Further librdkafka properties as KEY=VALUE, repeated or comma-separated; values are never logged.
    #[arg(
        long = "kafka-property",
        env = "KAFKA_PROPERTIES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub properties: Vec<String>,
}

impl KafkaArgs {
    /// Validates the flags into settings.
    pub fn settings(&self) -> Result<KafkaSettings, KafkaConfigError> {
        let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        KafkaSettingsInput {
            bootstrap_servers: nonempty(&self.bootstrap_servers),
            security_protocol: nonempty(&self.security_protocol),
            sasl_mechanism: nonempty(&self.sasl_mechanism),
            sasl_username: nonempty(&self.sasl_username),
            sasl_password: nonempty(&self.sasl_password).map(SecretString::from),
            ssl_ca_location: self.ssl_ca_location.clone(),
            ssl_ca_pem: nonempty(&self.ssl_ca_pem),
            ssl_certificate_location: self.ssl_certificate_location.clone(),
            ssl_certificate_pem: nonempty(&self.ssl_certificate_pem),
            ssl_key_location: self.ssl_key_location.clone(),
            ssl_key_pem: nonempty(&self.ssl_key_pem).map(SecretString::from),
            ssl_key_password: nonempty(&self.ssl_key_password).map(SecretString::from),
            ssl_endpoint_identification: nonempty(&self.ssl_endpoint_identification),
            aws_region: nonempty(&self.aws_region)
                .or_else(|| std::env::var("AWS_REGION").ok().filter(|v| !v.is_empty())),
            properties: self
                .properties
                .iter()
                .filter(|entry| !entry.trim().is_empty())
                .cloned()
                .collect(),
            // The binaries with flags (watcher, CLI) take credentials directly, not from a secret.
            credentials_from_secret: false,
        }
        .into_settings()
    }
}
