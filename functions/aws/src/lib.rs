//! The AWS SDK set-up every binary shares: the configuration from the environment (region, credentials,
//! `AWS_ENDPOINT_URL` for LocalStack) and its HTTPS client, on the workspace's one TLS stack (rustls
//! with ring; the SDK's default would add aws-lc, a second C build). Every AWS client of the system is
//! built from [`sdk_config`], or from [`https_client`] where only a credentials chain is needed.
//!
//! [`secret_string`] is the one Secrets Manager read (the AppRole credentials, the webhook signing
//! secrets), with its errors sorted into the deployment's mistakes and outages.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The SDK's HTTPS client on rustls with ring.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// AWS SDK configuration from the environment, with [`https_client`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// A Secrets Manager secret could not be read. The messages name the secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretReadError {
    /// No such secret: the deployment is misconfigured.
    #[error("secret {secret_id:?} not found")]
    NotFound {
        /// The secret's name or ARN.
        secret_id: String,
    },
    /// The caller may not read it (IAM, KMS), or the request is invalid for it.
    #[error("access to secret {secret_id:?} denied: {detail}")]
    Denied {
        /// The secret's name or ARN.
        secret_id: String,
        /// The service's explanation.
        detail: String,
    },
    /// The secret holds binary data, not text.
    #[error("secret {secret_id:?} has no string value")]
    NotText {
        /// The secret's name or ARN.
        secret_id: String,
    },
    /// Secrets Manager could not be reached or failed; retrying may help.
    #[error("AWS Secrets Manager unavailable reading {secret_id:?}")]
    Unavailable {
        /// The secret's name or ARN.
        secret_id: String,
        /// What happened.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SecretReadError {
    /// Whether retrying may help (only an outage; the rest is the deployment's to fix).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// The current string value of `secret_id` (a name or ARN).
pub async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, SecretReadError> {
    use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| {
            let code = error.code().unwrap_or_default().to_string();
            let detail = error
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| code.clone());
            let from_the_service = matches!(error, SdkError::ServiceError(_));
            let secret_id = secret_id.to_string();
            match code.as_str() {
                "ResourceNotFoundException" => SecretReadError::NotFound { secret_id },
                "AccessDeniedException" => SecretReadError::Denied { secret_id, detail },
                "InvalidRequestException" | "InvalidParameterException" | "DecryptionFailure"
                    if from_the_service =>
                {
                    SecretReadError::Denied { secret_id, detail }
                }
                _ => SecretReadError::Unavailable {
                    secret_id,
                    source: error.into(),
                },
            }
        })?;
    output
        .secret_string
        .ok_or_else(|| SecretReadError::NotText {
            secret_id: secret_id.to_string(),
        })
}
