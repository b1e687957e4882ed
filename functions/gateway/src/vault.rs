//! Cluster bearer tokens from Vault: AppRole login with `vaultrs`, then a KV v2 read of the token.
//!
//! Both the Vault login token and each cluster token are cached across invocations (a Lambda
//! container serves many). The login is renewed by logging in again once two thirds of its lease have
//! passed, before it expires; a cluster token is re-read after [`CLUSTER_TOKEN_MAX_AGE`], or at once
//! when the proxy answers 401 (the token was rotated).

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use spark_gateway_core::{Classify, Disposition};
use tokio::sync::Mutex;
use tokio::time::Instant;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::approle::{CredentialsError, CredentialsSource};
use crate::config::{ClusterConfig, VaultConfig};

/// How long a cluster token is trusted without a 401 before it is read again, so rotations are picked
/// up even by a gateway that never got a 401.
pub const CLUSTER_TOKEN_MAX_AGE: Duration = Duration::from_secs(300);

/// Lease assumed for a login whose token reports none (dev-mode root-like tokens).
const UNBOUNDED_LEASE: Duration = Duration::from_secs(3600);

/// A cluster token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The AppRole credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Vault refused the AppRole login (wrong or expired role_id/secret_id).
    #[error("Vault AppRole login refused (status {code}): {detail}")]
    LoginRefused {
        /// HTTP status.
        code: u16,
        /// Vault's explanation.
        detail: String,
    },
    /// The login's policies do not allow reading the token.
    #[error("Vault denied reading {path} (status {code}): {detail}")]
    Denied {
        /// The KV path.
        path: String,
        /// HTTP status.
        code: u16,
        /// Vault's explanation.
        detail: String,
    },
    /// The token secret or its key does not exist.
    #[error("Vault has no {what}")]
    Missing {
        /// What is missing.
        what: String,
    },
    /// The Vault client cannot be configured (the address).
    #[error("the Vault client settings are unusable")]
    Setup(#[source] vaultrs::client::VaultClientSettingsBuilderError),
    /// Vault is unreachable or failing; retrying may help.
    #[error("Vault unavailable{}", vault_says(source))]
    Unavailable {
        /// What happened.
        #[source]
        source: ClientError,
    },
}

/// Vault's own explanation of an error answer ("Vault is sealed"), which the client's message leaves out.
fn vault_says(error: &ClientError) -> String {
    match error {
        ClientError::APIError { errors, .. } if !errors.is_empty() => {
            format!(" ({})", errors.join("; "))
        }
        _ => String::new(),
    }
}

/// Vault being down is an outage; a refused login, a denied or missing path and a bad address are the
/// deployment's mistakes.
impl Classify for VaultError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Credentials(error) => error.disposition(),
            Self::Unavailable { .. } => Disposition::TRANSIENT,
            Self::Setup(_)
            | Self::LoginRefused { .. }
            | Self::Denied { .. }
            | Self::Missing { .. } => Disposition::Configuration,
        }
    }
}

/// Supplies the bearer token of a cluster.
pub trait TokenProvider: Send + Sync {
    /// The token for `cluster`; `refresh` skips the cache (the proxy just answered 401).
    fn cluster_token(
        &self,
        cluster: &str,
        config: &ClusterConfig,
        refresh: bool,
    ) -> impl Future<Output = Result<SecretString, VaultError>> + Send;
}

struct Login {
    client: VaultClient,
    renew_at: Instant,
}

struct CachedToken {
    token: SecretString,
    fetched_at: Instant,
}

#[derive(Default)]
struct Cache {
    login: Option<Login>,
    tokens: HashMap<String, CachedToken>,
}

/// Tokens from Vault through AppRole, cached.
pub struct VaultTokens<S> {
    config: VaultConfig,
    credentials: S,
    cache: Mutex<Cache>,
}

impl<S: CredentialsSource> VaultTokens<S> {
    /// Logs in lazily, on the first token needed.
    pub fn new(config: VaultConfig, credentials: S) -> Self {
        Self {
            config,
            credentials,
            cache: Mutex::new(Cache::default()),
        }
    }

