//! Where the Vault AppRole `role_id` and `secret_id` come from: AWS Secrets Manager (the Lambda way) or
//! a file (the seed gateway's way). Behind one narrow trait so the Vault client can be tested with
//! either, and with a fake.

use std::path::PathBuf;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use secrecy::SecretString;
use serde::Deserialize;

/// AppRole login credentials. Neither value is ever logged or put in an error.
#[derive(Clone, Deserialize)]
pub struct AppRoleCredentials {
    /// The role id.
    pub role_id: SecretString,
    /// The secret id.
    pub secret_id: SecretString,
}

impl std::fmt::Debug for AppRoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppRoleCredentials { .. }")
    }
}

/// The credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The secret or file does not exist: the deployment is misconfigured.
    #[error("AppRole credentials {source_name} not found")]
    NotFound {
        /// Which secret or file.
        source_name: String,
    },
    /// The secret or file exists but is not `{"role_id": ..., "secret_id": ...}`.
    #[error(
        "AppRole credentials {source_name} are malformed: expected JSON with role_id and secret_id ({detail})"
    )]
    Malformed {
        /// Which secret or file.
        source_name: String,
        /// The parse error, which never contains the secret itself.
        detail: String,
    },
    /// Access was denied (IAM or file permissions).
    #[error("access to AppRole credentials {source_name} denied: {detail}")]
    Denied {
        /// Which secret or file.
        source_name: String,
        /// The service's explanation.
        detail: String,
    },
    /// Secrets Manager could not be reached or failed; retrying may help.
    #[error("AWS Secrets Manager unavailable reading {source_name}: {detail}")]
    Unavailable {
        /// Which secret.
        source_name: String,
        /// What happened.
        detail: String,
    },
}

impl CredentialsError {
    /// A deployment mistake rather than an outage: retrying the same message will not fix it.
    pub fn is_configuration(&self) -> bool {
        !matches!(self, Self::Unavailable { .. })
    }
}

/// A source of AppRole credentials.
pub trait CredentialsSource: Send + Sync {
    /// Reads the current credentials.
    fn credentials(
        &self,
    ) -> impl Future<Output = Result<AppRoleCredentials, CredentialsError>> + Send;
}

fn parse(source_name: &str, text: &str) -> Result<AppRoleCredentials, CredentialsError> {
    serde_json::from_str(text).map_err(|e| CredentialsError::Malformed {
        source_name: source_name.to_string(),
        // serde_json's messages name fields and positions, never values of string fields.
        detail: e.to_string(),
    })
}

/// Credentials in an AWS Secrets Manager secret.
#[derive(Debug, Clone)]
pub struct SecretsManagerCredentials {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerCredentials {
    /// Reads `secret_id` (a name or ARN) through `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl CredentialsSource for SecretsManagerCredentials {
    async fn credentials(&self) -> Result<AppRoleCredentials, CredentialsError> {
        let source_name = format!("secret {:?}", self.secret_id);
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| {
                let code = error.code().unwrap_or_default().to_string();
                let detail = error
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| code.clone());
                match (&error, code.as_str()) {
                    (_, "ResourceNotFoundException") => CredentialsError::NotFound {
                        source_name: source_name.clone(),
                    },
                    (_, "AccessDeniedException") => CredentialsError::Denied {
                        source_name: source_name.clone(),
                        detail,
                    },
                    (
                        SdkError::ServiceError(_),
                        "InvalidRequestException"
                        | "InvalidParameterException"
                        | "DecryptionFailure",
                    ) => CredentialsError::Denied {
                        source_name: source_name.clone(),
                        detail,
                    },
                    _ => CredentialsError::Unavailable {
                        source_name: source_name.clone(),
                        detail: if detail.is_empty() {
                            format!("{error}")
                        } else {
                            detail
                        },
                    },
                }
            })?;
        let text = output
            .secret_string()
            .ok_or_else(|| CredentialsError::Malformed {
                source_name: source_name.clone(),
                detail: "the secret has no string value".into(),
            })?;
        parse(&source_name, text)
    }
}

/// Credentials in a JSON file.
#[derive(Debug, Clone)]
pub struct FileCredentials {
    path: PathBuf,
}

impl FileCredentials {
    /// Reads `path` on every call, so a rotated file is picked up.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl CredentialsSource for FileCredentials {
    async fn credentials(&self) -> Result<AppRoleCredentials, CredentialsError> {
        let source_name = format!("file {}", self.path.display());
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => CredentialsError::NotFound {
                    source_name: source_name.clone(),
                },
                _ => CredentialsError::Denied {
                    source_name: source_name.clone(),
                    detail: e.to_string(),
                },
            })?;
        parse(&source_name, &text)
    }
}

/// Either source, chosen by configuration.
#[derive(Debug, Clone)]
pub enum AnyCredentials {
    /// Secrets Manager.
    SecretsManager(SecretsManagerCredentials),
    /// A file.
    File(FileCredentials),
}

impl CredentialsSource for AnyCredentials {
    async fn credentials(&self) -> Result<AppRoleCredentials, CredentialsError> {
        match self {
            Self::SecretsManager(source) => source.credentials().await,
            Self::File(source) => source.credentials().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn malformed_credentials_never_echo_the_secret() {
        let error = parse("file x", r#"{"role_id": "r", "secret": "hunter2"}"#).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("secret_id"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(error.is_configuration());
    }

    #[test]
    fn debug_output_hides_the_credentials() {
        let credentials = parse(
            "file x",
            r#"{"role_id": "role-123", "secret_id": "hunter2"}"#,
        )
        .unwrap();
        assert_eq!(credentials.secret_id.expose_secret(), "hunter2");
        assert_eq!(format!("{credentials:?}"), "AppRoleCredentials { .. }");
    }

    #[tokio::test]
    async fn a_missing_file_is_a_configuration_error_naming_it() {
        let error = FileCredentials::new("/nonexistent/approle.json")
            .credentials()
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "AppRole credentials file /nonexistent/approle.json not found"
        );
        assert!(error.is_configuration());
    }
}
