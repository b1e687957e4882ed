//! Where the Vault AppRole `role_id` and `secret_id` come from: AWS Secrets Manager (the Lambda way) or
//! a file (the seed gateway's way). Behind one narrow trait so the Vault client can be tested with
//! either, and with a fake.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use spark_gateway_aws::SecretReadError;
use spark_gateway_core::{Classify, Disposition};

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
    /// The secret or file exists but is not `{"role_id": ..., "secret_id": ...}`; the detail names the
    /// shape that is wrong and never quotes the content.
    #[error(
        "AppRole credentials {source_name} are malformed: expected JSON with role_id and secret_id ({detail})"
    )]
    Malformed {
        /// Which secret or file.
        source_name: String,
        /// What is wrong, in terms of JSON types and positions only.
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
    #[error("AWS Secrets Manager unavailable reading {source_name}")]
    Unavailable {
        /// Which secret.
        source_name: String,
        /// What happened.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Secrets Manager being unavailable is an outage; a missing, unreadable or malformed secret is the
/// deployment's mistake: retrying the same message will not fix it.
impl Classify for CredentialsError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Unavailable { .. } => Disposition::TRANSIENT,
            _ => Disposition::Configuration,
        }
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
    use serde_json::Value;
    let malformed = |detail: String| CredentialsError::Malformed {
        source_name: source_name.to_string(),
        detail,
    };
    // Only shapes and positions go into the error: serde's own texts quote values (`invalid type:
    // string "..."`), and a value here may be the secret itself.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let kind = |value: &Value| match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let Value::Object(object) = &value else {
        return Err(malformed(format!(
            "a JSON {} instead of an object",
            kind(&value)
        )));
    };
    let field = |name: &str| match object.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(SecretString::from(text.clone())),
        Some(Value::String(_)) => Err(malformed(format!("{name} is empty"))),
        Some(other) => Err(malformed(format!(
            "{name} is a JSON {} instead of a string",
            kind(other)
        ))),
        None => Err(malformed(format!("{name} is missing"))),
    };
    Ok(AppRoleCredentials {
        role_id: field("role_id")?,
        secret_id: field("secret_id")?,
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
        let text = spark_gateway_aws::secret_string(&self.client, &self.secret_id)
            .await
            .map_err(|error| match error {
                SecretReadError::NotFound { .. } => CredentialsError::NotFound {
                    source_name: source_name.clone(),
                },
                SecretReadError::Denied { detail, .. } => CredentialsError::Denied {
                    source_name: source_name.clone(),
                    detail,
                },
                SecretReadError::NotText { .. } => CredentialsError::Malformed {
                    source_name: source_name.clone(),
                    detail: "the secret has no string value".into(),
                },
                unavailable @ SecretReadError::Unavailable { .. } => {
                    CredentialsError::Unavailable {
                        source_name: source_name.clone(),
                        source: unavailable.into(),
                    }
                }
            })?;
        parse(&source_name, &text)
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
        for (text, expected) in [
            (
                r#"{"role_id": "r", "secret": "hunter2"}"#,
                "secret_id is missing",
            ),
            // serde would say `invalid type: string "hunter2"`.
            (r#""hunter2""#, "a JSON string instead of an object"),
            (
                r#"{"role_id": "r", "secret_id": ["hunter2"]}"#,
                "secret_id is a JSON array",
            ),
            ("role_id=r secret_id=hunter2", "not JSON (line 1, column 1)"),
            (r#"{"role_id": "r", "secret_id": "hunter2""#, "not JSON"),
        ] {
            let error = parse("file x", text).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
            assert_eq!(error.disposition(), Disposition::Configuration);
        }
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
        assert_eq!(error.disposition(), Disposition::Configuration);
    }
}