    async fn login(&self) -> Result<Login, VaultError> {
        let credentials = self.credentials.credentials().await?;
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&self.config.addr)
            // An empty token keeps vaultrs from picking up VAULT_TOKEN from the environment.
            .token("")
            // Pinned: vaultrs would otherwise honour VAULT_SKIP_VERIFY from the environment.
            .verify(true)
            .timeout(Some(self.config.timeout));
        if let Some(ca) = &self.config.ca_file {
            settings.ca_certs(vec![ca.display().to_string()]);
        }
        let settings = settings.build().map_err(VaultError::Setup)?;
        let mut client =
            VaultClient::new(settings).map_err(|source| VaultError::Unavailable { source })?;
        let auth = vaultrs::auth::approle::login(
            &client,
            &self.config.approle_mount,
            credentials.role_id.expose_secret(),
            credentials.secret_id.expose_secret(),
        )
        .await
        .map_err(|error| match error {
            ClientError::APIError { code, errors } if (400..500).contains(&code) && code != 429 => {
                VaultError::LoginRefused {
                    code,
                    detail: errors.join("; "),
                }
            }
            other => unavailable(other),
        })?;
        client.set_token(&auth.client_token);
        let lease = match auth.lease_duration {
            0 => UNBOUNDED_LEASE,
            seconds => Duration::from_secs(seconds),
        };
        tracing::info!(
            lease_seconds = lease.as_secs(),
            "logged in to Vault with AppRole"
        );
        Ok(Login {
            client,
            renew_at: Instant::now() + lease * 2 / 3,
        })
    }

    async fn read_token(
        client: &VaultClient,
        config: &ClusterConfig,
    ) -> Result<SecretString, VaultError> {
        let path = format!("{}/{}", config.kv_mount, config.token_path);
        let secret: HashMap<String, String> =
            vaultrs::kv2::read(client, &config.kv_mount, &config.token_path)
                .await
                .map_err(|error| match error {
                    ClientError::APIError { code: 404, .. } => VaultError::Missing {
                        what: format!("secret at {path}"),
                    },
                    ClientError::APIError { code, errors } if code == 401 || code == 403 => {
                        VaultError::Denied {
                            path: path.clone(),
                            code,
                            detail: errors.join("; "),
                        }
                    }
                    other => unavailable(other),
                })?;
        secret
            .get(&config.token_key)
            .map(|token| SecretString::from(token.clone()))
            .ok_or_else(|| VaultError::Missing {
                what: format!("key {:?} in the secret at {path}", config.token_key),
            })
    }
}

fn unavailable(source: ClientError) -> VaultError {
    VaultError::Unavailable { source }
}

impl<S: CredentialsSource> TokenProvider for VaultTokens<S> {
    async fn cluster_token(
        &self,
        cluster: &str,
        config: &ClusterConfig,
        refresh: bool,
    ) -> Result<SecretString, VaultError> {
        let mut cache = self.cache.lock().await;
        if !refresh
            && let Some(cached) = cache.tokens.get(cluster)
            && cached.fetched_at.elapsed() < CLUSTER_TOKEN_MAX_AGE
        {
            return Ok(cached.token.clone());
        }
        if cache
            .login
            .as_ref()
            .is_none_or(|login| Instant::now() >= login.renew_at)
        {
            cache.login = Some(self.login().await?);
        }
        let client = &cache.login.as_ref().expect("logged in above").client;
        let token = match Self::read_token(client, config).await {
            // A revoked or expired login token looks like a denial; one fresh login tells the two apart.
            Err(VaultError::Denied { .. }) => {
                cache.login = Some(self.login().await?);
                Self::read_token(
                    &cache.login.as_ref().expect("logged in above").client,
                    config,
                )
                .await?
            }
            other => other?,
        };
        cache.tokens.insert(
            cluster.to_string(),
            CachedToken {
                token: token.clone(),
                fetched_at: Instant::now(),
            },
        );
        Ok(token)
    }
}
