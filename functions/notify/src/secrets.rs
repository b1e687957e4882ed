//! Per-cluster webhook signing secrets from Secrets Manager, cached for a few minutes so a busy
//! notifier does not read the same secret for every event, yet picks up a rotation soon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spark_gateway_aws::SecretReadError;
use spark_gateway_core::disposition::{Classify, Disposition};

use crate::signature::{InvalidSecret, SigningSecret};

/// Where a cluster's secret is when nothing else is configured: `<prefix><cluster>`.
pub const DEFAULT_SECRET_PREFIX: &str = "spark-gateway/webhook-signing/";

/// How long a secret read is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// A cluster's signing secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Reading it failed.
    #[error("reading the webhook signing secret of cluster {cluster:?}")]
    Read {
        /// The cluster.
        cluster: String,
        /// Why.
        #[source]
        source: SecretReadError,
    },
    /// It is not a Standard Webhooks secret.
    #[error("the webhook signing secret {secret_id:?} is unusable")]
    Invalid {
        /// The secret's name.
        secret_id: String,
        /// Why (never quoting it).
        #[source]
        source: InvalidSecret,
    },
}

/// An outage is transient; a missing or malformed secret is the deployment's to fix (retried, then
/// dead-lettered so nothing is lost while it is fixed).
impl Classify for SecretError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Read { source, .. } if source.is_transient() => Disposition::TRANSIENT,
            _ => Disposition::Configuration,
        }
    }
}

/// Signing secrets by cluster, from Secrets Manager.
pub struct SecretsManagerSecrets {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    cache: Mutex<HashMap<String, (Instant, Arc<SigningSecret>)>>,
}

impl SecretsManagerSecrets {
    /// Reads cluster `c`'s secret from `<prefix>c`.
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            cache: Mutex::default(),
        }
    }

    /// The secret of `cluster`.
    pub async fn secret(&self, cluster: &str) -> Result<Arc<SigningSecret>, SecretError> {
        if let Some((read_at, secret)) = self.cache.lock().expect("not poisoned").get(cluster)
            && read_at.elapsed() < CACHE_TTL
        {
            return Ok(Arc::clone(secret));
        }
        let secret_id = format!("{}{cluster}", self.prefix);
        let text = spark_gateway_aws::secret_string(&self.client, &secret_id)
            .await
            .map_err(|source| SecretError::Read {
                cluster: cluster.to_string(),
                source,
            })?;
        let secret = Arc::new(
            SigningSecret::parse(&text)
                .map_err(|source| SecretError::Invalid { secret_id, source })?,
        );
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(cluster.to_string(), (Instant::now(), Arc::clone(&secret)));
        Ok(secret)
    }
}
