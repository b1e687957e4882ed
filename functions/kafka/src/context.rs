//! The rdkafka client context every client of the project uses: librdkafka's log lines go to `tracing`,
//! the last authentication or TLS failure is kept so that a timed-out call can say why, and MSK IAM
//! tokens are signed when librdkafka asks for one.

use std::sync::{Arc, Mutex, OnceLock};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::msk_iam;

/// What kind of connection failure librdkafka reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The broker refused the credentials (wrong password, unknown user, bad token).
    Authentication,
    /// The TLS handshake failed (untrusted or mismatched certificate, TLS against a plaintext port).
    Tls,
}

/// The last such failure, with librdkafka's reason (addresses and mechanisms, never credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFailure {
    /// Authentication or TLS.
    pub kind: FailureKind,
    /// librdkafka's text.
    pub reason: String,
}

/// Shared between a client's context and whoever holds the client.
pub type FailureLog = Arc<Mutex<Option<ConnectionFailure>>>;

/// Where MSK IAM tokens get their AWS credentials.
#[derive(Clone)]
pub(crate) struct MskTokenSource {
    pub(crate) region: String,
    pub(crate) credentials: Option<SharedCredentialsProvider>,
}

/// The context of every client.
pub struct KafkaContext {
    pub(crate) failures: FailureLog,
    msk: Option<MskTokenSource>,
    default_credentials: OnceLock<SharedCredentialsProvider>,
}

impl KafkaContext {
    pub(crate) fn new(msk: Option<MskTokenSource>) -> Self {
        Self {
            failures: FailureLog::default(),
            msk,
            default_credentials: OnceLock::new(),
        }
    }

    /// Where this client's connection failures are recorded (for [`crate::check_topic`]).
    pub fn failures(&self) -> &FailureLog {
        &self.failures
    }

    fn msk_token(
        &self,
        source: &MskTokenSource,
    ) -> Result<msk_iam::MskAuthToken, msk_iam::MskTokenError> {
        let provider = match &source.credentials {
            Some(provider) => provider.clone(),
            None => self
                .default_credentials
                .get_or_init(|| default_credentials(&source.region))
                .clone(),
        };
        // librdkafka calls this on whatever thread polls the client, a tokio worker included (a
        // StreamConsumer's recv), where blocking on a runtime panics: resolve on a thread of our own.
        let credentials = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|error| {
                            msk_iam::MskTokenError::Signing(format!(
                                "no runtime for credentials: {error}"
                            ))
                        })?
                        .block_on(provider.provide_credentials())
                        .map_err(msk_iam::MskTokenError::Credentials)
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(msk_iam::MskTokenError::Signing(
                        "the credentials thread panicked".into(),
                    ))
                })
        })?;
        msk_iam::auth_token(&source.region, &credentials, std::time::SystemTime::now())
    }
}

/// The AWS SDK's default chain (environment, profile, web identity, ECS, IMDS) with the workspace's
/// TLS stack, for binaries that do not hand over credentials of their own.
fn default_credentials(region: &str) -> SharedCredentialsProvider {
    let region = aws_config::Region::new(region.to_string());
    let chain = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                runtime.block_on(async {
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .region(region)
                        .configure(
                            aws_config::provider_config::ProviderConfig::default()
                                .with_http_client(spark_gateway_aws::https_client()),
                        )
                        .build()
                        .await
                })
            })
            .join()
            .expect("the credentials chain builds")
    });
    SharedCredentialsProvider::new(chain)
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                Some(FailureKind::Authentication)
            }
            Some(RDKafkaErrorCode::SSL) => Some(FailureKind::Tls),
            // A TLS client on a plaintext port, or the reverse, ends as a transport error.
            _ if reason.contains("SSL handshake failed") => Some(FailureKind::Tls),
            _ => None,
        };
        if let Some(kind) = kind
            && let Ok(mut last) = self.failures.lock()
        {
            *last = Some(ConnectionFailure {
                kind,
                reason: reason.to_string(),
            });
        }
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let source = self
            .msk
            .as_ref()
            .ok_or("OAUTHBEARER tokens are only made for KAFKA_SASL_MECHANISM=AWS_MSK_IAM")?;
        let token = self.msk_token(source).inspect_err(|error| {
            tracing::warn!(%error, "cannot make an MSK IAM token");
        })?;
        Ok(OAuthToken {
            token: token.token,
            principal_name: "spark-gateway".into(),
            lifetime_ms: token.expires_at_ms,
        })
    }
}

impl ConsumerContext for KafkaContext {}
