//! Spark Gateway's submission service, shared by the Lambda functions and the consumer: validated
//! requests become SparkApplications on a cluster reached through its proxy with a bearer token from
//! Vault.
//!
//! # Layout
//! - [`config`]: clusters, Vault and credentials configuration, from the environment.
//! - [`approle`]: AppRole credentials from AWS Secrets Manager or a file.
//! - [`vault`]: AppRole login and the cluster token from KV v2, cached and renewed.
//! - [`cluster`]: SparkApplication calls through the proxy with kube-rs; 401 re-reads the token once.
//! - [`service`]: [`Gateway`]: submit, delete, status, and their permanent/transient error split.
//! - `fake` (feature `fake`): an in-memory [`ClusterApi`](cluster::ClusterApi) for unit tests.
//!
//! ```text
//! request ─▶ Gateway ─policy/mapping (core)─▶ ClusterApi ─▶ proxy ─▶ Kubernetes
//!                                                 ▲
//!                      TokenProvider (Vault) ─────┘◀─ CredentialsSource (Secrets Manager | file)
//! ```
//! No token or secret is logged or put in an error.

pub mod approle;
pub mod cluster;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod service;
pub mod vault;

pub use config::{ClustersConfig, ConfigError, GatewayConfig};
pub use service::{Deleted, Gateway, GatewayError, Submitted};
/// AWS SDK configuration from the environment, on the workspace's single TLS stack.
pub use spark_gateway_aws::sdk_config as aws_sdk_config;

use crate::approle::{AnyCredentials, FileCredentials, SecretsManagerCredentials};
use crate::cluster::KubeClusters;
use crate::config::AppRoleSource;
use crate::vault::VaultTokens;

/// The gateway wired to the real adapters.
pub type LiveGateway = Gateway<KubeClusters<VaultTokens<AnyCredentials>>>;

/// Makes ring the process-wide TLS provider (the Vault client's HTTP stack uses the process default;
/// everything else is built with ring explicitly). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the live gateway. Nothing is contacted until the first request.
pub fn live_gateway(config: GatewayConfig, aws: &aws_config::SdkConfig) -> LiveGateway {
    install_crypto_provider();
    let credentials = match &config.approle {
        AppRoleSource::SecretsManager(secret) => AnyCredentials::SecretsManager(
            SecretsManagerCredentials::new(aws_sdk_secretsmanager::Client::new(aws), secret),
        ),
        AppRoleSource::File(path) => AnyCredentials::File(FileCredentials::new(path)),
    };
    Gateway::new(
        config.clusters,
        KubeClusters::new(VaultTokens::new(config.vault, credentials)),
    )
}
